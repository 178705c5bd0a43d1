"""Phonetic keys, so retrieval survives homophones, misspellings and script changes.

Text becomes a sequence of units: one per Chinese character (its toneless pinyin syllable) and
one per Latin word (its ASCII letters). Each unit has two keys:

- `exact`: pinyin (`张叁` and `张三` are both `zhang san`) or the lower-cased letters;
- `sound`: looser: pinyin with the common confusions merged (zh/z, ch/c, sh/s, n/l, -ng/-n),
  or the word's sound skeleton: spelling variants folded (ph/f, c/k/s, z/s, tz/s), silent
  `h` dropped, every vowel run written `a` and doubled letters single, so `Schoeffer` and
  `Schoffer` are both `skafar`, `Lubeck` and `Lubach` both `labak`.

Keys are compared with spaces removed, so `ZhangSan` matches `张三` and `zhang san`.
"""

import functools
import re
import unicodedata
from dataclasses import dataclass

from pypinyin import lazy_pinyin

_CJK_CHARS = "\u3400-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK_CHARS}]+)|(?P<word>[^\W_{_CJK_CHARS}]+(?:['’][^\W_{_CJK_CHARS}]+)*)"
)
_FUZZY_PINYIN = [
    (re.compile(r"^([zcs])h"), r"\1"),
    (re.compile(r"^n(?=[aeiouv])"), "l"),
    (re.compile(r"([aeiu])ng$"), r"\1n"),
    (re.compile(r"ong$"), "on"),
]
_SOUND_SKELETON = [
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"ph", "f"),
        (r"sch", "sk"),
        (r"c?k|ch", "k"),
        (r"c(?=[eiy])", "s"),
        (r"c|q", "k"),
        (r"x", "ks"),
        (r"dg", "j"),
        (r"[tdcs]?[zs]", "s"),
        (r"^wr", "r"),
        (r"^kn", "n"),
        (r"mb$", "m"),
        (r"(?<=...[^aeiou])e$", ""),
        (r"(?<=.)h", ""),
        (r"(?<=[aeiouy])w(?![aeiouy])", ""),
        (r"(?<=.)y", "a"),
        (r"[aeiou]+", "a"),
        (r"(.)\1+", r"\1"),
    )
]


@dataclass(frozen=True)
class Unit:
    exact: str
    sound: str
    start: int
    """Character span of the unit in the text it came from."""
    end: int
    is_cjk: bool = False


def to_units(text: str) -> list[Unit]:
    units: list[Unit] = []
    for match in _TOKEN.finditer(text):
        if match["cjk"]:
            run = match["cjk"]
            syllables = lazy_pinyin(run)
            if len(syllables) != len(run):
                syllables = [lazy_pinyin(char)[0] for char in run]
            for offset, syllable in enumerate(syllables):
                syllable = syllable.lower()
                position = match.start() + offset
                units.append(
                    Unit(syllable, _fuzzy_pinyin(syllable), position, position + 1, is_cjk=True)
                )
        else:
            letters = _ascii_letters(match["word"])
            if letters:
                units.append(Unit(letters, _skeleton(letters), match.start(), match.end()))
    return units


@functools.lru_cache(maxsize=65536)
def _fuzzy_pinyin(syllable: str) -> str:
    for pattern, replacement in _FUZZY_PINYIN:
        syllable = pattern.sub(replacement, syllable)
    return syllable


@functools.lru_cache(maxsize=65536)
def _skeleton(letters: str) -> str:
    if not letters.isalpha():
        return letters
    for pattern, replacement in _SOUND_SKELETON:
        letters = pattern.sub(replacement, letters)
    return letters


@functools.lru_cache(maxsize=65536)
def _ascii_letters(word: str) -> str:
    """ASCII-folded lower-case letters and digits; a possessive `'s` is dropped."""
    folded = unicodedata.normalize("NFKD", re.sub(r"['’]s$", "", word))
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower()
