"""Phone calls through a gateway: how many this machine holds in real time, and what the gateway
itself costs per call.

    python -m bench.calls [--calls 1,4,8] [--seconds 30]
    python -m bench.calls --hop [--calls 4] [--seconds 30] [--rounds 2]

Starts `callscribe serve` and, for each K, runs K concurrent calls of the shared speech clips
(1 s of silence after each) at real-time pace twice, back to back:

1. as Twilio Media Streams (`/v1/media-streams/twilio`: JSON messages of 20 ms of base64 μ-law
   8 kHz, the way a phone platform forks a call), finals read by a live listener on
   `/v1/calls/{id}/events`: the full telephony path (call session, μ-law decode, recording,
   stored finals, listener fan-out);
2. the baseline: the same audio as 16 kHz PCM over the native `/v1/stream`.

Reported per K and path: end of speech -> final latency, errors (a call that falls behind
drops audio and says so), and the server process's CPU seconds per call-minute (from
/proc). The gateway's own cost is the difference of the two paths in the same run.

With `--hop`, the Twilio calls go to two gateways in turn (alternating, `--rounds` times): one
decoding its calls itself, one streaming them to an ASR core process (`CALLSCRIBE_ASR_URLS`,
the gateway -> core hop on loopback). Reported per path: the latencies, the gateway's and the
core's CPU per call-minute, and what the hop adds to end of speech -> final (p50, p95).
"""

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import websockets

from asr_core.audio import decode_audio, resample
from asr_core.audio.g711 import pcm16_to_mulaw
from asr_core.evaluation import read_manifest
from bench.common import bench_database, keyed_server, testdata_dir
from bench.streams import (
    GAP_S,
    SR,
    Clip,
    StreamResult,
    capacity_playlists,
    latency_report,
    run_streams,
)
from tests.services import CallscribeServer

PACKET_S = 0.02


def server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def playlist_audio(clips: list[Clip]) -> np.ndarray:
    pieces = []
    for clip in clips:
        pieces += [clip.audio, np.zeros(int(GAP_S * SR), dtype=np.float32)]
    return np.concatenate(pieces)


