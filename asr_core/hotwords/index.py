"""Hot-word retrieval: from a first-pass hypothesis to the few phrases worth prompting.

The FunAudio-ASR recipe (whose retrieval module was never released): decode once without
hot-words, match the hypothesis against the tenant's list by sound, and put only the top-K
matches in the final pass's prompt. Thousands of phrases then neither overflow the prompt nor
tempt the decoder into writing listed names where nobody said them.

Matching is two-stage so a 5,000-phrase list answers in a few milliseconds:

1. seeds shortlist the phrases that share enough sound with a stretch of the hypothesis:
   Chinese syllables (exact, fuzzy, and adjacent pairs) looked up in an inverted index, and
   Latin words whose sound skeletons are similar to the phrase's words (one rapidfuzz call);
2. each shortlisted phrase of n units is scored against every window of n-1..n+1 hypothesis
   units, on both key kinds, all in one rapidfuzz call per kind; the best window counts.

The hypothesis is searched in chunks of a few units, so the shortlist stays selective however
much text a window holds.
"""

import math
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from asr_core.hotwords.model import Hotword, HotwordList, script_language
from asr_core.hotwords.phonetics import Unit, to_units

SOUND_PENALTY = 5.0
"""Score points a match on the looser sound key gives up against an exact-key match."""
SOUND_LETTER_FLOOR = 50.0
"""Letter similarity a window needs before its sound-key similarity counts."""
WORD_SEED_CUTOFF = 75.0
"""How similar two Latin words' sound skeletons must be for one to seed the other's phrases."""
_SHORTLIST = 64
_MIN_SEED_FRACTION = 0.5
_CHUNK_UNITS = 12
_DIGIT = re.compile(r"\d")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
"""Hypothesis units per retrieval chunk (windows start in the chunk, may run past it)."""


def match_thresholds(surface: str, exact: str, sound: str, units: int) -> tuple[float, float]:
    """Scores the exact and the sound key must reach for a phrase to count as retrieved.

    Retrieval only chooses what to prompt, so it is lenient; the bars rise where chance
    matches are likely. Pinyin keys are compared per phrase: a two-syllable name needs 90,
    longer phrases tolerate a changed syllable. Latin keys of three letters or fewer must
    match exactly, and so short a sound skeleton (`tam`: tom, tim, team) is not used at all.
    """
    if script_language(surface) == "zh":
        base = 90.0 if units <= 3 else 85.0
        return base, base + SOUND_PENALTY
    exact_needed = 100.0 if len(exact) <= 3 else 85.0 if len(exact) <= 5 else 75.0
    sound_needed = math.inf if len(sound) <= 3 else 80.0
    return exact_needed, sound_needed + SOUND_PENALTY


@dataclass(frozen=True)
class Candidate:
    hotword: Hotword
    score: float
    """Best window similarity, 0-100, with the weight's boost added."""
    matched: str
    """The hypothesis text the phrase matched."""
    start: int
    """Character span of the match in the hypothesis."""
    end: int

    @property
    def phrase(self) -> str:
        return self.hotword.phrase


@dataclass(frozen=True)
class _Form:
    """One surface form of an entry (its phrase or an alias), keyed for matching."""

    entry: int
    exact: str
    sound: str
    units: int
    needed_exact: float
    """Score the exact key must reach (threshold for its length, less the weight's boost)."""
    needed_sound: float
    syllable_seeds: frozenset[str]
    word_seeds: frozenset[str]
    """Sound skeletons of the form's Latin words."""


