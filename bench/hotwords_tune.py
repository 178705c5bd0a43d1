"""Choose the hot-word prompt form, beam and guard thresholds on the tuning part only.

    python -m bench.hotwords_tune [--cache FILE] [--windows file|live|both] [--languages ..]

Every decode is made once and cached (`--cache`, JSON lines): per tuning clip, windowing (a
file's 30 s encoder window, and a live final's shorter one) and window, the first pass, what
each list retrieves from it, and the second pass for every prompt form and beam size. The
grid (form, beam, guard thresholds, what the confidence check compares with, corrections on
or off) is then replayed on the cache through the same code the pipeline runs
(`merge_hotword_pass`), so a change of rule is judged in seconds.

Selection, per language, fixed before looking: with either list no clip may gain spaces
between Chinese characters, WER/CER may not rise over no list and false alarms stay within
0.1 % of trials; the distractor-only list may change at most 5 % of the clips. Among the
settings that pass, the highest recall wins, then the lower error rate, then fewer clips
changed by the distractors, then the cheaper and stricter (beam 1, less margin, fewer gaps,
lower change and confidence thresholds). `bench.hotwords` then reports the chosen setting on
both parts.
"""

import argparse
import functools
import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from asr_core.engines import load_engine
from asr_core.evaluation import LanguageScore, Scorer
from asr_core.hotwords import Hotword, apply_corrections
from asr_core.hotwords.guard import SECOND_PASSES, GuardOptions, SecondPass, cjk_gaps
from asr_core.hotwords.index import Candidate
from asr_core.hotwords.prompt import PromptForm
from asr_core.streaming import StreamingOptions
from asr_core.transcribe import (
    TranscribeOptions,
    checked_options,
    decode_window,
    merge_hotword_pass,
    next_prompt,
)
from asr_core.transcript import Segment, join_text
from bench.common import threads
from bench.hotwords import Clip, clip_windows, speech_clips, tenant_lists

FORMS: dict[str, tuple[PromptForm, ...]] = {
    "zh": ("spaced", "enumerated", "styled", "hinted"),
    "en": ("spaced", "enumerated", "hinted"),
}
BEAMS = (1, 5)
LISTS = ("with_terms", "distractors")
FIRST_LOGPROBS = ("timestamped", "forced")
MAX_DISTRACTOR_CHANGES = 0.05
WINDOWINGS = {"file": None, "live": StreamingOptions().final_window_s}
"""Encoder windows: a file's full 30 s, or a live final's shorter one (`min_window_s`)."""
MAX_FALSE_ALARM_RATE = 0.001


def collect(clip: Clip, engine, indexes: dict[str, dict], windowing: str) -> dict:
    """Every decode the grid needs for one clip, window by window, its windows encoded as
    files are (`file`: full 30 s windows) or as live finals are (`live`)."""
    options = checked_options(engine, TranscribeOptions(language=clip.language))
    prompt, windows, chosen = None, [], engine.config
    engine.config = replace(chosen)
    for window in clip_windows(engine, clip, options):
        encoded = engine.encode(window.audio, min_window_s=WINDOWINGS[windowing])
        first = decode_window(engine, encoded, options, prompt).segments
        text = "".join(s.text for s in first)
        record = {
            "first": [_segment_row(s) for s in first],
            "forced_logprob": _forced_logprob(engine, encoded, text, clip.language),
            "lists": {},
        }
        for which in LISTS:
            index = indexes[which][clip.language]
            candidates = index.retrieve(text, options.hotword_top_k) if text.strip() else []
            seconds = {}
            for form, beam in itertools.product(FORMS[clip.language], BEAMS):
                if not candidates:
                    break
                engine.config.hotword_prompt_form = form
                engine.config.hotword_beam_size = beam
                prompted = replace(
                    options, prompt=prompt, hotwords=tuple(c.phrase for c in candidates)
                )
                second = engine.hotword_pass(encoded, prompted, first, candidates)
                seconds[f"{form}/{beam}"] = [
                    second.text,  # Whisper writes Mandarin simplified, the default script
                    second.avg_logprob,
                    second.first_avg_logprob,
                ]
            record["lists"][which] = {
                "candidates": [[c.phrase, c.score, c.matched, c.start, c.end] for c in candidates],
                "second": seconds,
            }
        windows.append(record)
        prompt = next_prompt(prompt, first, options)
    engine.config = chosen
    return {"id": f"{clip.utterance.id}@{windowing}", "windows": windows}


