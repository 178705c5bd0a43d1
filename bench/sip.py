"""SIP calls through the gateway: what the SIP path itself costs per call, and how many calls
this machine holds at once in real time.

    python -m bench.sip [--calls 4,8] [--seconds 30] [--gateway-only]

1. The gateway alone: `SipGateway` in this process (its SIP front, admission on a SQLite
   database, one user-agent process per 4 calls), calls ending in a stub hub that only counts
   their audio. K concurrent calls from one sipp process, each streaming `--seconds` of the
   shared speech clips as 8 kHz μ-law RTP. CPU seconds per call-minute from /proc: the
   user-agent processes (SIP and RTP, G.711 decoding, the bridge's resampling to 16 kHz,
   frames onto the link) and this process (the front, admission, frame intake: the serve
   process's share). Also each call's audio delivered, against its length.
2. End to end (unless `--gateway-only`): `callscribe serve` with the SIP gateway (Whisper base),
   K concurrent calls, each a sipp process with its own playlist, finals read by a live
   listener on each call; then the same audio as 16 kHz PCM over the native `/v1/stream`.
   Reported as `bench.calls`: end of speech -> final latency, errors, CPU per call-minute of
   the serve process on each path and of the user-agent processes.

Also the user agents' CPU with no call up (their polling), per process.
"""

import argparse
import asyncio
import json
import math
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from asr_core.audio import decode_audio
from asr_core.evaluation import read_manifest
from bench.calls import follow, listen, playlist_audio, server_cpu_s
from bench.common import bench_database, keyed_server, testdata_dir
from bench.streams import SR, Clip, StreamResult, capacity_playlists, latency_report, run_streams
from telephony.sip.config import PJSUA_MAX_CALLS, AllowList, SipConfig
from telephony.sip.gateway import SipGateway
from tests.helpers import encode
from tests.services import free_port
from tests.sipp import SPEECH, sipp_argv, speech_keys

IDLE_S = 10.0
BYTES_PER_S = 32_000
"""What a user agent hands over: 16 kHz s16le."""


def user_agents(pid: int) -> list[psutil.Process]:
    children = psutil.Process(pid).children()
    return [child for child in children if "telephony.sip.ua_process" in child.cmdline()]


def agents_cpu_s(pid: int) -> float:
    return sum(sum(agent.cpu_times()[:2]) for agent in user_agents(pid))


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_speech(folder: Path, audio: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "speech.wav").write_bytes(encode(audio, SR, "pcm_mulaw", "wav", out_rate=8000))


def idle_share(pid: int, processes: int) -> float:
    """CPU share of one user-agent process with no call up."""
    time.sleep(2.0)  # after their start
    before = agents_cpu_s(pid)
    time.sleep(IDLE_S)
    return round((agents_cpu_s(pid) - before) / IDLE_S / processes, 4)


# -- 1. the gateway alone -------------------------------------------------------------------------


class CountingCall:
    """A call that keeps nothing but how much audio it got."""

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.received = 0
        self.legs: dict[str, object] = {}
        self.ended = False

    def add_leg(self, leg: str, fmt: object) -> None:
        self.legs[leg] = fmt

    def feed(self, leg: str, data: bytes) -> None:
        self.received += len(data)

    async def end(self, reason: str) -> None:
        self.ended = True


class CountingHub:
    def __init__(self) -> None:
        self.calls: list[CountingCall] = []

    async def open_call(self, tenant_id: str, source: str, call_id: str | None) -> CountingCall:
        call = CountingCall(f"bench-{len(self.calls)}")
        self.calls.append(call)
        return call


