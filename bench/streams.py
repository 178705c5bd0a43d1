"""Live streams at real-time pace: latency, lag, accuracy against the file path, capacity.

    python -m bench.streams [--capacity 1,2,6,8] [--accuracy-streams 4]

Starts `callscribe serve` in its own process and replays the shared speech clips over the
native WebSocket, each stream sending 100 ms frames at real-time pace:

1. accuracy run: the 57 clips split over `--accuracy-streams` concurrent streams (1 s of
   silence after each clip). Streaming finals are scored (WER en, CER zh) against the
   references, and so is the offline file path (`Transcriber`) on the same clips, in the same
   run; latencies of this run are reported too;
2. capacity runs: K concurrent streams of about 40 s each, for each K given.

Latencies are measured by the client: first partial from the speech onset the server reports
(`start_ms`), end of speech to final from the final's `end_ms`, partial lag from each
partial's `end_ms`, all against when that audio was sent.
"""

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets

from asr_core.audio import decode_audio
from asr_core.engines import load_engine
from asr_core.evaluation import Scorer, Utterance, read_manifest
from asr_core.transcribe import TranscribeOptions, Transcriber
from bench.common import percentiles, testdata_dir, threads
from tests.services import CallscribeServer

SR = 16_000
FRAME_S = 0.1
GAP_S = 1.0


@dataclass
class Clip:
    utterance: Utterance
    audio: np.ndarray
    offset_s: float = 0.0
    """Where the clip starts in its stream."""


@dataclass
class StreamResult:
    finals: list[dict] = field(default_factory=list)
    first_partial_s: list[float] = field(default_factory=list)
    final_latency_s: list[float] = field(default_factory=list)
    partial_lag_s: list[float] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


async def run_stream(url: str, clips: list[Clip], start_delay: float) -> StreamResult:
    """One client: send the clips back to back at real-time pace, collect events."""
    pieces = []
    position = 0.0
    for clip in clips:
        clip.offset_s = position
        pieces += [clip.audio, np.zeros(int(GAP_S * SR), dtype=np.float32)]
        position += len(clip.audio) / SR + GAP_S
    pcm = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2").tobytes()
    frame_bytes = int(FRAME_S * SR) * 2
    result = StreamResult()
    await asyncio.sleep(start_delay)
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"language": "auto"}))
        await ws.recv()
        started = time.monotonic()
        seen_segments: set[int] = set()

        async def receive() -> None:
            async for raw in ws:
                event, now = json.loads(raw), time.monotonic()
                kind = event.get("type")
                if kind == "partial":
                    result.partial_lag_s.append(now - started - event["end_ms"] / 1000)
                    if event["segment"] not in seen_segments:
                        seen_segments.add(event["segment"])
                        result.first_partial_s.append(now - started - event["start_ms"] / 1000)
                elif kind == "final":
                    result.finals.append(event)
                    result.final_latency_s.append(now - started - event["end_ms"] / 1000)
                elif kind == "error":
                    result.errors.append(event)
                elif kind == "closed":
                    return

        receiver = asyncio.create_task(receive())
        for index in range(0, len(pcm), frame_bytes):
            await asyncio.sleep(max(0.0, started + index / 2 / SR - time.monotonic()))
            await ws.send(pcm[index : index + frame_bytes])
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 300)
    return result


async def run_streams(url: str, playlists: list[list[Clip]]) -> list[StreamResult]:
    return await asyncio.gather(
        *(run_stream(url, clips, 0.37 * i % 1.0) for i, clips in enumerate(playlists))
    )


def capacity_playlists(clips: list[Clip], streams: int, seconds: float) -> list[list[Clip]]:
    """`streams` playlists of about `seconds` each, each starting at another clip."""
    playlists = []
    for i in range(streams):
        chosen, total = [], 0.0
        for clip in clips[i * 7 % len(clips) :] + clips:
            if total >= seconds:
                break
            chosen.append(Clip(clip.utterance, clip.audio))
            total += len(clip.audio) / SR + GAP_S
        playlists.append(chosen)
    return playlists


