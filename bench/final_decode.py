"""What one live final costs to decode, alone on an idle core: the floor under end of speech to
final, whatever the scheduling.

    python -m bench.final_decode [--threads 1]

Each shared clip up to the live maximum segment length (20 s) is decoded exactly as a live
final is (`StreamingOptions().decoding`: 15 s window, beam 5, word timestamps, language
detection between en and zh), and, in the same run, greedily (beam 1) for comparison. A final
can come no sooner than the larger of the endpoint's silence and the moment its speculative
decode (started after `speculate_after_ms` of silence) finishes, so the report adds that.
"""

import argparse
import json
import time
from dataclasses import replace

from asr_core import SAMPLE_RATE
from asr_core.audio import decode_audio
from asr_core.engines import load_engine
from asr_core.streaming import StreamingOptions
from asr_core.transcribe import checked_options, decode_window
from bench.common import percentiles, shared_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="Threads of the one decode")
    args = parser.parse_args()

    engine = load_engine("whisper-base", cpu_threads=args.threads)
    streaming = StreamingOptions()
    decoding = checked_options(engine, replace(streaming.decoding, language=None))
    variants = {"live_final_beam5": decoding, "greedy_beam1": replace(decoding, beam_size=1)}
    utterances, _ = shared_clips()
    clips = [decode_audio(u.path) for u in utterances]
    clips = [a for a in clips if len(a) <= streaming.endpoint.max_segment_s * SAMPLE_RATE]
    engine.encode(clips[0], min_window_s=streaming.final_window_s)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for audio in clips:
        for name, options in variants.items():
            started = time.perf_counter()
            encoded = engine.encode(audio, min_window_s=streaming.final_window_s)
            decode_window(engine, encoded, options, None)
            seconds[name].append(time.perf_counter() - started)
    silence_s = streaming.endpoint.silence_ms / 1000
    speculation_s = streaming.speculate_after_ms / 1000
    live = seconds["live_final_beam5"]
    report = {
        "benchmark": "final_decode",
        "threads": args.threads,
        "clips": len(clips),
        "speech_s": percentiles([len(a) / SAMPLE_RATE for a in clips]),
        "decode_s": {name: percentiles(values) for name, values in seconds.items()},
        "greedy_over_beam5": round(sum(seconds["greedy_beam1"]) / sum(live), 3),
        "end_of_speech_to_final_floor_s": percentiles(
            [max(silence_s, speculation_s + value) for value in live]
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