async def gateway_alone(folder: Path, count: int, audio: np.ndarray, idle: bool) -> dict:
    url = f"sqlite:///{folder}/gateway-{count}.db"
    database, _ = bench_database(url, with_key=False)
    hub = CountingHub()
    rtp = free_port()
    processes = math.ceil(count / PJSUA_MAX_CALLS)
    config = SipConfig(
        port=free_port(),
        rtp_port_min=rtp,
        rtp_port_max=rtp + 50 * processes,
        allow=AllowList("bench=127.0.0.0/8"),
        processes=processes,
    )
    gateway = SipGateway(hub, database, config)
    await gateway.start()
    report: dict = {"user_agent_processes": processes}
    try:
        pid = psutil.Process().pid
        if idle:
            share = await asyncio.to_thread(idle_share, pid, processes)
            report["user_agent_idle_cpu_share"] = share
        calls_dir = folder / f"alone-{count}"
        write_speech(calls_dir, audio)
        stay_ms = int(len(audio) / SR * 1000) + 500
        argv = sipp_argv(config.port, SPEECH, "bench", "", *speech_keys(stay_ms), "-m", str(count))
        argv += ["-l", str(count), "-r", "50"]
        own, agents, started = own_cpu_s(), agents_cpu_s(pid), time.monotonic()
        sipp = await asyncio.create_subprocess_exec(
            *argv, cwd=calls_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        code = await sipp.wait()
        elapsed = time.monotonic() - started
        own, agents = own_cpu_s() - own, agents_cpu_s(pid) - agents
    finally:
        await gateway.stop()
        database.dispose()
    minutes = count * len(audio) / SR / 60
    received = [call.received / BYTES_PER_S for call in hub.calls]
    report.update(
        {
            "sipp_exit_code": code,
            "wall_s": round(elapsed, 1),
            "call_audio_s": round(len(audio) / SR, 1),
            "audio_s_delivered_per_call": {
                "min": round(min(received, default=0), 1),
                "max": round(max(received, default=0), 1),
                "calls": len(received),
            },
            "user_agents_cpu_s_per_call_minute": round(agents / minutes, 3),
            "front_and_intake_cpu_s_per_call_minute": round(own / minutes, 3),
            "gateway_cpu_s_per_call_minute": round((agents + own) / minutes, 3),
        }
    )
    return report


# -- 2. end to end --------------------------------------------------------------------------------


async def sip_call(
    base: str, port: int, key: str, token: str, folder: Path, audio: np.ndarray
) -> StreamResult:
    """One phone call from sipp; its finals from a listener on the call."""
    call_id = f"sip-{folder.name}-{time.time_ns()}"
    write_speech(folder, audio)
    stay_ms = int(len(audio) / SR * 1000) + 500
    argv = sipp_argv(port, SPEECH, "bench", key, *speech_keys(stay_ms, "mixed", call_id), "-m", "1")
    sipp = await asyncio.create_subprocess_exec(
        *argv, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    result = StreamResult()
    listener = await listen(f"{base}/v1/calls/{call_id}/events?token={token}", every_s=0.01)
    await asyncio.wait_for(follow(listener, time.monotonic(), result), 300)
    await listener.close()
    if await sipp.wait() != 0:
        result.errors.append({"type": "error", "message": f"sipp exited {sipp.returncode}"})
    return result


def end_to_end(folder: Path, counts: list[int], clips: list[Clip], seconds: float) -> dict:
    url = f"sqlite:///{folder}/admin.db"
    database, key = bench_database(url)
    database.dispose()
    sip_port, rtp = free_port(), free_port()
    processes = math.ceil(max(counts) / PJSUA_MAX_CALLS)
    server = keyed_server(
        url,
        CALLSCRIBE_SIP_PORT=str(sip_port),
        CALLSCRIBE_SIP_PROCESSES=str(processes),
        CALLSCRIBE_RTP_PORT_MIN=str(rtp),
        CALLSCRIBE_RTP_PORT_MAX=str(rtp + 50 * processes),
    )
    server.start()
    report: dict = {"user_agent_processes": processes, "runs": {}}
    try:
        assert server.process is not None
        pid = server.process.pid
        token = httpx.post(
            f"{server.url}/v1/tokens",
            json={"ttl_s": 3600},
            headers={"authorization": f"Bearer {key.secret}"},
        ).json()["token"]
        base = server.url.replace("http", "ws", 1)
        for count in counts:
            playlists = capacity_playlists(clips, count, seconds)
            audios = [playlist_audio(p) for p in playlists]
            minutes = sum(len(a) for a in audios) / SR / 60

            async def calls(audios=audios, count=count):
                return await asyncio.gather(
                    *(
                        sip_call(base, sip_port, key.secret, token, folder / f"{count}-{i}", a)
                        for i, a in enumerate(audios)
                    )
                )

            async def streams(playlists=playlists):
                return await run_streams(f"{base}/v1/stream?token={token}", playlists)

            run: dict = {}
            for name, driver in (("sip_call_path", calls), ("native_stream_path", streams)):
                serve, agents = server_cpu_s(pid), agents_cpu_s(pid)
                results = asyncio.run(driver())
                serve, agents = server_cpu_s(pid) - serve, agents_cpu_s(pid) - agents
                run[name] = {
                    **latency_report(results),
                    "serve_cpu_s_per_call_minute": round(serve / minutes, 2),
                }
                if name == "sip_call_path":
                    run[name]["user_agents_cpu_s_per_call_minute"] = round(agents / minutes, 3)
            report["runs"][str(count)] = run
            print(json.dumps({"end_to_end": {str(count): run}}), flush=True)
    finally:
        server.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="4,8")
    parser.add_argument("--seconds", type=float, default=30.0, help="Audio per call")
    parser.add_argument("--gateway-only", action="store_true", help="Skip the end-to-end runs")
    args = parser.parse_args()
    counts = [int(k) for k in args.calls.split(",") if k]

    clips = [Clip(u, decode_audio(u.path)) for u in read_manifest(testdata_dir() / "manifest.tsv")]
    report: dict = {"benchmark": "sip", "audio_s_per_call": args.seconds, "gateway_alone": {}}
    with tempfile.TemporaryDirectory() as folder:
        for n, count in enumerate(counts):
            audio = playlist_audio(capacity_playlists(clips, 1, args.seconds)[0])
            alone = asyncio.run(gateway_alone(Path(folder), count, audio, idle=n == 0))
            report["gateway_alone"][str(count)] = alone
            print(json.dumps({"gateway_alone": {str(count): alone}}), flush=True)
        if not args.gateway_only:
            report["end_to_end"] = end_to_end(Path(folder), counts, clips, args.seconds)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
