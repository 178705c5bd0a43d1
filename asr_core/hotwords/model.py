"""Hot-word entries and lists: what a tenant curates and what retrieval searches."""

import math
import re
import unicodedata
from dataclasses import dataclass, field

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def script_language(text: str) -> str:
    """`zh` for text with Chinese characters, else `en` (mixed phrases count as Mandarin)."""
    return "zh" if _CJK.search(text) else "en"


@dataclass(frozen=True)
class Hotword:
    phrase: str
    """The canonical spelling: what goes into the prompt and what corrections write."""
    weight: float = 1.0
    """Relative importance (FunASR's `phrase weight`); > 1 favours, < 1 disfavours."""
    aliases: tuple[str, ...] = ()
    """How it may sound or be written otherwise (`ZhangSan` -> `张叁`, `CRISPR` -> `基因编辑`)."""
    language: str = ""

    def __post_init__(self) -> None:
        if not self.language:
            object.__setattr__(self, "language", script_language(self.phrase))

    @property
    def boost(self) -> float:
        """Score points the weight adds (log scale, bounded): weight 1 -> 0, 20 -> +4.3."""
        return max(-5.0, min(5.0, math.log2(self.weight))) if self.weight > 0 else -5.0


PROMPT_TOKEN_BUDGET = 223
"""Tokens a Whisper prompt may spend on hot-words (faster-whisper cuts the rest)."""


def estimate_tokens(phrase: str) -> int:
    """Decoder tokens a phrase is likely to take: BPE spends one to two tokens per Chinese
    character and about one per four Latin letters, plus one per word boundary."""
    cjk = sum(1 for c in phrase if _CJK.match(c))
    latin = sum(1 for c in phrase if c.isascii() and c.isalnum())
    other = sum(1 for c in phrase if not c.isascii() and unicodedata.category(c)[0] == "L") - cjk
    return math.ceil(cjk * 1.5 + latin / 4 + other / 2) + len(phrase.split())


@dataclass(frozen=True)
class HotwordLimits:
    max_phrases: int = 5000
    max_chars: int = 64
    top_k: int = 10
    """Phrases prompted per window: each must fit its share of the prompt budget."""
    max_aliases: int = 20_000
    """Aliases in a whole list: each is indexed like a phrase, so they cost as much work."""
    max_list_chars: int = 300_000
    """Characters of all phrases and aliases of a list together."""

    @property
    def max_text_chars(self) -> int:
        """Longest list text read at all: its phrases and aliases, with room for the format
        (separators, weights, comments)."""
        return 2 * self.max_list_chars + 16 * self.max_phrases

    @property
    def max_phrase_tokens(self) -> int:
        return PROMPT_TOKEN_BUDGET // self.top_k


@dataclass
class HotwordList:
    entries: list[Hotword] = field(default_factory=list)
    version: int | None = None
    """The list version the admin backend assigned; recorded with every final segment."""

    @property
    def phrases(self) -> list[str]:
        return [entry.phrase for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def merged(self, other: "HotwordList") -> "HotwordList":
        """This list plus `other`'s phrases it lacks (per-request words on a tenant list)."""
        known = {entry.phrase for entry in self.entries}
        extra = [entry for entry in other.entries if entry.phrase not in known]
        return HotwordList(self.entries + extra, self.version)
