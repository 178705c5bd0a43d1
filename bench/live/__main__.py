"""Live captions at call-center load: K concurrent real-time streams, both protocols.

    python -m bench.live [--streams 1,4,8,12] [--protocols native,funasr]
                         [--data speech,speech-zh] [--clips 40] [--per-stream 10]
                         [--variant NAME[:checkout=PATH,CALLSCRIBE_X=value,...]] ...
                         [--rounds 1] [--per-clip clips.jsonl]

For every variant, `callscribe serve` runs in its own process (a variant may name another
checkout, e.g. the baseline exported with `git archive`, and `CALLSCRIBE_*` settings). Then
for each round, each K, each protocol and each variant in turn (alternating, so a noisy
minute on the shared machine does not land on one side only), K clients stream the run's clips
at real-time pace, one connection per clip, and time what arrives (`bench/live/clients.py`).
Afterwards every clip is transcribed once more through each server's file endpoint
(`POST /v1/audio/transcriptions`, language detected, as the streams): the offline path the
streamed finals are scored against (WER en, CER zh), in the same run.

Clips: each data set's manifest in a fixed shuffled order, the first `--clips` of each,
interleaved; a run at K streams takes the first `K x --per-stream` of those (all with
`--per-stream 0`), stream i playing every K-th. Each clip is in the `tune` or the `held_out`
half (by its manifest position): tune scheduling rules on one half, report the other; both
are printed.

Prints one JSON document; progress goes to stderr. Run latency measurements under
`flock /work/wt/bench.lock` on shared machines and read `machine` in each run: the cores other
processes kept busy meanwhile.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

from asr_core.audio import decode_audio
from asr_core.evaluation import Scorer, Utterance, read_manifest
from bench.common import REPO, percentiles, testdata_dir
from bench.live.clients import CLIENTS, SR, ClipResult
from bench.live.machine import CpuWindow
from tests.services import CallscribeServer

DATA_SETS = {"speech": "speech", "speech-zh": "speech-zh"}


@dataclass
class Clip:
    utterance: Utterance
    audio: np.ndarray
    data_set: str
    part: str
    """`tune` or `held_out`."""


@dataclass
class Variant:
    name: str
    checkout: Path
    settings: dict[str, str]
    server: CallscribeServer | None = None

    @classmethod
    def parse(cls, spec: str) -> "Variant":
        """`NAME` or `NAME:key=value,...`; the key `checkout` names another source tree."""
        name, _, rest = spec.partition(":")
        settings = dict(item.split("=", 1) for item in rest.split(",") if item)
        checkout = Path(settings.pop("checkout", REPO)).resolve()
        if not (checkout / "callscribe").is_dir():
            sys.exit(f"variant {name}: {checkout} is not a callscribe checkout")
        bad = [key for key in settings if not key.startswith("CALLSCRIBE_")]
        if bad:
            sys.exit(f"variant {name}: settings must be CALLSCRIBE_* variables, not {bad}")
        return cls(name or "head", checkout, settings)

    def start(self) -> None:
        self.server = CallscribeServer(
            {
                "PYTHONPATH": str(self.checkout),  # ahead of the editable install
                "CALLSCRIBE_LOG_LEVEL": "warning",
                "CALLSCRIBE_TENANT_MAX_STREAMS": "64",
                **self.settings,
            }
        )
        self.server.start()

    def ws_url(self, path: str) -> str:
        return self.server.url.replace("http", "ws", 1) + path


def load_clips(names: list[str], per_set: int) -> list[Clip]:
    """The first `per_set` clips of each data set in a fixed shuffled order, interleaved."""
    root = testdata_dir().parent
    sets = []
    for name in names:
        folder = Path(name) if "/" in name else root / DATA_SETS.get(name, name)
        if not (folder / "manifest.tsv").is_file():
            sys.exit(f"data set {name}: no manifest.tsv in {folder}")
        utterances = read_manifest(folder / "manifest.tsv")
        positions = {u.id: i for i, u in enumerate(utterances)}
        random.Random(16).shuffle(utterances)
        chosen = utterances[:per_set] if per_set else utterances
        sets.append(
            [
                Clip(
                    u,
                    decode_audio(u.path),
                    folder.name,
                    "tune" if positions[u.id] % 2 == 0 else "held_out",
                )
                for u in chosen
            ]
        )
    return [clip for group in _interleave(sets) for clip in group]


def _interleave(sets: list[list[Clip]]):
    for index in range(max(len(s) for s in sets)):
        yield [s[index] for s in sets if index < len(s)]


async def run_streams(
    variant: Variant, protocol: str, clips: list[Clip], streams: int, silence_s: float
) -> list[tuple[Clip, ClipResult]]:
    client, path = CLIENTS[protocol]
    url = variant.ws_url(path)
    results: list[tuple[Clip, ClipResult]] = []

    async def one_stream(index: int) -> None:
        await asyncio.sleep(0.37 * index % 1.0)  # callers do not start in lockstep
        for clip in clips[index::streams]:
            try:
                result = await client(url, clip.utterance.id, clip.audio, silence_s)
            except Exception as exc:  # a refused or broken connection is a result too
                result = ClipResult(clip.utterance.id, protocol, errors=[repr(exc)])
            results.append((clip, result))

    await asyncio.gather(*(one_stream(i) for i in range(streams)))
    return results


def transcribe_offline(variant: Variant, clips: list[Clip]) -> dict[str, str]:
    """Each clip through the server's file endpoint, one at a time, language detected."""
    texts = {}
    with httpx.Client(base_url=variant.server.url, timeout=300) as http:
        for clip in clips:
            with open(clip.utterance.path, "rb") as handle:
                response = http.post(
                    "/v1/audio/transcriptions",
                    files={"file": (clip.utterance.path.name, handle)},
                    data={"response_format": "json"},
                )
            response.raise_for_status()
            texts[clip.utterance.id] = response.json()["text"]
    return texts


