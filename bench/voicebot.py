"""Voice-bot turn events, measured from outside: clips streamed at real time over the
Deepgram-compatible `/v2/listen` (Flux shape, eager mode) against a real `callscribe serve`,
`EagerEndOfTurn` and `EndOfTurn` timed from the audio's own speech offset (energy), at 1 and
K concurrent streams; the native `/v1/stream` final of the same clips in the same run is the
baseline (the end-of-turn events must not cost more than the plain final).

    python -m bench.voicebot [--streams 1,4] [--clips 8] [--per-stream 2] [--silence-s 1.5]

Prints one JSON document (progress on stderr). Run it under `flock /work/wt/bench.lock` on
shared machines; `machine` says how busy the other processes kept the cores.
"""

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field

import websockets

from bench.common import percentiles
from bench.live.clients import SR, _pcm, _send_paced, native_clip, speech_bounds
from bench.live.machine import CpuWindow
from bench.live.runs import Clip, Variant, load_clips

FLUX_QUERY = "encoding=linear16&sample_rate=16000&eager_eot_threshold=0.5"
"""Flux's default `eot_threshold` (0.7: 500 ms of silence, as the native stream's default)."""


@dataclass
class TurnResult:
    clip: str
    eager_s: float | None = None
    """Speech offset -> the EagerEndOfTurn the last turn ended on (None: none came)."""
    end_of_turn_s: float | None = None
    """Speech offset -> the last EndOfTurn."""
    resumed: int = 0
    events: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def flux_clip(url: str, name: str, audio, silence_s: float) -> TurnResult:
    _, offset = speech_bounds(audio)
    pcm = _pcm(audio, silence_s)
    result = TurnResult(name)
    async with websockets.connect(f"{url}?{FLUX_QUERY}", max_size=None) as ws:
        if json.loads(await ws.recv()).get("type") != "Connected":
            result.errors.append("not connected")
            return result
        started = time.perf_counter()
        eager_at: float | None = None

        async def receive() -> None:
            nonlocal eager_at
            async for raw in ws:
                now, message = time.perf_counter() - started, json.loads(raw)
                event = message.get("event")
                if message.get("type") == "Error":
                    result.errors.append(message.get("description", ""))
                if event is None:
                    continue
                if event != "Update":
                    result.events.append(event)
                if event == "EagerEndOfTurn":
                    eager_at = now
                elif event == "TurnResumed":
                    eager_at = None
                    result.resumed += 1
                elif event == "EndOfTurn" and message.get("transcript"):
                    result.end_of_turn_s = now - offset
                    result.eager_s = None if eager_at is None else eager_at - offset
                    eager_at = None

        receiver = asyncio.create_task(receive())
        await _send_paced(ws, pcm, int(0.1 * SR) * 2, started)
        await ws.send(json.dumps({"type": "CloseStream"}))
        try:
            await asyncio.wait_for(receiver, 60)
        except TimeoutError:
            result.errors.append("no close within 60 s")
    return result


async def run(url: str, clips: list[Clip], streams: int, silence_s: float, client) -> list:
    results: list = []

    async def one_stream(index: int) -> None:
        await asyncio.sleep(0.37 * index % 1.0)
        for clip in clips[index::streams]:
            results.append(await client(url, clip.utterance.id, clip.audio, silence_s))

    await asyncio.gather(*(one_stream(i) for i in range(streams)))
    return results


def summary(turns: list[TurnResult], native: list) -> dict:
    eager = [t.eager_s for t in turns if t.eager_s is not None]
    ends = [t.end_of_turn_s for t in turns if t.end_of_turn_s is not None]
    finals = [n.final_s for n in native if n.final_s is not None]
    end_of_turn, plain = percentiles(ends), percentiles(finals)
    return {
        "clips": len(turns),
        "eager_end_of_turn_s": percentiles(eager),
        "end_of_turn_s": end_of_turn,
        "turn_resumed": sum(t.resumed for t in turns),
        "native_final_s": plain,
        "end_of_turn_over_native_p50": round(end_of_turn["p50"] / plain["p50"], 3)
        if end_of_turn.get("p50") and plain.get("p50")
        else None,
        "errors": [e for t in turns for e in t.errors][:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,4")
    parser.add_argument("--data", default="speech")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--per-stream", type=int, default=2)
    parser.add_argument("--silence-s", type=float, default=1.5)
    args = parser.parse_args()
    clips = load_clips([args.data], args.clips)
    variant = Variant.parse("head")
    report: dict = {
        "benchmark": "voicebot",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": vars(args),
        "query": FLUX_QUERY,
        "runs": [],
    }
    variant.start()
    try:
        for k in [int(k) for k in args.streams.split(",") if k]:
            chosen = clips[: k * args.per_stream] if args.per_stream else clips
            print(f"{k} streams, {len(chosen)} clips", file=sys.stderr)
            window = CpuWindow(variant.server.process.pid).start()
            turns = asyncio.run(
                run(variant.ws_url("/v2/listen"), chosen, k, args.silence_s, flux_clip)
            )
            native = asyncio.run(
                run(variant.ws_url("/v1/stream"), chosen, k, args.silence_s, native_clip)
            )
            report["runs"].append(
                {"streams": k, **summary(turns, native), "machine": window.stop()}
            )
    finally:
        variant.server.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
