"""Word times for FunAudio finals, read off the CTC head.

The LLM writes the text but says nothing of when each word was spoken. The CTC head does: its
best unit per encoder frame spikes where a unit is heard. So the greedy CTC path gives every
character it spells a time span and a posterior, and the LLM's words are matched to those
characters (same letters or CJK characters, case and punctuation aside). A word the CTC path
did not spell the same way (an ITN number, a corrected hot-word) gets the gap between its
matched neighbours and a probability of 0: nothing acoustic vouches for it.
"""

import codecs
import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

from asr_core.transcript import Word

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"\s*(?:[{_CJK}][^\s\w]*|[^\s{_CJK}]+)")
"""A CJK character (with the punctuation after it), or a run of anything else that is not
space; with the space before it, as Whisper's words have it: together they give the text."""


@dataclass(frozen=True)
class TimedChar:
    char: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Spike:
    """A run of frames whose best unit is one non-blank unit."""

    unit: int
    start: float
    end: float
    probability: float


def spikes(best: list[int], probability: list[float], blank: int, frame_s: float) -> list[Spike]:
    """The greedy CTC path (best unit and its posterior per frame) as runs of one unit."""
    runs: list[Spike] = []
    index = 0
    while index < len(best):
        unit, first = best[index], index
        while index < len(best) and best[index] == unit:
            index += 1
        if unit != blank:
            mean = sum(probability[first:index]) / (index - first)
            runs.append(Spike(unit, first * frame_s, index * frame_s, mean))
    return runs


def timed_chars(runs: list[Spike], pieces: dict[int, bytes]) -> list[TimedChar]:
    """The characters the path spells. A piece may hold several characters (they split its
    run evenly) or part of one (a CJK character over several byte pieces is timed from the run
    where its first byte came to the run that completed it)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    chars: list[TimedChar] = []
    open_runs: list[Spike] = []
    """Runs whose bytes the decoder holds, not yet a whole character."""
    for run in runs:
        open_runs.append(run)
        text = decoder.decode(pieces.get(run.unit, b""))
        if not text:
            continue
        start = open_runs[0].start
        step = (run.end - start) / len(text)
        probability = sum(r.probability for r in open_runs) / len(open_runs)
        chars += [
            TimedChar(char, start + n * step, start + (n + 1) * step, probability)
            for n, char in enumerate(text)
        ]
        open_runs = [run] if decoder.getstate()[0] else []
    return chars


def align_words(text: str, chars: list[TimedChar], duration: float) -> list[Word]:
    """`text`'s words, timed by the CTC characters they match."""
    words = _WORD.findall(text)
    keys = [[_key(c) for c in word if _key(c)] for word in words]
    flat = [(w, k) for w, word_keys in enumerate(keys) for k in word_keys]
    spoken = [(i, _key(c.char)) for i, c in enumerate(chars) if _key(c.char)]
    matcher = SequenceMatcher(None, [k for _, k in flat], [k for _, k in spoken], autojunk=False)
    matched: dict[int, list[TimedChar]] = {}
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            word = flat[block.a + offset][0]
            matched.setdefault(word, []).append(chars[spoken[block.b + offset][0]])
    timed: list[Word | None] = [
        Word(
            round(min(c.start for c in hits), 3),
            round(max(c.end for c in hits), 3),
            word,
            round(sum(c.probability for c in hits) / len(hits), 3),
        )
        if (hits := matched.get(index))
        else None
        for index, word in enumerate(words)
    ]
    return _fill_gaps(words, timed, duration)


def _fill_gaps(words: list[str], timed: list[Word | None], duration: float) -> list[Word]:
    """Unmatched words share the time between their matched neighbours evenly, in order."""
    result: list[Word] = []
    index = 0
    while index < len(timed):
        word = timed[index]
        if word is not None:
            start = max(word.start, result[-1].end if result else 0.0)
            result.append(Word(start, max(start, word.end), word.word, word.probability))
            index += 1
            continue
        gap_end = index
        while gap_end < len(timed) and timed[gap_end] is None:
            gap_end += 1
        begin = result[-1].end if result else 0.0
        following = timed[gap_end] if gap_end < len(timed) else None
        finish = max(begin, following.start if following is not None else duration)
        step = (finish - begin) / (gap_end - index)
        for n in range(index, gap_end):
            start = begin + (n - index) * step
            result.append(Word(round(start, 3), round(start + step, 3), words[n], 0.0))
        index = gap_end
    return result


def _key(char: str) -> str:
    """What two spellings of a character have in common: lower case, no accents; '' for
    punctuation and symbols."""
    if not char.isalnum():
        return ""
    return unicodedata.normalize("NFKD", char.lower())[0]
