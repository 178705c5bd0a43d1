"""Accuracy scoring: WER (English), CER (Mandarin), hot-word recall and false alarms, RTF.

Normalisation follows the project's rules: English through Whisper's English normaliser,
Mandarin converted to simplified characters with punctuation and spaces removed.
"""

import csv
import functools
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from asr_core.chinese import to_simplified
from asr_core.errors import AsrError

REQUIRED_COLUMNS = ("id", "file", "language", "reference")


class ManifestError(AsrError):
    code = "manifest_error"


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    language: str
    reference: str
    duration: float | None = None


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a tab-separated manifest (no quoting); audio paths are relative to its folder."""
    path = Path(path)
    rows = _read_tsv(path, REQUIRED_COLUMNS)
    utterances = []
    for number, row in rows:
        language = row["language"].strip()
        if language not in ("en", "zh"):
            raise ManifestError(f"{path}, line {number}: language {language!r} is not en or zh")
        duration = row.get("duration_s") or None
        try:
            duration = float(duration) if duration else None
        except ValueError:
            raise ManifestError(
                f"{path}, line {number}: duration_s {duration!r} is not a number"
            ) from None
        utterances.append(
            Utterance(row["id"], path.parent / row["file"], language, row["reference"], duration)
        )
    return utterances


def read_terms(path: str | Path) -> dict[str, list[str]]:
    """Per-utterance spoken terms (`id, language, hotwords` with `; `-separated terms)."""
    path = Path(path)
    return {
        row["id"]: [t.strip() for t in row["hotwords"].split(";") if t.strip()]
        for _, row in _read_tsv(path, ("id", "hotwords"))
    }


def _read_tsv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None:
                raise ManifestError(f"{path} is empty")
            missing = [c for c in required if c not in header]
            if missing:
                raise ManifestError(f"{path}, line 1: missing column(s) {', '.join(missing)}")
            rows = []
            for number, cells in enumerate(reader, start=2):
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    raise ManifestError(
                        f"{path}, line {number}: {len(cells)} fields, expected {len(header)}"
                    )
                rows.append((number, dict(zip(header, cells, strict=True))))
            return rows
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not UTF-8 text") from exc


@functools.cache
def _english_normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


@functools.lru_cache(maxsize=65536)
def normalize(text: str, language: str) -> str:
    """Score-ready text: English normalised words, or Mandarin simplified characters."""
    if language == "en":
        return " ".join(_english_normalizer()(text).split())
    simplified = to_simplified(text)
    return "".join(
        c
        for c in simplified.lower()
        if not c.isspace() and not unicodedata.category(c).startswith(("P", "S"))
    )


def tokens(normalized: str, language: str) -> list[str]:
    """Scoring units: words for English, characters for Mandarin."""
    return normalized.split() if language == "en" else list(normalized)


def contains_term(normalized_text: str, term: str, language: str) -> bool:
    """Whether a hot-word occurs in normalised text (whole words in English)."""
    needle = normalize(term, language)
    if not needle:
        return False
    if language == "en":
        return _whole_words(needle).search(normalized_text) is not None
    return needle in normalized_text


@functools.lru_cache(maxsize=65536)
def _whole_words(needle: str) -> re.Pattern:
    return re.compile(rf"(?<!\S){re.escape(needle)}(?!\S)")


@dataclass
class LanguageScore:
    utterances: int = 0
    errors: int = 0
    reference_units: int = 0
    term_hits: int = 0
    term_total: int = 0
    false_alarms: int = 0
    false_alarm_trials: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0

    def summary(self, language: str) -> dict:
        rate_name = "wer" if language == "en" else "cer"
        return {
            "utterances": self.utterances,
            rate_name: _ratio(self.errors, self.reference_units),
            "hotword_recall": _ratio(self.term_hits, self.term_total),
            "hotword_terms": self.term_total,
            "hotword_false_alarms": self.false_alarms,
            "hotword_false_alarm_rate": _ratio(self.false_alarms, self.false_alarm_trials),
            "audio_s": round(self.audio_s, 2),
            "elapsed_s": round(self.elapsed_s, 2),
            "rtf": _ratio(self.elapsed_s, self.audio_s),
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


@dataclass
class Scorer:
    """Accumulates per-language scores over utterances."""

    vocabulary: dict[str, list[str]] = field(default_factory=dict)
    """Per language, phrases checked for false alarms (a listed phrase the reference lacks)."""
    by_language: dict[str, LanguageScore] = field(default_factory=dict)

    def add(
        self,
        utterance: Utterance,
        hypothesis: str,
        terms: list[str],
        audio_s: float,
        elapsed_s: float,
    ) -> dict:
        language = utterance.language
        score = self.by_language.setdefault(language, LanguageScore())
        reference_norm = normalize(utterance.reference, language)
        hypothesis_norm = normalize(hypothesis, language)
        reference_units = tokens(reference_norm, language)
        errors = Levenshtein.distance(reference_units, tokens(hypothesis_norm, language))
        hits = [t for t in terms if contains_term(hypothesis_norm, t, language)]
        listed = self.vocabulary.get(language, [])
        absent = [p for p in listed if not contains_term(reference_norm, p, language)]
        alarms = [p for p in absent if contains_term(hypothesis_norm, p, language)]
        score.utterances += 1
        score.errors += errors
        score.reference_units += len(reference_units)
        score.term_hits += len(hits)
        score.term_total += len(terms)
        score.false_alarms += len(alarms)
        score.false_alarm_trials += len(absent)
        score.audio_s += audio_s
        score.elapsed_s += elapsed_s
        return {
            "id": utterance.id,
            "language": language,
            "reference": utterance.reference,
            "hypothesis": hypothesis,
            "reference_normalized": reference_norm,
            "hypothesis_normalized": hypothesis_norm,
            "errors": errors,
            "reference_units": len(reference_units),
            "terms_missed": [t for t in terms if t not in hits],
            "false_alarms": alarms,
            "audio_s": round(audio_s, 3),
            "elapsed_s": round(elapsed_s, 3),
        }

    def summary(self) -> dict:
        languages = {lang: s.summary(lang) for lang, s in sorted(self.by_language.items())}
        audio = sum(s.audio_s for s in self.by_language.values())
        elapsed = sum(s.elapsed_s for s in self.by_language.values())
        return {
            "utterances": sum(s.utterances for s in self.by_language.values()),
            "audio_s": round(audio, 2),
            "elapsed_s": round(elapsed, 2),
            "rtf": _ratio(elapsed, audio),
            "languages": languages,
        }


def vocabulary_by_language(phrases: Iterable[str]) -> dict[str, list[str]]:
    """Split a phrase list by script: phrases with CJK characters are Mandarin."""
    vocabulary: dict[str, list[str]] = {"en": [], "zh": []}
    for phrase in phrases:
        language = "zh" if re.search(r"[\u3400-\u9fff]", phrase) else "en"
        vocabulary[language].append(phrase)
    return vocabulary


def evaluate(
    utterances: Iterable[Utterance],
    transcribe: Callable[[Utterance], tuple[str, float]],
    terms: dict[str, list[str]],
    vocabulary: dict[str, list[str]],
    on_result: Callable[[dict], None] | None = None,
) -> dict:
    """Score `transcribe(utterance) -> (hypothesis, audio_seconds)` over utterances.

    A file that fails to transcribe is recorded as an error (empty hypothesis) and the run goes on.
    """
    scorer = Scorer(vocabulary=vocabulary)
    failures = []
    for utterance in utterances:
        started = time.perf_counter()
        try:
            hypothesis, audio_s = transcribe(utterance)
            error = None
        except AsrError as exc:
            hypothesis, audio_s, error = "", utterance.duration or 0.0, exc.reason
            failures.append({"id": utterance.id, "error": exc.reason})
        elapsed = time.perf_counter() - started
        result = scorer.add(utterance, hypothesis, terms.get(utterance.id, []), audio_s, elapsed)
        if error:
            result["error"] = error
        if on_result:
            on_result(result)
    summary = scorer.summary()
    summary["failures"] = failures
    return summary