class HotwordIndex:
    """Phonetic index over one hot-word list (immutable; build a new one per list version)."""

    def __init__(self, hotwords: HotwordList) -> None:
        self.hotwords = hotwords
        self._forms: list[_Form] = []
        syllable_postings: dict[str, list[int]] = defaultdict(list)
        word_postings: dict[str, list[int]] = defaultdict(list)
        for entry_index, entry in enumerate(hotwords.entries):
            for surface in (entry.phrase, *entry.aliases):
                form = _make_form(entry_index, entry, surface)
                if form is None:
                    continue
                form_id = len(self._forms)
                self._forms.append(form)
                for seed in form.syllable_seeds:
                    syllable_postings[seed].append(form_id)
                for seed in form.word_seeds:
                    word_postings[seed].append(form_id)
        self._syllable_postings = {
            seed: np.asarray(ids, dtype=np.int32) for seed, ids in syllable_postings.items()
        }
        self._words = list(word_postings)
        self._word_postings = [np.asarray(word_postings[w], dtype=np.int32) for w in self._words]
        self._word_lengths = np.asarray([len(w) for w in self._words], dtype=np.int32)
        self._seed_counts = np.asarray(
            [len(f.syllable_seeds) + len(f.word_seeds) for f in self._forms], dtype=np.float32
        )
        self._units = np.asarray([f.units for f in self._forms], dtype=np.int64)
        self._needed_exact = np.asarray([f.needed_exact for f in self._forms], dtype=np.float32)
        self._needed_sound = np.asarray([f.needed_sound for f in self._forms], dtype=np.float32)
        self._max_units = int(self._units.max()) if self._forms else 0

    @property
    def version(self) -> int | None:
        return self.hotwords.version

    def __len__(self) -> int:
        return len(self.hotwords)

    def retrieve(self, text: str, top_k: int = 10) -> list[Candidate]:
        """The phrases the text most likely contains, best first, at most `top_k`.

        Mandarin text with numbers in digits is also searched as the numbers are read (1.5倍
        as 一点五倍, 90后 as 九十后 and 九零后, 4架车 as 四架车): a listed phrase may say them."""
        if not self._forms:
            return []
        variants = [to_units(text)]
        if _DIGIT.search(text) and _CJK.search(text):
            variants += [to_units(text, numbers="number"), to_units(text, numbers="digits")]
        best: dict[int, Candidate] = {}
        for units in variants:
            self._retrieve_units(text, units, best)
        ranked = sorted(best.values(), key=lambda c: (-c.score, -c.hotword.weight))
        return ranked[:top_k]

    def _retrieve_units(self, text: str, units: list[Unit], best: dict[int, Candidate]) -> None:
        """Each entry's best match among these units of `text`, kept in `best`."""
        if not units:
            return
        similar_words = self._similar_words(units)
        for chunk_start in range(0, len(units), _CHUNK_UNITS):
            reach = units[chunk_start : chunk_start + _CHUNK_UNITS + self._max_units]
            shortlist = self._shortlist(reach, similar_words)
            for form_id, score, start, length in self._match(units, chunk_start, shortlist):
                form = self._forms[form_id]
                hotword = self.hotwords.entries[form.entry]
                score += hotword.boost
                current = best.get(form.entry)
                if current is None or score > current.score:
                    first, last = units[start].start, units[start + length - 1].end
                    best[form.entry] = Candidate(hotword, score, text[first:last], first, last)

    def _similar_words(self, units: list[Unit]) -> dict[str, np.ndarray]:
        """For each Latin word skeleton in the text, the indexed words that sound like it."""
        queries = sorted({u.sound for u in units if not u.is_cjk})
        if not queries or not self._words:
            return {}
        matrix = process.cdist(
            queries, self._words, scorer=fuzz.ratio, score_cutoff=WORD_SEED_CUTOFF, dtype=np.uint8
        )
        # Short skeletons only seed their exact twins.
        short = (np.asarray([len(q) for q in queries])[:, None] <= 3) | (self._word_lengths <= 3)
        matrix[short & (matrix < 100)] = 0
        return {query: np.flatnonzero(row) for query, row in zip(queries, matrix, strict=True)}

    def _shortlist(self, reach: list[Unit], similar_words: dict[str, np.ndarray]) -> np.ndarray:
        """Forms with at least half their seeds found in these units, best covered first."""
        lists = [
            self._syllable_postings[seed]
            for seed in syllable_seeds(reach)
            if seed in self._syllable_postings
        ]
        words = {int(w) for u in reach if not u.is_cjk for w in similar_words.get(u.sound, ())}
        lists.extend(self._word_postings[w] for w in words)
        if not lists:
            return np.zeros(0, dtype=np.int64)
        shared = np.bincount(np.concatenate(lists), minlength=len(self._forms))
        fraction = shared / self._seed_counts
        eligible = np.flatnonzero(fraction >= _MIN_SEED_FRACTION)
        if len(eligible) > _SHORTLIST:
            eligible = eligible[np.argsort(-fraction[eligible], kind="stable")[:_SHORTLIST]]
        return eligible

    def _match(self, units: list[Unit], chunk_start: int, shortlist: np.ndarray):
        """Yield (form, score, window start, window length) for the best passing window of
        each shortlisted form among the windows that start in this chunk."""
        if len(shortlist) == 0:
            return
        form_units = self._units[shortlist]
        longest = int(form_units.max()) + 1
        starts, lengths = [], []
        for start in range(chunk_start, min(chunk_start + _CHUNK_UNITS, len(units))):
            for length in range(1, min(longest, len(units) - start) + 1):
                starts.append(start)
                lengths.append(length)
        # A phrase of n units is compared with windows of n+1 units (a split word) and, from
        # three units up, n-1 (a dropped syllable).
        window_lengths = np.asarray(lengths)[None, :]
        shortest = form_units[:, None] - (form_units[:, None] >= 3)
        allowed = (window_lengths >= shortest) & (window_lengths <= form_units[:, None] + 1)
        best_score = np.full(len(shortlist), -1.0, dtype=np.float32)
        best_window = np.zeros(len(shortlist), dtype=np.int64)
        letters = None
        for kind, needed, penalty in (
            ("exact", self._needed_exact, 0.0),
            ("sound", self._needed_sound, SOUND_PENALTY),
        ):
            keys = [getattr(u, kind) for u in units]
            windows = ["".join(keys[a : a + n]) for a, n in zip(starts, lengths, strict=True)]
            matrix = process.cdist(
                [getattr(self._forms[i], kind) for i in shortlist],
                windows,
                scorer=fuzz.ratio,
                dtype=np.float32,
            )
            matrix[~allowed] = -1.0
            if letters is None:
                letters = matrix
            else:  # a match by sound must still share half its letters (lazy is no Leeside)
                matrix[letters < SOUND_LETTER_FLOOR] = -1.0
            columns = matrix.argmax(axis=1)
            scores = matrix[np.arange(len(shortlist)), columns]
            better = (scores >= needed[shortlist]) & (scores - penalty > best_score)
            best_score[better] = scores[better] - penalty
            best_window[better] = columns[better]
        for row in np.flatnonzero(best_score >= 0):
            window = int(best_window[row])
            yield int(shortlist[row]), float(best_score[row]), starts[window], lengths[window]


