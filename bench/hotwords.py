"""Hot-words at tenant scale: each language's clip terms hidden among 1,000 distractors, scored
on the part of the speech sets the hot-word rules were tuned on and on the part held out.

    python -m bench.hotwords [--split tune|held-out|both] [--faster-whisper] [--jsonl FILE]
    flock /work/wt/bench.lock python -m bench.hotwords --timing --clips 40

Clips: the shared speech set (English and Mandarin) and `speech-zh` (120 Mandarin clips),
split by `split_of` (`bench.hotwords_tune` chose every rule on `tune` only). Per language two
lists: the terms spoken in that language's clips (hotwords.tsv) shuffled among 1,000 seeded
Faker names, companies and cities, and the 1,000 distractors alone. Every clip is transcribed

- without a list (the baseline),
- with the list (first pass -> retrieval -> prompted second pass -> guard -> corrections),
- with the distractors only (must change next to nothing),

the three sharing the encoder run and the first pass (`decode_with_lists`); with
`--faster-whisper` also by plain faster-whisper without a list and with the whole list as its
`hotwords` prompt (the naive approach, cut at 223 tokens).

Per part and language it reports WER/CER, recall of the clips' terms, false alarms (a listed
phrase in the output of a clip whose reference lacks it, over clip x absent-phrase trials),
clips whose text a list changed, clips that gained spaces between Chinese characters, the CER
per Mandarin speaker, and retrieval latency on a 5,000-phrase index. `--timing` instead times
whole transcriptions with and without the list, interleaved, each with its own first pass.
"""

import argparse
import copy
import hashlib
import json
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from faker import Faker

from asr_core.audio import iter_audio
from asr_core.engines import load_engine
from asr_core.evaluation import Scorer, Utterance, normalize, read_manifest, read_terms
from asr_core.hotwords import Hotword, HotwordIndex, HotwordList
from asr_core.hotwords.guard import cjk_gaps
from asr_core.model_registry import resolve_model
from asr_core.transcribe import (
    TranscribeOptions,
    Transcriber,
    apply_hotwords,
    checked_options,
    decode_window,
    next_prompt,
    pack_windows,
)
from asr_core.transcript import join_text
from asr_core.vad import segment_speech
from bench.common import plain_faster_whisper, testdata_dir, threads

FAKER_LOCALES = {"en": "en_US", "zh": "zh_CN"}
SPLITS = ("tune", "held-out")
BY_CLIP_FROM = 10
"""A speaker with this many clips of a language is split by clip; fewer go whole to one side."""


def distractors(language: str, count: int, avoid: list[str], seed: int = 2026) -> list[str]:
    """Realistic tenant phrases: people, companies and cities, none overlapping `avoid`."""
    fake = Faker(FAKER_LOCALES[language])
    fake.seed_instance(seed)
    makers = [fake.name, fake.name, fake.company, fake.city]
    avoided = [normalize(a, language) for a in avoid]
    found: dict[str, None] = {}
    attempts = 0
    while len(found) < count and attempts < count * 50:
        phrase = makers[attempts % len(makers)]()
        attempts += 1
        norm = normalize(phrase, language)
        if any(a in norm or norm in a for a in avoided):
            continue
        found[phrase] = None
    return list(found)


# -- clips and the split --------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    utterance: Utterance
    terms: tuple[str, ...]
    speaker: str
    split: str

    @property
    def language(self) -> str:
        return self.utterance.language


def speaker_of(clip_id: str) -> str:
    """The speaker a clip id names (`zh_aishell_BAC009S0150W0122` -> `aishell_S0150`), or its
    source where the id names none (one reader per source there)."""
    _, source, rest = [*clip_id.split("_", 2), "", ""][:3]
    if source == "aishell":
        speaker = re.search(r"S\d{4}", rest)
        return f"aishell_{speaker.group() if speaker else rest}"
    if source == "cmuarctic":
        first = rest.split("_")[0]
        return f"cmuarctic_{first}" if re.fullmatch(r"[a-z]{3}", first) else source
    if source == "librispeech":
        return f"librispeech_{rest.split('-')[0]}"
    return source