def _forced_logprob(engine, encoded, text: str, language: str) -> float | None:
    """The first pass's average log-probability as a prompt-less decode without timestamps
    would score it (an alternative to faster-whisper's timestamped one)."""
    tokenizer, _ = engine._tokenizer(language)
    tokens = tokenizer.encode(" " + text.strip()) if text.strip() else []
    if not tokens:
        return None
    start = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    [result] = engine._model.model.align(encoded.output, start, [tokens], [1500])
    probabilities = [max(p, 1e-12) for p in result.text_token_probs]
    return sum(math.log(p) for p in probabilities) / len(probabilities)


def _segment_row(segment: Segment) -> dict:
    return {"text": segment.text, "avg_logprob": segment.avg_logprob}


@dataclass(frozen=True)
class Setting:
    """One language's choice: prompt form, beam size, guard thresholds, corrections."""

    form: str
    beam: int
    guard: GuardOptions
    first_logprob: str = "timestamped"
    """What the second pass's confidence is compared with: the first pass's own (timestamped)
    average log-probability, or its text scored as a prompt-less decode without timestamps."""
    correction: bool = True
    """Whether listed phrases' near-miss spellings are corrected after the guard."""


def replay(record: dict, which: str | None, setting: Setting | None) -> str:
    """A clip's text from the cache: no list (`which` None) or a list under a setting, through
    the pipeline's `merge_hotword_pass` (its corrections memoised: the grid repeats them)."""
    pieces = []
    for window in record["windows"]:
        segments = [
            Segment(0, 0, row["text"], avg_logprob=row["avg_logprob"]) for row in window["first"]
        ]
        if which is not None and setting is not None:
            listed = window["lists"][which]
            candidates = [
                Candidate(Hotword(phrase), score, matched, start, end)
                for phrase, score, matched, start, end in listed["candidates"]
            ]
            row = listed["second"].get(f"{setting.form}/{setting.beam}")
            second = None
            if row:
                text, logprob, first_logprob = row
                if setting.first_logprob == "forced":
                    first_logprob = window["forced_logprob"]
                second = SecondPass(text, logprob, first_logprob)
            options = TranscribeOptions(hotword_guard=setting.guard, hotword_correction=False)
            merge_hotword_pass(segments, candidates, second, options)
            if setting.correction and candidates:
                phrases = tuple(c.phrase for c in candidates)
                for segment in segments:
                    segment.text = _corrected(segment.text, phrases)
        pieces += [s.text for s in segments]
    return join_text(pieces)


@functools.cache
def _corrected(text: str, phrases: tuple[str, ...]) -> str:
    return apply_corrections(Segment(0, 0, text), [Hotword(p) for p in phrases]).text


@functools.cache
def _scored(clip: Clip, vocabulary: tuple[str, ...], text: str) -> LanguageScore:
    scorer = Scorer(vocabulary={clip.language: list(vocabulary)})
    scorer.add(clip.utterance, text, list(clip.terms), 0, 0)
    return scorer.by_language[clip.language]


def evaluate(language: str, runs: list[tuple[Clip, dict]], lists, setting) -> dict:
    """One language's scores with no list, with the list and with the distractors alone, over
    (clip, cached record) pairs: a clip counts once per windowing."""
    before = _outcome_counts()
    plain = {record["id"]: replay(record, None, None) for _, record in runs}
    result = {}
    for which, vocabulary in (
        ("no_list", lists.with_terms[language]),
        ("with_terms", lists.with_terms[language]),
        ("distractors", lists.distractors[language]),
    ):
        total = LanguageScore()
        changed = spaced = 0
        for clip, record in runs:
            key = record["id"]
            text = plain[key] if which == "no_list" else replay(record, which, setting)
            score = _scored(clip, tuple(vocabulary), text)
            for name in ("errors", "reference_units", "term_hits", "term_total"):
                setattr(total, name, getattr(total, name) + getattr(score, name))
            total.false_alarms += score.false_alarms
            total.false_alarm_trials += score.false_alarm_trials
            changed += text != plain[key]
            spaced += cjk_gaps(text) > cjk_gaps(plain[key])
        scores = total.summary(language)
        result[which] = {
            "error": scores["wer" if language == "en" else "cer"],
            "recall": scores["hotword_recall"],
            "false_alarms": scores["hotword_false_alarms"],
            "false_alarm_rate": scores["hotword_false_alarm_rate"],
            "changed": round(changed / len(runs), 4),
            "spaced": spaced,
        }
    after = _outcome_counts()
    result["outcomes"] = {
        key: round(value - before.get(key, 0))
        for key, value in after.items()
        if value > before.get(key, 0)
    }
    return result


