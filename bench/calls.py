"""Phone calls through a gateway: how many this machine holds in real time, and what the gateway
itself costs per call.

    python -m bench.calls [--calls 1,4,8] [--seconds 30]

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


def measure(server: CallscribeServer, run) -> tuple[list[StreamResult], float]:
    before = server_cpu_s(server.process.pid)
    results = asyncio.run(run())
    return results, server_cpu_s(server.process.pid) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,4,8")
    parser.add_argument("--seconds", type=float, default=30.0, help="Audio per call")
    args = parser.parse_args()

    clips = [Clip(u, decode_audio(u.path)) for u in read_manifest(testdata_dir() / "manifest.tsv")]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/admin.db"
        database, key = bench_database(url)
        database.dispose()
        server = keyed_server(url)
        server.start()
        report: dict = {"benchmark": "calls", "audio_s_per_call": args.seconds, "runs": {}}
        try:
            token = httpx.post(
                f"{server.url}/v1/tokens",
                json={"ttl_s": 3600},
                headers={"authorization": f"Bearer {key.secret}"},
            ).json()["token"]
            base = server.url.replace("http", "ws", 1)
            for count in [int(k) for k in args.calls.split(",") if k]:
                playlists = capacity_playlists(clips, count, args.seconds)
                minutes = sum(len(playlist_audio(p)) for p in playlists) / SR / 60

                async def calls(playlists=playlists, count=count):
                    return await asyncio.gather(
                        *(
                            twilio_call(base, token, f"bench-{count}-{i}-{time.time_ns()}", a)
                            for i, a in enumerate(playlist_audio(p) for p in playlists)
                        )
                    )

                async def streams(playlists=playlists):
                    return await run_streams(f"{base}/v1/stream?token={token}", playlists)

                run: dict = {}
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
                report["runs"][str(count)] = run
                print(json.dumps({str(count): run}), flush=True)
        finally:
            server.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