def split_of(clip_id: str, language: str, speaker_clips: int) -> str:
    """`tune` or `held-out`, fixed by a hash: by speaker, so a held-out voice is never heard
    while tuning; a speaker with `BY_CLIP_FROM` clips or more (one newsreader reads most of
    the Mandarin) is split by clip, so both parts have it."""
    key = clip_id if speaker_clips >= BY_CLIP_FROM else f"{language}:{speaker_of(clip_id)}"
    return SPLITS[hashlib.sha256(key.encode()).digest()[0] % 2]


def speech_clips() -> list[Clip]:
    """The shared speech set and, where present beside it, speech-zh."""
    folders = [testdata_dir()]
    extra = folders[0].parent / "speech-zh"
    if (extra / "manifest.tsv").is_file():
        folders.append(extra)
    utterances: list[Utterance] = []
    terms: dict[str, list[str]] = {}
    for folder in folders:
        utterances += read_manifest(folder / "manifest.tsv")
        terms |= read_terms(folder / "hotwords.tsv")
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for u in utterances:
        counts[u.language, speaker_of(u.id)] += 1
    return [
        Clip(
            u,
            tuple(terms.get(u.id, ())),
            speaker_of(u.id),
            split_of(u.id, u.language, counts[u.language, speaker_of(u.id)]),
        )
        for u in utterances
    ]


@dataclass
class Lists:
    with_terms: dict[str, list[str]]
    """Per language: every clip's terms shuffled among the distractors."""
    distractors: dict[str, list[str]]
    """Per language: the distractors alone."""

    def indexes(self, which: str) -> dict[str, HotwordIndex]:
        lists = self.with_terms if which == "with_terms" else self.distractors
        return {
            language: HotwordIndex(HotwordList([Hotword(p) for p in phrases]))
            for language, phrases in lists.items()
        }


def tenant_lists(clips: list[Clip], count: int = 1000) -> Lists:
    with_terms, only = {}, {}
    for language in ("en", "zh"):
        ours = [c for c in clips if c.language == language]
        spoken = list(dict.fromkeys(t for c in ours for t in c.terms))
        references = [c.utterance.reference for c in ours]
        only[language] = distractors(language, count, spoken + references)
        phrases = spoken + only[language]
        random.Random(language).shuffle(phrases)  # the terms hide anywhere in the list
        with_terms[language] = phrases
    return Lists(with_terms, only)


# -- the run ---------------------------------------------------------------------------------

RUNS = ("no_list", "list", "distractors_only")


def decode_with_lists(engine, clip: Clip, indexes: dict[str, dict[str, HotwordIndex]]) -> dict:
    """The clip's text without a list and with each index (`{run: {language: index}}`).

    What `Transcriber.transcribe` does, with the encoder run and the first pass (the window
    decoded as without a list) shared by all runs: `decode_window` is exactly that first pass
    plus `apply_hotwords`. Only the context carried into a clip's next window differs: the
    no-list text here, the run's own text in `transcribe` (two clips have a second window).
    """
    options = checked_options(engine, TranscribeOptions(language=clip.language))
    pieces: dict[str, list[str]] = {"no_list": [], **{name: [] for name in indexes}}
    prompt = None
    for window in clip_windows(engine, clip, options):
        encoded = engine.encode(window.audio)
        first = decode_window(engine, encoded, options, prompt).segments
        pieces["no_list"] += [s.text for s in first]
        for name, index in indexes.items():
            segments = copy.deepcopy(first)
            listed = replace(options, hotword_index=index[clip.language], prompt=prompt)
            apply_hotwords(engine, encoded, segments, listed)
            pieces[name] += [s.text for s in segments]
        prompt = next_prompt(prompt, first, options)
    return {name: join_text(texts) for name, texts in pieces.items()}