def latency_report(results: list[StreamResult]) -> dict:
    return {
        "first_partial_s": percentiles([v for r in results for v in r.first_partial_s]),
        "end_of_speech_to_final_s": percentiles([v for r in results for v in r.final_latency_s]),
        "partial_lag_s": percentiles([v for r in results for v in r.partial_lag_s]),
        "errors": sum(len(r.errors) for r in results),
    }


def streaming_texts(playlists: list[list[Clip]], results: list[StreamResult]) -> dict[str, str]:
    """Assign every final to the clip its speech started in."""
    texts: dict[str, list[str]] = {}
    for clips, result in zip(playlists, results, strict=True):
        for final in result.finals:
            start = final["start_ms"] / 1000
            owner = max((c for c in clips if c.offset_s <= start + 0.3), key=lambda c: c.offset_s)
            texts.setdefault(owner.utterance.id, []).append(final["text"])
    return {key: " ".join(parts) for key, parts in texts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", default="1,2,6,8")
    parser.add_argument("--accuracy-streams", type=int, default=4)
    parser.add_argument("--capacity-seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, help="Per-clip texts, streamed and offline (JSONL)")
    args = parser.parse_args()

    utterances = read_manifest(testdata_dir() / "manifest.tsv")
    clips = [Clip(u, decode_audio(u.path)) for u in utterances]
    server = CallscribeServer({"CALLSCRIBE_LOG_LEVEL": "warning"})
    server.start()
    url = server.url.replace("http", "ws", 1) + "/v1/stream"
    report: dict = {"benchmark": "streams", "threads": threads(), "frame_s": FRAME_S}
    try:
        k = args.accuracy_streams
        playlists = [[Clip(c.utterance, c.audio) for c in clips[i::k]] for i in range(k)]
        results = asyncio.run(run_streams(url, playlists))
        streamed = streaming_texts(playlists, results)
        report["accuracy_run"] = {
            "streams": k,
            "audio_s_per_stream": round(
                max(sum(len(c.audio) / SR + GAP_S for c in p) for p in playlists), 1
            ),
            **latency_report(results),
        }
        capacity = {}
        for streams in [int(x) for x in args.capacity.split(",") if x]:
            playlists = capacity_playlists(clips, streams, args.capacity_seconds)
            capacity[str(streams)] = latency_report(asyncio.run(run_streams(url, playlists)))
        report["capacity_runs"] = capacity
    finally:
        server.close()

    transcriber = Transcriber(load_engine("whisper-base", cpu_threads=threads()))
    scorers = {"streaming": Scorer(), "offline_file_path": Scorer()}
    per_clip = []
    for clip in clips:
        u = clip.utterance
        offline = transcriber.transcribe(u.path, TranscribeOptions(allowed_languages=("en", "zh")))
        scorers["offline_file_path"].add(u, offline.text, [], offline.duration, 0)
        scorers["streaming"].add(u, streamed.get(u.id, ""), [], offline.duration, 0)
        per_clip.append(
            {
                "id": u.id,
                "language": u.language,
                "reference": u.reference,
                "streamed": streamed.get(u.id, ""),
                "offline": offline.text,
            }
        )
    if args.out:
        args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in per_clip))
    for name, scorer in scorers.items():
        languages = scorer.summary()["languages"]
        report.setdefault("accuracy", {})[name] = {
            "wer_en": languages["en"]["wer"],
            "cer_zh": languages["zh"]["cer"],
        }
    accuracy = report["accuracy"]
    report["accuracy"]["streaming_minus_offline_points"] = {
        "wer_en": round(
            100 * (accuracy["streaming"]["wer_en"] - accuracy["offline_file_path"]["wer_en"]), 2
        ),
        "cer_zh": round(
            100 * (accuracy["streaming"]["cer_zh"] - accuracy["offline_file_path"]["cer_zh"]), 2
        ),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
