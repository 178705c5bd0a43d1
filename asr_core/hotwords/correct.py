"""Conservative spelling correction to the canonical hot-word, after the hot-word pass.

The guarded second pass (`guard`) writes a retrieved phrase where it was heard; this fixes
near-miss spellings where the evidence is strong, and does nothing otherwise:

- a Chinese alias of two syllables or more (`ZhangSan<TAB>张叁`: the tenant says this sound
  is that phrase) replaces text with exactly its toneless pinyin, unless that text is a common
  word in its own right (jieba's dictionary): 张三 -> ZhangSan, but 方式 never becomes 芳市.
  A Chinese phrase itself is not forced by its pinyin: on the tuning split that rewrote
  stretches across word boundaries with distractors (发放现金 -> 发芳县金) and found no term
  the second pass had not already written;
- a Latin phrase replaces words that sound the same (equal sound skeletons) and are spelled
  nearly alike (letter similarity 90+, lowered a little by weight): Schoffer -> Schoeffer;
  an equal spelling in other letter case or spacing is normalised too.

Only whole words are replaced, each stretch of text at most once.
"""

import functools
import importlib.resources
from dataclasses import dataclass

from rapidfuzz import fuzz

from asr_core.chinese import to_simplified
from asr_core.hotwords.model import Hotword
from asr_core.hotwords.phonetics import Unit, to_units
from asr_core.transcript import Segment, Word

LATIN_SIMILARITY = 90.0
MIN_LATIN_LETTERS = 5
COMMON_WORD_FREQUENCY = 100
"""jieba dictionary count from which a written word is taken as meant, not misheard."""


def is_common_chinese_word(text: str) -> bool:
    return _common_chinese_words().get(text, 0) >= COMMON_WORD_FREQUENCY


@functools.cache
def _common_chinese_words() -> dict[str, int]:
    """Words of two to four characters with their counts, read once from jieba's dictionary."""
    words: dict[str, int] = {}
    with (importlib.resources.files("jieba") / "dict.txt").open(encoding="utf-8") as handle:
        for line in handle:
            word, count, _ = line.split(" ", 2)
            if 2 <= len(word) <= 4 and int(count) >= COMMON_WORD_FREQUENCY:
                words[word] = int(count)
    return words


@dataclass(frozen=True)
class Replacement:
    start: int
    end: int
    phrase: str
    score: float


def find_replacements(text: str, hotwords: list[Hotword]) -> list[Replacement]:
    """Non-overlapping replacements in `text`, left to right."""
    units = to_units(text)
    found: list[Replacement] = []
    for hotword in hotwords:
        for surface in (hotword.phrase, *hotword.aliases):
            found.extend(_matches(text, units, hotword, surface, surface != hotword.phrase))
    chosen: list[Replacement] = []
    for replacement in sorted(found, key=lambda r: -r.score):
        if all(replacement.end <= r.start or replacement.start >= r.end for r in chosen):
            chosen.append(replacement)
    return sorted(chosen, key=lambda r: r.start)


def _matches(text: str, units: list[Unit], hotword: Hotword, surface: str, alias: bool):
    phrase_units = to_units(surface)
    if not phrase_units:
        return
    n = len(phrase_units)
    exact = "".join(u.exact for u in phrase_units)
    sound = "".join(u.sound for u in phrase_units)
    if all(u.is_cjk for u in phrase_units):
        if n < 2 or not alias:
            return
        for i in range(len(units) - n + 1):
            window = units[i : i + n]
            if not all(u.is_cjk for u in window) or "".join(u.exact for u in window) != exact:
                continue
            written = text[window[0].start : window[-1].end]
            if not is_common_chinese_word(to_simplified(written)):
                yield _replacement(text, window, hotword, 100.0)
        return
    if any(u.is_cjk for u in phrase_units):
        return  # mixed-script phrases are prompted, never forced
    for length in (n, n + 1):
        for i in range(len(units) - length + 1):
            window = units[i : i + length]
            if any(u.is_cjk for u in window):
                continue
            letters = "".join(u.exact for u in window)
            similarity = fuzz.ratio(letters, exact)
            if similarity == 100.0 or (
                len(exact) >= MIN_LATIN_LETTERS
                and similarity >= LATIN_SIMILARITY - max(hotword.boost, 0.0)
                and "".join(u.sound for u in window) == sound
            ):
                yield _replacement(text, window, hotword, similarity)


def _replacement(text: str, window: list[Unit], hotword: Hotword, score: float) -> Replacement:
    return Replacement(window[0].start, window[-1].end, hotword.phrase, score)


def apply_corrections(segment: Segment, hotwords: list[Hotword]) -> Segment:
    """Correct a segment's text in place, merging the words a replacement covers."""
    return apply_replacements(segment, find_replacements(segment.text, hotwords))


def apply_replacements(segment: Segment, replacements: list[Replacement]) -> Segment:
    """Write non-overlapping replacements (offsets in the segment's text, left to right) into
    a segment in place; the words a replacement touches become one word."""
    replacements = [r for r in replacements if segment.text[r.start : r.end] != r.phrase]
    if not replacements:
        return segment
    if segment.words:
        segment.words = _merge_words(segment.text, segment.words, replacements)
    for r in reversed(replacements):
        segment.text = segment.text[: r.start] + r.phrase + segment.text[r.end :]
    return segment


def _merge_words(text: str, words: list[Word], replacements: list[Replacement]) -> list[Word]:
    """Words of the corrected text: words a replacement touches become one word."""
    spans, cursor = [], 0
    for word in words:
        token = word.word.strip()
        start = text.find(token, cursor) if token else cursor
        start = cursor if start < 0 else start
        spans.append((start, start + len(token)))
        cursor = start + len(token)
    merged: list[Word] = []
    index = 0
    while index < len(words):
        start, end = spans[index]
        hit = next((r for r in replacements if r.start < end and r.end > start), None)
        if hit is None:
            merged.append(words[index])
            index += 1
            continue
        last = index
        while last + 1 < len(words) and spans[last + 1][0] < hit.end:
            last += 1
        first_start, last_end = spans[index][0], spans[last][1]
        piece = text[first_start : hit.start] + hit.phrase + text[hit.end : last_end]
        leading = words[index].word[: len(words[index].word) - len(words[index].word.lstrip())]
        merged.append(
            Word(
                start=words[index].start,
                end=words[last].end,
                word=leading + piece,
                probability=min(w.probability for w in words[index : last + 1]),
            )
        )
        index = last + 1
    return merged