def _outcome_counts() -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in SECOND_PASSES.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def passes(result: dict) -> bool:
    for which in LISTS:
        if result[which]["spaced"] or result[which]["error"] > result["no_list"]["error"]:
            return False
        if (result[which]["false_alarm_rate"] or 0) > MAX_FALSE_ALARM_RATE:
            return False
    return result["distractors"]["changed"] <= MAX_DISTRACTOR_CHANGES


def rank(setting: Setting, result: dict) -> tuple:
    guard = setting.guard
    return (
        -(result["with_terms"]["recall"] or 0),
        result["with_terms"]["error"],
        result["distractors"]["changed"],
        setting.beam,
        guard.margin,
        guard.max_new_cjk_gaps,
        guard.max_outside_change,
        guard.max_logprob_drop,
    )


def grid(language: str) -> list[Setting]:
    settings = []
    for form, beam, source, correction in itertools.product(
        FORMS[language], BEAMS, FIRST_LOGPROBS, (True, False)
    ):
        for margin, gaps, outside, drop in itertools.product(
            (0, 1, 2), (0, 1), (0.1, 0.2, 0.35, 1.0), (0.1, 0.2, 0.35, 9.0)
        ):
            if source == "forced" and drop == 9.0:
                continue  # no drop check: the same as the timestamped setting
            guard = GuardOptions(margin, gaps, outside, drop)
            settings.append(Setting(form, beam, guard, source, correction))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--cache", type=Path, default=Path("bench-hotwords-tune.jsonl"))
    parser.add_argument("--refresh", action="store_true", help="decode again, ignoring the cache")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--windows", choices=(*WINDOWINGS, "both"), default="both")
    parser.add_argument("--languages", nargs="+", choices=("zh", "en"), default=["zh", "en"])
    args = parser.parse_args()

    clips = speech_clips()
    lists = tenant_lists(clips)
    tuning = [c for c in clips if c.split == "tune" and c.language in args.languages]
    windowings = list(WINDOWINGS) if args.windows == "both" else [args.windows]
    cache: dict[str, dict] = {}
    if args.cache.is_file() and not args.refresh:
        for line in args.cache.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            cache[record["id"]] = record
    missing = [(c, w) for w in windowings for c in tuning if f"{c.utterance.id}@{w}" not in cache]
    if missing:
        engine = load_engine(args.model, cpu_threads=threads())
        indexes = {which: lists.indexes(which) for which in LISTS}
        with args.cache.open("a", encoding="utf-8") as out:
            for number, (clip, windowing) in enumerate(missing, 1):
                record = collect(clip, engine, indexes, windowing)
                cache[record["id"]] = record
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                print(f"[{number}/{len(missing)}] {record['id']}", flush=True)

    report = {"tuning_clips": dict(Counter(c.language for c in tuning)), "windows": windowings}
    for language in args.languages:
        runs = [
            (c, cache[f"{c.utterance.id}@{w}"])
            for w in windowings
            for c in tuning
            if c.language == language
        ]
        results = [(s, evaluate(language, runs, lists, s)) for s in grid(language)]
        ranked = sorted(results, key=lambda sr: rank(*sr))
        passing = [(s, r) for s, r in ranked if passes(r)]
        best_per_form: dict = {}
        for setting, result in ranked:
            best_per_form.setdefault((setting.form, setting.beam), (setting, result))
        report[language] = {
            "settings": len(results),
            "passing": len(passing),
            "chosen": _row(*passing[0]) if passing else None,
            "top_passing": [_row(s, r) for s, r in passing[: args.top]],
            "best_per_form_and_beam": [_row(s, r) for s, r in best_per_form.values()],
        }
    print(json.dumps(report, indent=1, ensure_ascii=False))


def _row(setting: Setting, result: dict) -> dict:
    return {"setting": _describe(setting), "passes": passes(result), **result}


def _describe(setting: Setting) -> dict:
    guard = setting.guard
    return {
        "form": setting.form,
        "beam": setting.beam,
        "margin": guard.margin,
        "max_new_cjk_gaps": guard.max_new_cjk_gaps,
        "max_outside_change": guard.max_outside_change,
        "max_logprob_drop": guard.max_logprob_drop,
        "first_logprob": setting.first_logprob,
        "correction": setting.correction,
    }


if __name__ == "__main__":
    main()
