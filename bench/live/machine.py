"""How busy the machine was during a run, and with what: these 2-core machines are shared, so
every latency figure carries the CPU other processes took while it was measured."""

import os
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICKS


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / _TICKS


@dataclass
class CpuWindow:
    """CPU used between `start()` and `stop()`, split into the server, this benchmark and
    everything else on the machine."""

    server_pid: int
    started: float = 0.0
    _machine: float = 0.0
    _server: float = 0.0
    _own: float = 0.0

    def start(self) -> "CpuWindow":
        self.started = time.monotonic()
        self._machine = _machine_busy_s()
        self._server = _process_cpu_s(self.server_pid)
        self._own = _process_cpu_s(os.getpid())
        return self

    def stop(self) -> dict:
        wall = time.monotonic() - self.started
        machine = _machine_busy_s() - self._machine
        server = _process_cpu_s(self.server_pid) - self._server
        own = _process_cpu_s(os.getpid()) - self._own
        other = max(0.0, machine - server - own)
        return {
            "wall_s": round(wall, 1),
            "cores": os.cpu_count(),
            "server_cores_busy": round(server / wall, 2),
            "bench_cores_busy": round(own / wall, 2),
            "other_cores_busy": round(other / wall, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
