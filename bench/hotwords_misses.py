"""Which stage of the hot-word pipeline loses each missed term, on the tuning part.

    python -m bench.hotwords_misses [--languages zh] [--split tune] [--cache FILE]

For every clip term (hotwords.tsv) hidden in the 1,000-distractor list (`bench.hotwords`), the
clip is decoded stage by stage, window by window, and each term gets the first stage where it
is lost:

- `heard`: the first pass (the no-list text) already has it;
- `not_retrieved`: retrieval did not put it in the prompt (`alone` says whether it would have
  been retrieved from a list holding only it: otherwise it lost to other phrases in the top-K);
- `not_written`: prompted, but the second pass did not write it;
- `refused:<reason>`: written, but the guard refused the whole second pass;
- `not_taken`: written, the pass accepted, but the guard did not place it;
- `found`: it is in the final text.

Each decode is cached (`--cache`, JSON lines, keyed by clip, window and prompt) so a change of
retrieval or guard is replayed without decoding again. Held-out clips are never decoded unless
`--split held-out` is given; tuning work reads only the tuning part.
"""

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from asr_core.engines import load_engine
from asr_core.evaluation import Scorer, contains_term, normalize
from asr_core.hotwords import Hotword, HotwordIndex, HotwordList
from asr_core.hotwords.guard import SecondPass, judge
from asr_core.hotwords.index import Candidate
from asr_core.transcribe import (
    TranscribeOptions,
    checked_options,
    decode_window,
    merge_hotword_pass,
    next_prompt,
)
from asr_core.transcript import Segment, join_text
from bench.common import threads
from bench.hotwords import SPLITS, Clip, clip_windows, speech_clips, tenant_lists


class Decodes:
    """First and second passes of the clips' windows, from the cache or decoded once."""

    def __init__(self, path: Path, model: str) -> None:
        self.path, self.model = path, model
        self.rows: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.rows[row["key"]] = row
        self._engine = None
        self._encoded: dict[str, list] = {}

    @property
    def engine(self):
        if self._engine is None:
            self._engine = load_engine(self.model, cpu_threads=threads())
        return self._engine

    def windows(self, clip: Clip) -> list[dict]:
        """Per window: the first pass's segments (text, avg_logprob) and the prompt carried."""
        key = f"first|{clip.utterance.id}"
        if key not in self.rows:
            self._save({"key": key, "windows": self._first_passes(clip)})
        return self.rows[key]["windows"]

    def second(self, clip: Clip, window: int, phrases: tuple[str, ...]) -> SecondPass:
        key = f"second|{clip.utterance.id}|{window}|{json.dumps(phrases, ensure_ascii=False)}"
        if key not in self.rows:
            engine = self.engine
            encoded = self._encode(clip)[window]
            first = self.windows(clip)[window]
            options = checked_options(engine, TranscribeOptions(language=clip.language))
            segments = _segments(first["segments"])
            listed = replace(options, prompt=first["prompt"], hotwords=phrases)
            candidates = [Candidate(Hotword(p), 100.0, "", 0, 0) for p in phrases]
            # Real spans only matter to the `hinted` form, which no language uses.
            second = engine.hotword_pass(encoded, listed, segments, candidates)
            self._save(
                {"key": key, "second": [second.text, second.avg_logprob, second.first_avg_logprob]}
            )
        return SecondPass(*self.rows[key]["second"])

    def _first_passes(self, clip: Clip) -> list[dict]:
        engine = self.engine
        options = checked_options(engine, TranscribeOptions(language=clip.language))
        rows, prompt = [], None
        for encoded in self._encode(clip):
            segments = decode_window(engine, encoded, options, prompt).segments
            rows.append(
                {
                    "prompt": prompt,
                    "segments": [[s.text, s.avg_logprob] for s in segments],
                }
            )
            prompt = next_prompt(prompt, segments, options)
        return rows

    def _encode(self, clip: Clip) -> list:
        if clip.utterance.id not in self._encoded:
            engine = self.engine
            options = checked_options(engine, TranscribeOptions(language=clip.language))
            self._encoded[clip.utterance.id] = [
                engine.encode(window.audio) for window in clip_windows(engine, clip, options)
            ]
        return self._encoded[clip.utterance.id]

    def _save(self, row: dict) -> None:
        self.rows[row["key"]] = row
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _segments(rows: list) -> list[Segment]:
    return [Segment(0, 0, text, avg_logprob=logprob) for text, logprob in rows]


