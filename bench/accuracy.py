"""Accuracy and speed of file transcription against plain faster-whisper, in one run.

    python -m bench.accuracy [--rounds 2] [--model whisper-base]

Both systems load the same model folder (int8, CPU, same thread count) and transcribe every
clip of the shared speech set with the manifest's language and beam 5. Clips alternate which
system goes first; each system's time per clip is its best over the rounds. Prints JSON with
both systems' scores and the ratios callscribe / faster-whisper.
"""

import argparse
import json
import time

from asr_core.engines import load_engine
from asr_core.evaluation import Scorer, vocabulary_by_language
from asr_core.model_registry import resolve_model
from asr_core.transcribe import TranscribeOptions, Transcriber
from bench.common import plain_faster_whisper, plain_transcribe, shared_clips, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="whisper-base")
    args = parser.parse_args()

    utterances, terms = shared_clips()
    vocabulary = vocabulary_by_language(t for ts in terms.values() for t in ts)

    transcriber = Transcriber(load_engine(args.model, cpu_threads=threads()))
    baseline = plain_faster_whisper(resolve_model(args.model))

    def ours(u):
        transcript = transcriber.transcribe(u.path, TranscribeOptions(language=u.language))
        return transcript.text, transcript.duration

    def plain(u):
        return plain_transcribe(baseline, u.path, u.language)

    systems = {"callscribe": ours, "faster_whisper": plain}
    outputs = {name: {} for name in systems}
    best_time = {name: {} for name in systems}
    for round_index in range(args.rounds):
        for index, utterance in enumerate(utterances):
            order = list(systems) if (index + round_index) % 2 == 0 else list(systems)[::-1]
            for name in order:
                started = time.perf_counter()
                text, duration = systems[name](utterance)
                elapsed = time.perf_counter() - started
                outputs[name][utterance.id] = (text, duration)
                previous = best_time[name].get(utterance.id, float("inf"))
                best_time[name][utterance.id] = min(previous, elapsed)

    report = {
        "benchmark": "accuracy",
        "model": args.model,
        "threads": threads(),
        "rounds": args.rounds,
        "clips": len(utterances),
    }
    for name in systems:
        scorer = Scorer(vocabulary=vocabulary)
        for u in utterances:
            text, duration = outputs[name][u.id]
            scorer.add(u, text, terms.get(u.id, []), duration, best_time[name][u.id])
        report[name] = scorer.summary()
    ours_s, plain_s = report["callscribe"], report["faster_whisper"]
    report["ratios_callscribe_over_faster_whisper"] = {
        "wer_en": _ratio(ours_s["languages"]["en"]["wer"], plain_s["languages"]["en"]["wer"]),
        "cer_zh": _ratio(ours_s["languages"]["zh"]["cer"], plain_s["languages"]["zh"]["cer"]),
        "time": _ratio(ours_s["elapsed_s"], plain_s["elapsed_s"]),
    }
    print(json.dumps(report, indent=2))


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


if __name__ == "__main__":
    main()