def syllable_seeds(units: list[Unit]) -> set[str]:
    """Each Chinese syllable's pinyin, fuzzy pinyin, and its pair with the next syllable."""
    seeds: set[str] = set()
    for index, unit in enumerate(units):
        if not unit.is_cjk:
            continue
        seeds.add("s:" + unit.exact)
        seeds.add("f:" + unit.sound)
        if index + 1 < len(units) and units[index + 1].is_cjk:
            seeds.add(f"p:{unit.exact}|{units[index + 1].exact}")
    return seeds


def _make_form(entry_index: int, entry: Hotword, surface: str) -> _Form | None:
    units = to_units(surface)
    if not units:
        return None
    exact = "".join(u.exact for u in units)
    sound = "".join(u.sound for u in units)
    exact_needed, sound_needed = match_thresholds(surface, exact, sound, len(units))
    return _Form(
        entry=entry_index,
        exact=exact,
        sound=sound,
        units=len(units),
        # A boost lowers the bar; no bar rises above a perfect score, so equal keys pass.
        needed_exact=min(exact_needed - entry.boost, 100.0),
        needed_sound=(
            min(sound_needed - entry.boost, 100.0) if sound_needed < math.inf else math.inf
        ),
        syllable_seeds=frozenset(syllable_seeds(units)),
        word_seeds=frozenset(u.sound for u in units if not u.is_cjk),
    )
