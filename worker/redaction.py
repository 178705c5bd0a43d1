"""Redaction of card, phone and ID numbers in transcript text, written or spoken.

Numbers reach a transcript as digits ("4111 1111 1111 1111"), as spoken digits ("four one one
one ...", "一三八...") or mixed; a run of digit tokens with separators between them is read as
one number and classified by its digits: an 18-character Chinese resident ID (checksum) or a
9-digit SSN-like number is an ID, 13-19 digits passing the Luhn check a card, 10-15 digits (or
7 written as 123-4567) a phone number. Dates, amounts and short numbers are left alone.
"""

import re
from dataclasses import dataclass

from asr_core.transcript import Word

KINDS = ("card", "phone", "id")
TAGS = {"card": "[CARD]", "phone": "[PHONE]", "id": "[ID]"}

_SPOKEN = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    **dict(zip("零〇一二三四五六七八九", "00123456789", strict=True)),
    "幺": "1",
    "两": "2",
}
_WORD = r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b"
_TOKEN = rf"(?:\d+|{_WORD}|[零〇一二三四五六七八九幺两])"
_RUN = re.compile(rf"(?:[+(]\s*)?{_TOKEN}(?:[\s.,()/-]*{_TOKEN})*(?:\s*[xX]\b|[xX](?!\w))?", re.I)
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _digits(run: str) -> str:
    out = []
    for token in re.findall(rf"\d+|{_WORD}|[^\W\d_]|[xX]", run, re.I):
        lowered = token.lower()
        spoken = _SPOKEN.get(lowered, "X" if lowered == "x" else "")
        out.append(token if token.isdigit() else spoken)
    return "".join(out)


def luhn(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def chinese_id(number: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    remainder = sum(int(d) * w for d, w in zip(number, _CN_WEIGHTS, strict=False)) % 11
    return "10X98765432"[remainder] == number[-1]


def classify(run: str) -> str | None:
    """The kind of number a run of digit tokens is, or None."""
    digits = _digits(run)
    if chinese_id(digits):
        return "id"
    if "X" in digits:
        return None
    if len(digits) == 9:
        return "id"
    if 13 <= len(digits) <= 19 and luhn(digits):
        return "card"
    if 10 <= len(digits) <= 15 or (len(digits) == 7 and re.fullmatch(r"\d{3}[\s.-]\d{4}", run)):
        return "phone"
    return None


@dataclass
class Redactor:
    kinds: tuple[str, ...] = KINDS

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of each number to hide."""
        found = []
        for match in _RUN.finditer(text):
            kind = classify(match.group().strip())
            if kind in self.kinds:
                found.append((match.start(), match.end(), kind))
        return found

    def text(self, text: str) -> str:
        for start, end, kind in reversed(self.spans(text)):
            text = text[:start] + TAGS[kind] + text[end:]
        return text

    def words(self, words: list[Word]) -> list[Word]:
        """Words with each hidden number's words merged into one tagged word (its times span
        the number), found on the words' joined text."""
        joined, starts = "", []
        for word in words:
            starts.append(len(joined))
            joined += word.word
        spans = self.spans(joined)
        out: list[Word] = []
        covered: dict[int, Word] = {}
        for index, word in enumerate(words):
            begin, end = starts[index], starts[index] + len(word.word)
            span = next((s for s in spans if s[0] < end and begin < s[1]), None)
            if span is None:
                out.append(word)
            elif span[0] in covered:
                covered[span[0]].end = word.end
            else:
                lead = word.word[: len(word.word) - len(word.word.lstrip())]
                tagged = Word(word.start, word.end, lead + TAGS[span[2]], word.probability)
                covered[span[0]] = tagged
                out.append(tagged)
        return out
