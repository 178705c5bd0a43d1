"""What recognition produces: words, segments and a transcript, engine-independent."""

from dataclasses import dataclass, field, replace
from typing import Protocol


class TimeMap(Protocol):
    def span_to_source(self, start: float, end: float) -> tuple[float, float]: ...


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    """One decoded stretch of speech; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    words: list[Word] | None = None
    language: str | None = None
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    temperature: float = 0.0
    tokens: list[int] = field(default_factory=list)
    hotwords: list[str] = field(default_factory=list)
    """Hot-words the final pass was prompted with."""
    hotword_version: int | None = None
    """Version of the hot-word list they came from."""

    def shifted(self, window: "TimeMap") -> "Segment":
        """Copy with times mapped from window time to source time."""
        words = None
        if self.words is not None:
            words = [
                Word(*window.span_to_source(w.start, w.end), w.word, w.probability)
                for w in self.words
            ]
        start, end = window.span_to_source(self.start, self.end)
        return replace(self, start=start, end=end, words=words)


@dataclass
class Transcript:
    segments: list[Segment]
    duration: float
    language: str | None = None
    language_probability: float = 0.0
    model: str | None = None

    @property
    def text(self) -> str:
        return join_text(s.text for s in self.segments)


def join_text(pieces) -> str:
    """Join segment texts: spaces between words, none between CJK characters."""
    out = ""
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if out and not (_is_cjk(out[-1]) and _is_cjk(piece[0])):
            out += " "
        out += piece
    return out


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x3000 <= code <= 0x303F  # CJK punctuation
        or 0x3400 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
    )