def trace(clip: Clip, decodes: Decodes, index: HotwordIndex, options: TranscribeOptions) -> dict:
    """The clip's texts at each stage, and what was retrieved, written and decided."""
    stages = {"first": [], "second": [], "final": []}
    retrieved: list[str] = []
    outcomes: list[str] = []
    for number, window in enumerate(decodes.windows(clip)):
        segments = _segments(window["segments"])
        text = "".join(s.text for s in segments)
        stages["first"].append(text)
        candidates = index.retrieve(text, options.hotword_top_k) if text.strip() else []
        retrieved += [c.phrase for c in candidates]
        second = None
        if candidates:
            second = decodes.second(clip, number, tuple(c.phrase for c in candidates))
            stages["second"].append(second.text)
            outcomes.append(judge(text, second, candidates, options.hotword_guard).outcome)
        merge_hotword_pass(segments, candidates, second, options)
        stages["final"].append("".join(s.text for s in segments))
    texts = {name: join_text(pieces) for name, pieces in stages.items()}
    return {
        "texts": texts,
        "first_windows": stages["first"],
        "retrieved": retrieved,
        "outcomes": outcomes,
    }


def attribute(clip: Clip, term: str, traced: dict) -> dict:
    """The first stage that loses `term` in this clip."""
    language = clip.language

    def has(text: str) -> bool:
        return contains_term(normalize(text, language), term, language)

    texts = traced["texts"]
    if has(texts["final"]):
        stage = "heard" if has(texts["first"]) else "found"
    elif has(texts["first"]):
        stage = "lost"  # the first pass had it and the list took it away
    elif term not in traced["retrieved"]:
        alone = HotwordIndex(HotwordList([Hotword(term)]))
        found_alone = any(alone.retrieve(text) for text in traced["first_windows"])
        stage = "not_retrieved" + (":crowded_out" if found_alone else ":below_threshold")
    elif not has(texts["second"]):
        stage = "not_written"
    elif any(o not in ("accepted", "unchanged") for o in traced["outcomes"]):
        refused = [o for o in traced["outcomes"] if o not in ("accepted", "unchanged")]
        stage = "refused:" + ",".join(refused)
    else:
        stage = "not_taken"
    return {
        "id": clip.utterance.id,
        "term": term,
        "stage": stage,
        **traced["texts"],
        "reference": clip.utterance.reference,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--split", choices=SPLITS, default="tune")
    parser.add_argument("--languages", nargs="+", choices=("zh", "en"), default=["zh"])
    parser.add_argument("--cache", type=Path, default=Path("bench-hotwords-misses.jsonl"))
    parser.add_argument("--list", choices=("with_terms", "distractors"), default="with_terms")
    parser.add_argument("--details", action="store_true", help="print every miss")

    args = parser.parse_args()

    clips = speech_clips()
    lists = tenant_lists(clips)
    indexes = lists.indexes(args.list)
    vocabulary = lists.with_terms if args.list == "with_terms" else lists.distractors
    decodes = Decodes(args.cache, args.model)
    run = [c for c in clips if c.split == args.split and c.language in args.languages]
    report: dict = {"split": args.split, "list": args.list, "languages": {}}
    for language in args.languages:
        ours = [c for c in run if c.language == language]
        options = TranscribeOptions(language=language, hotword_index=indexes[language])
        stages: Counter = Counter()
        misses, changed = [], 0
        plain = Scorer(vocabulary={language: vocabulary[language]})
        listed = Scorer(vocabulary={language: vocabulary[language]})
        for number, clip in enumerate(ours, 1):
            traced = trace(clip, decodes, indexes[language], options)
            changed += traced["texts"]["final"] != traced["texts"]["first"]
            plain.add(clip.utterance, traced["texts"]["first"], list(clip.terms), 0, 0)
            listed.add(clip.utterance, traced["texts"]["final"], list(clip.terms), 0, 0)
            for term in clip.terms:
                row = attribute(clip, term, traced)
                stages[row["stage"]] += 1
                if row["stage"] not in ("heard", "found"):
                    misses.append(row)
            print(f"[{number}/{len(ours)}] {clip.utterance.id}", file=sys.stderr, flush=True)
        terms = sum(stages.values())
        report["languages"][language] = {
            "clips": len(ours),
            "terms": terms,
            "recall": round((stages["heard"] + stages["found"]) / max(terms, 1), 4),
            "texts_changed": changed,
            "no_list": _scores(plain, language),
            "list": _scores(listed, language),
            "stages": dict(stages.most_common()),
            **({"misses": misses} if args.details else {}),
        }
    print(json.dumps(report, indent=1, ensure_ascii=False))


def _scores(scorer: Scorer, language: str) -> dict:
    summary = scorer.summary()["languages"][language]
    keep = ("wer", "cer", "hotword_recall", "hotword_false_alarms")
    return {key: value for key, value in summary.items() if key in keep}


if __name__ == "__main__":
    main()
