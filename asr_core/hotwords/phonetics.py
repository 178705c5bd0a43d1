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
from typing import Literal

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


NumberReading = Literal["number", "digits"]
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DIGITS = "零一二三四五六七八九"


@dataclass(frozen=True)
class Unit:
    exact: str
    sound: str
    start: int
    """Character span of the unit in the text it came from."""
    end: int
    is_cjk: bool = False


def to_units(text: str, numbers: NumberReading | None = None) -> list[Unit]:
    """The text's units; with `numbers`, each number written in digits (`1.5`, `90`) becomes
    the syllables it is read as in Mandarin, each spanning the whole number."""
    if numbers is None:
        return _units(text, 0)
    units: list[Unit] = []
    position = 0
    for match in _NUMBER.finditer(text):
        units += _units(text[position : match.start()], position)
        for syllable in lazy_pinyin(read_number(match.group(), numbers)):
            units.append(Unit(syllable, _fuzzy_pinyin(syllable), *match.span(), is_cjk=True))
        position = match.end()
    return units + _units(text[position:], position)


def _units(text: str, offset: int) -> list[Unit]:
    units: list[Unit] = []
    for match in _TOKEN.finditer(text):
        start, end = match.start() + offset, match.end() + offset
        if match["cjk"]:
            run = match["cjk"]
            syllables = lazy_pinyin(run)
            if len(syllables) != len(run):
                syllables = [lazy_pinyin(char)[0] for char in run]
            for index, syllable in enumerate(syllables):
                syllable = syllable.lower()
                units.append(
                    Unit(syllable, _fuzzy_pinyin(syllable), start + index, start + index + 1, True)
                )
        else:
            letters = _ascii_letters(match["word"])
            if letters:
                units.append(Unit(letters, _skeleton(letters), start, end))
    return units


def read_number(number: str, reading: NumberReading) -> str:
    """A number in digits as Mandarin says it: `number` (300 -> 三百, 1.5 -> 一点五) or
    digit by digit (`digits`: 90 -> 九零, as in 九零后 or a year)."""
    whole, _, decimals = number.partition(".")
    if reading == "digits" or len(whole) > 12 or (len(whole) > 1 and whole[0] == "0"):
        spoken = "".join(_DIGITS[int(d)] for d in whole)
    else:
        spoken = _integer(int(whole))
    if decimals:
        spoken += "点" + "".join(_DIGITS[int(d)] for d in decimals)
    return spoken


def _integer(value: int) -> str:
    """0 <= value < 10**12 in Chinese numerals: 一百四十四, 一万零五百, 十二."""
    if value == 0:
        return _DIGITS[0]
    groups = []  # four-digit groups, lowest first
    while value:
        groups.append(value % 10000)
        value //= 10000
    spoken = ""
    for power in range(len(groups) - 1, -1, -1):
        group = groups[power]
        if group == 0:
            if spoken and not spoken.endswith(_DIGITS[0]):
                spoken += _DIGITS[0]
            continue
        if spoken and group < 1000 and not spoken.endswith(_DIGITS[0]):
            spoken += _DIGITS[0]
        spoken += _group(group) + ("", "万", "亿")[power]
    spoken = spoken.rstrip(_DIGITS[0])
    return spoken[1:] if spoken.startswith("一十") else spoken


def _group(value: int) -> str:
    """1 <= value < 10000: 三千零五, 一百四十四, 一十二 (the caller drops a leading 一十)."""
    spoken = ""
    for size, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = value // size % 10
        if digit:
            spoken += _DIGITS[digit] + name
        elif spoken and value % size and not spoken.endswith(_DIGITS[0]):
            spoken += _DIGITS[0]
    return spoken


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