def clip_windows(engine, clip: Clip, options: TranscribeOptions):
    """The clip's speech windows, cut as the file path cuts them (every hot-word bench
    decodes these)."""
    audio = iter_audio(clip.utterance.path)
    return pack_windows(segment_speech(audio, options.vad), engine.capabilities.max_window_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distractors", type=int, default=1000)
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="both")
    parser.add_argument("--timing", action="store_true", help="time full transcriptions instead")
    parser.add_argument("--clips", type=int, help="about this many clips, evenly spread")
    parser.add_argument("--faster-whisper", action="store_true", help="plain baselines too")
    parser.add_argument("--jsonl", type=Path, help="write each clip's texts here")
    args = parser.parse_args()

    clips = speech_clips()
    lists = tenant_lists(clips, args.distractors)
    run = [c for c in clips if args.split in ("both", c.split)]
    if args.clips:
        run = run[:: max(1, len(run) // args.clips)]
    engine = load_engine(args.model, cpu_threads=threads())
    report = {
        "benchmark": "hotwords",
        "model": args.model,
        "threads": threads(),
        "list_sizes": {lang: len(ps) for lang, ps in lists.with_terms.items()},
        "clips": {s: sum(c.split == s for c in run) for s in SPLITS},
    }
    if args.timing:
        report |= timing(engine, run, lists)
    else:
        texts = accuracy(engine, run, lists, args)
        report["parts"] = {
            split: score_part([c for c in run if c.split == split], texts, lists)
            for split in SPLITS
            if any(c.split == split for c in run)
        }
        report["index_5000"] = index_latency(texts["no_list"], lists)
    print(json.dumps(report, indent=2, ensure_ascii=False))


def accuracy(engine, run: list[Clip], lists: Lists, args) -> dict[str, dict[str, str]]:
    """Every clip's text per run (and per plain faster-whisper system with the flag)."""
    indexes = {
        "list": lists.indexes("with_terms"),
        "distractors_only": lists.indexes("distractors"),
    }
    baseline = plain_faster_whisper(resolve_model(args.model)) if args.faster_whisper else None
    texts: dict[str, dict[str, str]] = defaultdict(dict)
    out = args.jsonl.open("w", encoding="utf-8") if args.jsonl else None
    for number, clip in enumerate(run, 1):
        key = clip.utterance.id
        for name, text in decode_with_lists(engine, clip, indexes).items():
            texts[name][key] = text
        if baseline is not None:
            for name, hotwords in (
                ("faster_whisper_no_list", None),
                ("faster_whisper_whole_list", " ".join(lists.with_terms[clip.language])),
            ):
                segments, _ = baseline.transcribe(
                    str(clip.utterance.path), beam_size=5, language=clip.language, hotwords=hotwords
                )
                texts[name][key] = "".join(s.text for s in segments).strip()
        if out:
            row = {"id": key, "split": clip.split, "speaker": clip.speaker}
            row |= {"reference": clip.utterance.reference, "terms": clip.terms}
            out.write(json.dumps(row | {n: t[key] for n, t in texts.items()}) + "\n")
            out.flush()
        print(f"[{number}/{len(run)}] {key}", file=sys.stderr, flush=True)
    if out:
        out.close()
    return texts


def timing(engine, run: list[Clip], lists: Lists) -> dict:
    """Whole transcriptions without and with the list, interleaved clip by clip (order
    alternating), each with its own encoder run and first pass: the time a caller sees."""
    transcriber = Transcriber(engine)
    indexes = {"no_list": None, "list": lists.indexes("with_terms")}
    elapsed = dict.fromkeys(indexes, 0.0)
    for position, clip in enumerate(run):
        names = list(indexes)[:: 1 if position % 2 == 0 else -1]
        for name in names:
            index = indexes[name][clip.language] if indexes[name] else None
            options = TranscribeOptions(language=clip.language, hotword_index=index)
            started = time.perf_counter()
            transcriber.transcribe(clip.utterance.path, options)
            elapsed[name] += time.perf_counter() - started
    return {
        "elapsed_s": {name: round(seconds, 2) for name, seconds in elapsed.items()},
        "time_ratio_list_over_no_list": round(elapsed["list"] / elapsed["no_list"], 3),
    }


def score_part(clips: list[Clip], texts: dict[str, dict[str, str]], lists: Lists) -> dict:
    """Per language: each system's scores, and what the lists changed against no list."""
    part: dict[str, dict] = {}
    for language in ("en", "zh"):
        ours = [c for c in clips if c.language == language]
        if not ours:
            continue
        result: dict[str, dict] = {"clips": len(ours), "systems": {}}
        for name, by_clip in texts.items():
            vocabulary = lists.distractors if name == "distractors_only" else lists.with_terms
            scorer = Scorer(vocabulary=vocabulary)
            for clip in ours:
                scorer.add(clip.utterance, by_clip[clip.utterance.id], list(clip.terms), 0, 0)
            scores = scorer.summary()["languages"][language]
            keep = ("wer", "cer", "hotword_recall", "hotword_terms", "hotword_false_alarms")
            summary = {k: v for k, v in scores.items() if k in keep}
            summary["hotword_false_alarm_rate"] = scores["hotword_false_alarm_rate"]
            if name != "no_list":
                summary |= changes_against(ours, by_clip, texts["no_list"])
            result["systems"][name] = summary
        if language == "zh":
            result["cer_by_speaker"] = cer_by_speaker(ours, texts)
        part[language] = result
    return part


def changes_against(clips: list[Clip], texts: dict[str, str], baseline: dict[str, str]) -> dict:
    ids = [c.utterance.id for c in clips]
    changed = [i for i in ids if texts[i] != baseline[i]]
    spaced = [i for i in ids if cjk_gaps(texts[i]) > cjk_gaps(baseline[i])]
    return {
        "texts_changed": len(changed),
        "texts_changed_share": round(len(changed) / len(ids), 4),
        "clips_gaining_cjk_spaces": len(spaced),
    }


def cer_by_speaker(clips: list[Clip], texts: dict[str, dict[str, str]]) -> dict:
    speakers: dict[str, dict] = {}
    for speaker in sorted({c.speaker for c in clips}):
        theirs = [c for c in clips if c.speaker == speaker]
        speakers[speaker] = {"clips": len(theirs)}
        for name in RUNS:
            scorer = Scorer()
            for clip in theirs:
                scorer.add(clip.utterance, texts[name][clip.utterance.id], [], 0, 0)
            speakers[speaker][name] = scorer.summary()["languages"]["zh"]["cer"]
    return speakers


def index_latency(hypotheses: dict[str, str], lists: Lists) -> dict:
    """Build time of a 5,000-phrase index and retrieval time on the no-list transcripts (the
    first passes retrieval runs on)."""
    phrases = lists.with_terms["en"] + lists.with_terms["zh"]
    for language in ("en", "zh"):
        phrases += distractors(language, 2600, phrases, seed=7)
    phrases = list(dict.fromkeys(phrases))[:5000]
    started = time.perf_counter()
    index = HotwordIndex(HotwordList([Hotword(p) for p in phrases]))
    build_s = time.perf_counter() - started
    timings = []
    for _ in range(3):
        for hypothesis in hypotheses.values():
            started = time.perf_counter()
            index.retrieve(hypothesis)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "phrases": len(index),
        "build_s": round(build_s, 3),
        "retrieve_ms_p50": round(statistics.median(timings), 2),
        "retrieve_ms_p95": round(timings[int(0.95 * (len(timings) - 1))], 2),
        "retrieve_ms_max": round(timings[-1], 2),
        "hypothesis_chars_max": max(len(h) for h in hypotheses.values()),
    }


if __name__ == "__main__":
    main()