def latency(rows: list[tuple[Clip, ClipResult]]) -> dict:
    return {
        "clips": len(rows),
        "first_partial_s": percentiles(
            [r.first_partial_s for _, r in rows if r.first_partial_s is not None]
        ),
        "end_of_speech_to_final_s": percentiles(
            [r.final_s for _, r in rows if r.final_s is not None]
        ),
        "no_partial": sum(r.first_partial_s is None for _, r in rows),
        "no_final": sum(r.final_s is None for _, r in rows),
        "finals_by_endpointing": sum(r.final_before_end for _, r in rows),
    }


def accuracy(rows: list[tuple[Clip, ClipResult]], offline: dict[str, str]) -> dict:
    """WER en / CER zh of the streamed finals and of the offline path on the same clips."""
    streamed, reference = Scorer(), Scorer()
    for clip, result in rows:
        duration = len(clip.audio) / SR
        streamed.add(clip.utterance, result.text, [], duration, 0)
        reference.add(clip.utterance, offline.get(clip.utterance.id, ""), [], duration, 0)
    report = {}
    for language, key in (("en", "wer"), ("zh", "cer")):
        s = streamed.summary()["languages"].get(language)
        o = reference.summary()["languages"].get(language)
        if s is None:
            continue
        report[f"{key}_{language}"] = {
            "clips": s["utterances"],
            "streamed": s[key],
            "offline": o[key],
            "points_over_offline": round(100 * (s[key] - o[key]), 2),
        }
    return report


def summarize(rows: list[tuple[Clip, ClipResult]], offline: dict[str, str]) -> dict:
    def part(selected):
        return {**latency(selected), "accuracy": accuracy(selected, offline)}

    errors = [f"{r.clip}: {e}" for _, r in rows for e in r.errors]
    return {
        **part(rows),
        "errors": len(errors),
        "error_examples": errors[:5],
        "by_data_set": {
            name: latency([row for row in rows if row[0].data_set == name])
            for name in sorted({clip.data_set for clip, _ in rows})
        },
        "by_part": {
            name: part([row for row in rows if row[0].part == name])
            for name in ("tune", "held_out")
        },
    }


