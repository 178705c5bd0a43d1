"""Tail-only finals against whole-segment finals: accuracy, and how much decoding they save.

    python -m bench.tail_finals [--data speech,speech-zh] [--clips 30] [--min-s 6]

Each clip (the first `--clips` of each data set in bench.live's shuffled order, those of at
least `--min-s` seconds: tail-only finals only act on long utterances) is streamed through
the recognizer in this process twice, with `tail_finals` on and off, 100 ms at a time,
letting every decode finish before the next push. That takes the machine's speed out of the
comparison: every pause's speculative final completes and every partial arrives, as on an
idle server, so the commits are the most this audio allows (on a loaded server fewer
speculations finish in time, and fewer commits happen). Both variants' finals are scored
against the references and against the offline file path on the same clips (WER en, CER zh),
per half (`tune`, `held_out`, as bench.live splits them); the decoding saved is the audio the
finals decoded and the seconds their decodes took.
"""

import argparse
import asyncio
import json
import time
from dataclasses import replace

from asr_core.engines import load_engine
from asr_core.evaluation import Scorer
from asr_core.streaming import (
    DecodeScheduler,
    Final,
    StreamingOptions,
    StreamingRecognizer,
    StreamObserver,
)
from asr_core.transcribe import TranscribeOptions, Transcriber
from bench.live.runs import load_clips

SR = 16_000
CHUNK = SR // 10


class Decoding(StreamObserver):
    def __init__(self) -> None:
        self.audio_s = 0.0
        self.compute_s = 0.0
        self.committed_s = 0.0

    def final_decoded(self, audio_s: float, compute_s: float) -> None:
        self.audio_s += audio_s
        self.compute_s += compute_s

    def committed(self, audio_s: float) -> None:
        self.committed_s += audio_s


async def settled(scheduler, audio, options: StreamingOptions, observer: Decoding) -> str:
    recognizer = StreamingRecognizer(scheduler, options, observer)
    for offset in range(0, len(audio), CHUNK):
        await recognizer.push(audio[offset : offset + CHUNK])
        while not scheduler.idle or recognizer._partial_task is not None:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0)
    await recognizer.close()
    finals = []
    while not recognizer.events.empty():
        event = recognizer.events.get_nowait()
        if isinstance(event, Final):
            finals.append(event.text)
    return " ".join(finals)


def summary(scorer: Scorer) -> dict:
    languages = scorer.summary()["languages"]
    return {
        f"{key}_{lang}": languages[lang][key]
        for lang, key in (("en", "wer"), ("zh", "cer"))
        if lang in languages
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="speech,speech-zh")
    parser.add_argument("--clips", type=int, default=30, help="Clips per data set (0: all)")
    parser.add_argument("--min-s", type=float, default=6.0, help="Shortest clip to stream")
    args = parser.parse_args()

    engine = load_engine("whisper-base", cpu_threads=1)
    scheduler = DecodeScheduler(engine, workers=1, first_partial_lane=True)
    scheduler.start()
    transcriber = Transcriber(engine)
    clips = load_clips(args.data.split(","), args.clips)
    clips = [clip for clip in clips if len(clip.audio) >= args.min_s * SR]
    variants = {"tail_finals": True, "whole_segment": False}
    scorers = {
        (name, part): Scorer() for name in [*variants, "offline"] for part in ("tune", "held_out")
    }
    work = {name: Decoding() for name in variants}
    per_clip = []
    started = time.monotonic()
    try:
        for clip in clips:
            u = clip.utterance
            duration = len(clip.audio) / SR
            texts = {}
            for name, tail in variants.items():
                base = StreamingOptions()
                options = replace(
                    base, tail_finals=tail, decoding=replace(base.decoding, language=None)
                )
                texts[name] = asyncio.run(settled(scheduler, clip.audio, options, work[name]))
            texts["offline"] = transcriber.transcribe(u.path, TranscribeOptions()).text
            for name, text in texts.items():
                scorers[(name, clip.part)].add(u, text, [], duration, 0)
            per_clip.append({"id": u.id, "part": clip.part, **texts})
    finally:
        scheduler.stop()
    report = {
        "benchmark": "tail_finals",
        "clips": len(clips),
        "audio_s": round(sum(len(c.audio) for c in clips) / SR, 1),
        "wall_s": round(time.monotonic() - started, 1),
        "accuracy": {
            part: {name: summary(scorers[(name, part)]) for name in [*variants, "offline"]}
            for part in ("tune", "held_out")
        },
        "decoding": {
            name: {
                "committed_audio_s": round(w.committed_s, 1),
                "final_audio_decoded_s": round(w.audio_s, 1),
                "final_decode_s": round(w.compute_s, 2),
            }
            for name, w in work.items()
        },
        "texts_differ": sum(row["tail_finals"] != row["whole_segment"] for row in per_clip),
        "per_clip": per_clip,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
