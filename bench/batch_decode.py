"""What a batch of B live decodes costs in one CTranslate2 call, against B single calls.

    python -m bench.batch_decode [--batches 1,2,4,8] [--threads 1] [--rounds 3]

The decode scheduler can hand a worker the finals (or partials) of several streams at once;
whether one call for B of them beats B calls decides its batch policy. Each shared clip up to
the live maximum segment (20 s) is one stream's utterance. For each batch size B, groups of B
clips are decoded both ways in the same run, alternating which goes first:

- `encoder`: the encoder on the live final's window (15 s, longer for longer speech);
- `final_decoder`: beam 5 with timestamps (what a final's text costs), then the word
  alignment pass (`align`);
- `partial`: what a refinement partial costs: encoder on a 10 s window + greedy decode
  without timestamps;
- `final` (a live final's whole path): `streaming.finals.decode_finals` on B streams' finals
  (`encode_batch` + `decode_batch`) against B finals decoded one by one: language, prompt,
  fallback, timestamps, words.

Reported per B: seconds per call, per utterance, and `batch_over_singles` (the batched call's
time over the B single calls' total: under 1 means batching saves that fraction).
One thread by default: what each of `callscribe serve`'s decode workers gets on 2 cores.
"""

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace

import ctranslate2
import numpy as np
from faster_whisper.transcribe import get_ctranslate2_storage

from asr_core import SAMPLE_RATE
from asr_core.audio import decode_audio
from asr_core.engines import load_engine
from asr_core.streaming import StreamingOptions
from asr_core.streaming.finals import FinalRequest, decode_finals
from asr_core.transcribe import checked_options
from bench.common import shared_clips


def _features(engine, audio: np.ndarray, window_s: float) -> np.ndarray:
    features = engine._model.feature_extractor(audio)
    return engine._window(features, window_s)


def _stack(windows: list[np.ndarray]) -> np.ndarray:
    frames = max(w.shape[-1] for w in windows)
    return np.stack([np.pad(w, ((0, 0), (0, frames - w.shape[-1])), mode="edge") for w in windows])


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


class Kernels:
    """The raw CTranslate2 calls of a live decode, for a group of clips."""

    def __init__(self, engine, clips: list[tuple[np.ndarray, str]], final_window_s: float):
        self.engine = engine
        self.model = engine._model
        self.audio = [audio for audio, _ in clips]
        self.final_windows = [_features(engine, a, final_window_s) for a, _ in clips]
        self.partial_windows = [_features(engine, a, 10.0) for a, _ in clips]
        self.languages = [language for _, language in clips]
        self.num_frames = [min(w.shape[-1], 3000) for w in self.final_windows]

    def prompts(self, indices, timestamps: bool) -> list[list[int]]:
        return [
            self.model.get_prompt(
                self.engine._tokenizer(self.languages[i])[0], [], without_timestamps=not timestamps
            )
            for i in indices
        ]

    def encode(self, indices, windows) -> object:
        return self.model.model.encode(
            get_ctranslate2_storage(_stack([windows[i] for i in indices]))
        )

    def final_decoder(self, indices, encoded) -> None:
        suppressed = self.engine._tokenizer(self.languages[indices[0]])[1]
        results = self.model.model.generate(
            encoded,
            self.prompts(indices, timestamps=True),
            beam_size=5,
            max_length=self.model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
            max_initial_timestamp_index=50,
        )
        by_language: dict[str, list[int]] = {}
        for position, i in enumerate(indices):
            by_language.setdefault(self.languages[i], []).append(position)
        for language, positions in by_language.items():
            tokenizer = self.engine._tokenizer(language)[0]
            texts = [
                [t for t in results[p].sequences_ids[0] if t < tokenizer.eot] for p in positions
            ]
            part = encoded
            if len(positions) != len(indices):  # the align pass takes one language at a time
                part = ctranslate2.StorageView.from_array(np.asarray(encoded)[positions])
            self.model.model.align(
                part,
                tokenizer.sot_sequence,
                texts,
                max(self.num_frames[indices[p]] for p in positions),
                median_filter_width=7,
            )

    def partial(self, indices) -> None:
        encoded = self.encode(indices, self.partial_windows)
        suppressed = self.engine._tokenizer(self.languages[indices[0]])[1]
        self.model.model.generate(
            encoded,
            self.prompts(indices, timestamps=False),
            beam_size=1,
            max_length=120,
            suppress_blank=True,
            suppress_tokens=suppressed,
        )


def comparisons(kernels: Kernels, engine, indices: list[int], decoding, window_s: float):
    """{name: (one call for the group, one call per clip)} for a group of clips."""
    batch_encoded = kernels.encode(indices, kernels.final_windows)
    single_encoded = [kernels.encode([i], kernels.final_windows) for i in indices]
    requests = [FinalRequest(engine, kernels.audio[i], decoding, window_s) for i in indices]

    pairs = {
        "encoder": (
            lambda: kernels.encode(indices, kernels.final_windows),
            lambda: [kernels.encode([i], kernels.final_windows) for i in indices],
        ),
        "final_decoder": (
            lambda: kernels.final_decoder(indices, batch_encoded),
            lambda: [
                kernels.final_decoder([i], e) for i, e in zip(indices, single_encoded, strict=True)
            ],
        ),
        "partial": (
            lambda: kernels.partial(indices),
            lambda: [kernels.partial([i]) for i in indices],
        ),
    }
    pairs["final"] = (
        lambda: decode_finals(requests),
        lambda: [request() for request in requests],
    )
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="Groups per batch size")
    args = parser.parse_args()

    engine = load_engine("whisper-base", cpu_threads=args.threads)
    streaming = StreamingOptions()
    utterances, _ = shared_clips()
    clips = [(decode_audio(u.path), u.language) for u in utterances]
    longest = streaming.endpoint.max_segment_s * SAMPLE_RATE
    clips = [clips[i] for i in np.random.default_rng(16).permutation(len(clips))]
    clips = [(audio, language) for audio, language in clips if len(audio) <= longest]
    kernels = Kernels(engine, clips, streaming.final_window_s)
    decoding = checked_options(engine, replace(streaming.decoding, language=None))
    kernels.partial([0])  # warm-up

    report: dict = {"benchmark": "batch_decode", "threads": args.threads, "batches": {}}
    cursor = 0
    for batch in [int(b) for b in args.batches.split(",") if b]:
        times: dict[str, dict[str, list[float]]] = {}
        speech = 0.0
        for round_ in range(args.rounds):
            indices = [(cursor + i) % len(clips) for i in range(batch)]
            cursor += batch
            speech += sum(len(kernels.audio[i]) for i in indices) / SAMPLE_RATE
            pairs = comparisons(kernels, engine, indices, decoding, streaming.final_window_s)
            for name, (batched, singles) in pairs.items():
                order = [("batched", batched), ("singles", singles)]
                for label, work in order if round_ % 2 == 0 else order[::-1]:
                    times.setdefault(name, {}).setdefault(label, []).append(_timed(work))
        report["batches"][str(batch)] = {
            "speech_s_per_utterance": round(speech / batch / args.rounds, 2),
            **{
                name: {
                    "batched_call_s": round(statistics.mean(t["batched"]), 3),
                    "single_calls_s": round(statistics.mean(t["singles"]), 3),
                    "per_utterance_batched_s": round(statistics.mean(t["batched"]) / batch, 3),
                    "batch_over_singles": round(sum(t["batched"]) / sum(t["singles"]), 3),
                }
                for name, t in times.items()
            },
        }
        print(json.dumps({str(batch): report["batches"][str(batch)]}), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