async def twilio_call(base: str, token: str, call_id: str, audio: np.ndarray) -> StreamResult:
    """One phone call, forked Twilio-style; finals come from a listener on the call."""
    ulaw = pcm16_to_mulaw((np.clip(resample(audio, SR, 8000), -1, 1) * 32767).astype("<i2"))
    packet = int(PACKET_S * 8000)
    result = StreamResult()
    async with websockets.connect(f"{base}/v1/media-streams/twilio?token={token}") as fork:
        await fork.send(json.dumps({"event": "connected", "protocol": "Call"}))
        start = {
            "streamSid": "MZ" + call_id,
            "callSid": call_id,
            "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await fork.send(json.dumps({"event": "start", "start": start}))
        listener = await listen(f"{base}/v1/calls/{call_id}/events?token={token}")
        started = time.monotonic()
        receiver = asyncio.create_task(follow(listener, started, result))
        for n, offset in enumerate(range(0, len(ulaw), packet)):
            await asyncio.sleep(max(0.0, started + n * PACKET_S - time.monotonic()))
            payload = base64.b64encode(ulaw[offset : offset + packet]).decode()
            media = {"track": "inbound", "chunk": str(n + 1), "payload": payload}
            await fork.send(json.dumps({"event": "media", "media": media}))
        await fork.send(json.dumps({"event": "stop", "stop": {"callSid": call_id}}))
        await asyncio.wait_for(receiver, 300)
        await listener.close()
    return result


async def follow(listener, started: float, result: StreamResult) -> None:
    """A call's events until it ends, latencies counted from `started` (its audio's start)."""
    seen_segments: set[int] = set()
    async for raw in listener:
        event, now = json.loads(raw), time.monotonic()
        if event["type"] == "partial":
            result.partial_lag_s.append(now - started - event["end_ms"] / 1000)
            if event["segment"] not in seen_segments:
                seen_segments.add(event["segment"])
                result.first_partial_s.append(now - started - event["start_ms"] / 1000)
        elif event["type"] == "final":
            result.finals.append(event)
            result.final_latency_s.append(now - started - event["end_ms"] / 1000)
        elif event["type"] == "error":
            result.errors.append(event)
        elif event["type"] == "call_ended":
            return


async def listen(url: str, every_s: float = 0.05, timeout_s: float = 10.0):
    """The call's listener; the call opens a moment after its `start` message (its INVITE)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        socket = await websockets.connect(url)
        if json.loads(await socket.recv())["type"] == "listening":
            return socket
        await socket.close()
        await asyncio.sleep(every_s)
    raise RuntimeError(f"no call to listen to at {url}")


def measure(server: CallscribeServer, run, *others: CallscribeServer) -> tuple[list, float]:
    """`run`'s results and the CPU seconds `server` (and `others`) used meanwhile."""
    processes = [server, *others]
    before = sum(server_cpu_s(p.process.pid) for p in processes)
    results = asyncio.run(run())
    return results, sum(server_cpu_s(p.process.pid) for p in processes) - before


def mint_token(server: CallscribeServer, key: str) -> str:
    return httpx.post(
        f"{server.url}/v1/tokens",
        json={"ttl_s": 3600},
        headers={"authorization": f"Bearer {key}"},
    ).json()["token"]


def calls_driver(server: CallscribeServer, token: str, playlists, count: int):
    base = server.url.replace("http", "ws", 1)

    async def calls():
        return await asyncio.gather(
            *(
                twilio_call(base, token, f"bench-{count}-{i}-{time.time_ns()}", a)
                for i, a in enumerate(playlist_audio(p) for p in playlists)
            )
        )

    return calls


def gateway_runs(server: CallscribeServer, key: str, clips, counts, seconds: float) -> dict:
    """The Twilio call path against the native stream path, per K, on one server."""
    token = mint_token(server, key)
    base = server.url.replace("http", "ws", 1)
    runs: dict = {}
    for count in counts:
        playlists = capacity_playlists(clips, count, seconds)
        minutes = sum(len(playlist_audio(p)) for p in playlists) / SR / 60

        async def streams(playlists=playlists):
            return await run_streams(f"{base}/v1/stream?token={token}", playlists)

        run: dict = {}
        calls = calls_driver(server, token, playlists, count)
        for name, driver in (("twilio_call_path", calls), ("native_stream_path", streams)):
            results, cpu = measure(server, driver)
            run[name] = {
                **latency_report(results),
                "server_cpu_s_per_call_minute": round(cpu / minutes, 2),
            }
        run["gateway_cpu_s_per_call_minute"] = round(
            run["twilio_call_path"]["server_cpu_s_per_call_minute"]
            - run["native_stream_path"]["server_cpu_s_per_call_minute"],
            2,
        )
        runs[str(count)] = run
        print(json.dumps({str(count): run}), flush=True)
    return runs


class Transit:
    """What the hop itself adds to each final, whatever the decoder's backlog: the mean end of
    speech -> final as the gateway sees it (audio pushed -> final back) minus the same as the
    core sees it (audio arrived -> final sent), over the same finals, from both /metrics."""

    GATEWAY = "callscribe_asr_pool_end_of_speech_to_final_seconds"
    CORE = "callscribe_end_of_speech_to_final_seconds"

    def __init__(self, gateway: CallscribeServer, core: CallscribeServer) -> None:
        self.gateway, self.core = gateway, core
        self.totals = {"gateway": [0.0, 0.0], "core": [0.0, 0.0]}
        self._before: dict[str, tuple[float, float]] = {}

    def _read(self) -> dict[str, tuple[float, float]]:
        found = {}
        for role, server, name in (
            ("gateway", self.gateway, self.GATEWAY),
            ("core", self.core, self.CORE),
        ):
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            values = dict(
                line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(name + "_")
            )
            found[role] = (float(values[f"{name}_sum"]), float(values[f"{name}_count"]))
        return found

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> None:
        for role, (total, count) in self._read().items():
            self.totals[role][0] += total - self._before[role][0]
            self.totals[role][1] += count - self._before[role][1]

    def mean_ms(self) -> dict:
        (gateway_s, gateway_n), (core_s, core_n) = self.totals["gateway"], self.totals["core"]
        if not gateway_n or not core_n:
            return {}
        return {
            "finals": [int(gateway_n), int(core_n)],
            "gateway_mean_ms": round(gateway_s / gateway_n * 1000, 1),
            "core_mean_ms": round(core_s / core_n * 1000, 1),
            "added_ms": round((gateway_s / gateway_n - core_s / core_n) * 1000, 1),
        }


def hop_runs(
    url: str, key: str, clips, counts, seconds: float, rounds: int, model: str | None
) -> dict:
    """The same calls on a gateway decoding them itself and on a gateway streaming them to an
    ASR core over the hop (`CALLSCRIBE_ASR_URLS`), alternating, in one run."""
    service_key = "bench-service-key"
    common = {"CALLSCRIBE_MODEL": model} if model else {}
    local = keyed_server(url, **common)
    core = keyed_server(
        url, CALLSCRIBE_ASR_SERVICE_KEY=service_key, CALLSCRIBE_MAX_STREAMS="64", **common
    )
    servers = [local, core]
    try:
        for server in servers:
            server.start()
        hop = keyed_server(
            url,
            CALLSCRIBE_ASR_SERVICE_KEY=service_key,
            CALLSCRIBE_ASR_URLS=core.url.replace("http", "ws", 1),
            **common,
        )
        servers.append(hop)
        hop.start()
        tokens = {"in_process": mint_token(local, key), "hop": mint_token(hop, key)}
        runs: dict = {}
        for count in counts:
            playlists = capacity_playlists(clips, count, seconds)
            minutes = sum(len(playlist_audio(p)) for p in playlists) / SR / 60
            results: dict[str, list] = {"in_process": [], "hop": []}
            cpu: dict[str, dict[str, float]] = {"in_process": {}, "hop": {}}
            transit = Transit(hop, core)
            for _ in range(rounds):
                for name, gateway in (("in_process", local), ("hop", hop)):
                    driver = calls_driver(gateway, tokens[name], playlists, count)
                    before = {p: server_cpu_s(p.process.pid) for p in (gateway, core)}
                    if name == "hop":
                        transit.start()
                    results[name] += asyncio.run(driver())
                    if name == "hop":
                        transit.stop()
                    for role, process in (("gateway", gateway), ("core", core)):
                        used = server_cpu_s(process.process.pid) - before[process]
                        cpu[name][role] = cpu[name].get(role, 0.0) + used
            run = {
                name: {
                    **latency_report(found),
                    "error_codes": sorted({e.get("code", "?") for r in found for e in r.errors}),
                    "cpu_s_per_call_minute": {
                        role: round(used / minutes / rounds, 2)
                        for role, used in cpu[name].items()
                        if name == "hop" or role == "gateway"
                    },
                }
                for name, found in results.items()
            }
            finals = {name: run[name]["end_of_speech_to_final_s"] for name in run}
            run["hop_adds_s"] = {
                stat: round(finals["hop"][stat] - finals["in_process"][stat], 3)
                for stat in ("p50", "p95")
                if stat in finals["hop"] and stat in finals["in_process"]
            }
            run["hop_transit_mean_ms"] = transit.mean_ms()
            runs[str(count)] = run
            print(json.dumps({str(count): run}), flush=True)
        return runs
    finally:
        for server in reversed(servers):
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,4,8")
    parser.add_argument("--seconds", type=float, default=30.0, help="Audio per call")
    parser.add_argument(
        "--hop",
        action="store_true",
        help="Twilio calls on a gateway decoding them itself against a gateway streaming them "
        "to an ASR core process (CALLSCRIBE_ASR_URLS), alternating",
    )
    parser.add_argument("--rounds", type=int, default=1, help="With --hop: repeat each K")
    parser.add_argument("--model", help="With --hop: CALLSCRIBE_MODEL of every process")
    args = parser.parse_args()

    clips = [Clip(u, decode_audio(u.path)) for u in read_manifest(testdata_dir() / "manifest.tsv")]
    counts = [int(k) for k in args.calls.split(",") if k]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/admin.db"
        database, key = bench_database(url)
        database.dispose()
        report: dict = {"benchmark": "calls", "audio_s_per_call": args.seconds}
        if args.hop:
            report["model"] = args.model or "whisper-base"
            report["hop"] = hop_runs(
                url, key.secret, clips, counts, args.seconds, args.rounds, args.model
            )
        else:
            server = keyed_server(url)
            server.start()
            try:
                report["runs"] = gateway_runs(server, key.secret, clips, counts, args.seconds)
            finally:
                server.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
