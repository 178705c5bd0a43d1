"""Live partials in the wrong language: the first detection kept for the whole segment, or only
a sure one.

    python -m bench.partial_language [--clips 60] [--streams 4]

Two parts, both split as `bench.hotwords` splits the clips (tuning and held out):

1. `first_partials`: each clip's audio as the first partial of its segment sees it (half a
   second after the VAD onset, in the first-partial window), its language detected between
   English and Mandarin. How often the detection is wrong, and how many of the wrong ones fall
   below each share threshold: what `StreamingOptions.partial_language_sure` was chosen from
   (on the tuning part).
2. `streams`: the Mandarin clips streamed in process, K at a time at real-time pace, through
   the recogniser and the serve configuration's scheduler, with the first detection always
   kept (`partial_language_sure=0`, the behaviour before) and with the default, alternating
   clip by clip in the same run: segments whose last partial is in the wrong language, and
   partials in the wrong language.
"""

import argparse
import asyncio
import json
from dataclasses import replace

import numpy as np

from asr_core import SAMPLE_RATE
from asr_core.audio import decode_audio
from asr_core.engines import load_engine
from asr_core.engines.base import PartialRequest
from asr_core.streaming import DecodeScheduler, Partial, StreamingOptions, StreamingRecognizer
from asr_core.streaming.endpointer import Endpointer
from bench.hotwords import SPLITS, Clip, speech_clips

THRESHOLDS = (0.7, 0.8, 0.9, 0.95)
CHUNK = SAMPLE_RATE // 10


def first_partial_detection(engine, clip: Clip, options: StreamingOptions) -> dict | None:
    """The language the segment's first partial detects, and its share."""
    audio = decode_audio(clip.utterance.path)
    endpointer = Endpointer(options.endpoint)
    for offset in range(0, len(audio), CHUNK):
        endpointer.push(audio[offset : offset + CHUNK])
        due = endpointer.speech_start + int(options.first_partial_s * SAMPLE_RATE)
        if endpointer.in_speech and endpointer.received >= due:
            request = PartialRequest(
                endpointer.open_audio().copy(),
                None,
                min_window_s=options.first_partial_window_s,
            )
            result = engine.decode_partials([request])[0]
            return {"language": result.language, "share": result.language_probability}
    return None


def detection_table(engine, clips: list[Clip], options: StreamingOptions) -> dict:
    table = {}
    for split in SPLITS:
        found = [
            (clip, first_partial_detection(engine, clip, options))
            for clip in clips
            if clip.split == split
        ]
        found = [(clip, d) for clip, d in found if d is not None]
        wrong = [d["share"] for clip, d in found if d["language"] != clip.language]
        right = [d["share"] for clip, d in found if d["language"] == clip.language]
        table[split] = {
            "clips": len(found),
            "wrong": len(wrong),
            "wrong_shares": sorted(round(s, 3) for s in wrong),
            "by_threshold": {
                str(t): {
                    "wrong_caught": sum(s < t for s in wrong),
                    "right_left_unsure": sum(s < t for s in right),
                }
                for t in THRESHOLDS
            },
        }
    return table


async def stream_clip(scheduler, clip: Clip, options: StreamingOptions) -> dict:
    audio = np.concatenate(
        [decode_audio(clip.utterance.path), np.zeros(SAMPLE_RATE, dtype=np.float32)]
    )
    recognizer = StreamingRecognizer(scheduler, options)
    for offset in range(0, len(audio), CHUNK):
        await recognizer.push(audio[offset : offset + CHUNK])
        await asyncio.sleep(CHUNK / SAMPLE_RATE)
    await recognizer.close()
    segments: dict[int, list[Partial]] = {}
    while not recognizer.events.empty():
        event = recognizer.events.get_nowait()
        if isinstance(event, Partial):
            segments.setdefault(event.segment, []).append(event)
    return {
        "segments": len(segments),
        "last_wrong": sum(series[-1].language != clip.language for series in segments.values()),
        "partials": sum(len(series) for series in segments.values()),
        "wrong": sum(p.language != clip.language for s in segments.values() for p in s),
    }


async def stream_variants(scheduler, clips: list[Clip], variants: dict, streams: int) -> dict:
    """Every clip under every variant, the variants' order alternating clip by clip, `streams`
    clips at a time."""
    gate = asyncio.Semaphore(streams)
    rows: list[tuple[str, Clip, dict]] = []

    async def one(name: str, clip: Clip) -> None:
        async with gate:
            rows.append((name, clip, await stream_clip(scheduler, clip, variants[name])))

    order = [
        (name, clip)
        for i, clip in enumerate(clips)
        for name in (list(variants) if i % 2 == 0 else list(variants)[::-1])
    ]
    await asyncio.gather(*(one(name, clip) for name, clip in order))
    return {
        name: {
            split: {
                key: sum(r[key] for n, c, r in rows if n == name and c.split == split)
                for key in ("segments", "last_wrong", "partials", "wrong")
            }
            for split in SPLITS
        }
        for name in variants
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60, help="Mandarin clips to stream")
    parser.add_argument("--streams", type=int, default=4, help="Streams at once")
    args = parser.parse_args()

    clips = speech_clips()
    defaults = StreamingOptions()
    engine = load_engine("whisper-base", num_workers=3)
    report = {
        "benchmark": "partial_language",
        "partial_language_sure": defaults.partial_language_sure,
        "first_partials": detection_table(engine, clips, defaults),
    }
    variants = {"first_kept": replace(defaults, partial_language_sure=0.0), "sure_kept": defaults}
    scheduler = DecodeScheduler(engine, workers=2, first_partial_lane=True)
    scheduler.start()
    try:
        mandarin = [c for c in clips if c.language == "zh"][: args.clips]
        report["streams"] = asyncio.run(
            stream_variants(scheduler, mandarin, variants, args.streams)
        )
    finally:
        scheduler.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
