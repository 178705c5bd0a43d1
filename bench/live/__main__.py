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
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.live.clients import CLIENTS
from bench.live.machine import CpuWindow
from bench.live.runs import (
    COMMITTED,
    Clip,
    Variant,
    load_clips,
    run_streams,
    summarize,
    table,
    transcribe_offline,
)


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
                        committed = variant.counter(COMMITTED)
                        rows = asyncio.run(
                            run_streams(variant, protocol, run_clips, k, args.silence_s)
                        )
                        machine = window.stop()
                        after = variant.counter(COMMITTED)
                        machine["server_answers"] = after is not None
                        if after is not None and committed is not None:
                            machine["committed_audio_s"] = round(after - committed, 1)
                        raw.append((variant.name, k, protocol, round_, machine, rows))
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