def table(runs: list[dict]) -> list[str]:
    """One line per run, for reading at a glance (the JSON above has everything)."""
    lines = []
    for run in runs:
        fp, fin = run["first_partial_s"], run["end_of_speech_to_final_s"]
        acc = " ".join(
            f"{k} {v['streamed']:.4f}/{v['offline']:.4f} ({v['points_over_offline']:+.2f})"
            for k, v in run["accuracy"].items()
        )
        lines.append(
            f"{run['variant']:>10} K={run['streams']:<2} {run['protocol']:<6} "
            f"first partial p50/p95 {fp.get('p50')}/{fp.get('p95')} s  "
            f"final p50/p95/max {fin.get('p50')}/{fin.get('p95')}/{fin.get('max')} s  "
            f"no final {run['no_final']}  errors {run['errors']}  {acc}  "
            f"other cores busy {run['machine']['other_cores_busy']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", default="1,4,8,12", help="Concurrent streams per run")
    parser.add_argument("--protocols", default="native,funasr")
    parser.add_argument("--data", default="speech,speech-zh", help="Data set names or folders")
    parser.add_argument("--clips", type=int, default=40, help="Clips per data set (0: all)")
    parser.add_argument(
        "--per-stream", type=int, default=10, help="Clips per stream at most (0: all clips)"
    )
    parser.add_argument("--silence-s", type=float, default=1.5, help="Silence after each clip")
    parser.add_argument("--variant", action="append", help="NAME[:checkout=PATH,KEY=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=1, help="Repeat every run this many times")
    parser.add_argument("--per-clip", type=Path, help="Write every clip's results (JSONL)")
    args = parser.parse_args()

    ks = [int(k) for k in args.streams.split(",") if k]
    protocols = [p for p in args.protocols.split(",") if p]
    unknown = [p for p in protocols if p not in CLIENTS]
    if unknown:
        sys.exit(f"unknown protocol(s) {unknown}: use {', '.join(CLIENTS)}")
    variants = [Variant.parse(spec) for spec in args.variant or ["head"]]
    if len({v.name for v in variants}) != len(variants):
        sys.exit("variant names must differ")
    clips = load_clips([d for d in args.data.split(",") if d], args.clips)
    print(f"{len(clips)} clips, {len(variants)} variant(s)", file=sys.stderr)

    report: dict = {
        "benchmark": "live",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {**vars(args), "per_clip": str(args.per_clip) if args.per_clip else None},
        "variants": {v.name: {"checkout": str(v.checkout), **v.settings} for v in variants},
    }
    runs, raw = [], []
    used: dict[str, Clip] = {}
    try:
        for variant in variants:
            variant.start()
        step = 0
        for round_ in range(args.rounds):
            for k in ks:
                count = min(len(clips), k * args.per_stream) if args.per_stream else len(clips)
                run_clips = clips[:count]
                used.update((c.utterance.id, c) for c in run_clips)
                for protocol in protocols:
                    order = variants if step % 2 == 0 else variants[::-1]
                    step += 1
                    for variant in order:
                        print(
                            f"round {round_ + 1}: {variant.name}, {k} {protocol} streams, "
                            f"{count} clips",
                            file=sys.stderr,
                        )
                        window = CpuWindow(variant.server.process.pid).start()
                        rows = asyncio.run(
                            run_streams(variant, protocol, run_clips, k, args.silence_s)
                        )
                        raw.append((variant.name, k, protocol, round_, window.stop(), rows))
        offline = {}
        for variant in variants:
            print(f"offline path on {variant.name}: {len(used)} clips", file=sys.stderr)
            offline[variant.name] = transcribe_offline(variant, list(used.values()))
    finally:
        for variant in variants:
            if variant.server is not None:
                variant.server.close()

    for name, k, protocol, round_, machine, rows in raw:
        runs.append(
            {
                "variant": name,
                "streams": k,
                "protocol": protocol,
                "round": round_ + 1,
                "machine": machine,
                **summarize(rows, offline[name]),
            }
        )
    report["runs"] = runs
    report["table"] = table(runs)
    if args.per_clip:
        with args.per_clip.open("w", encoding="utf-8") as out:
            for name, k, _protocol, round_, _, rows in raw:
                for clip, result in rows:
                    row = {"variant": name, "streams": k, "round": round_ + 1, **asdict(result)}
                    row["offline"] = offline[name].get(clip.utterance.id, "")
                    row["reference"] = clip.utterance.reference
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print("\n".join(report["table"]), file=sys.stderr)


if __name__ == "__main__":
    main()
