"""The hot-word pass may only help: what of a prompted second pass is kept.

The final text is the first pass: the window decoded exactly as without a list. A second pass
with the retrieved phrases in its prompt then decides one thing per retrieved phrase: whether
to write the phrase where the first pass heard something like it. Everything else the second
pass writes differently (a clause split into spaced syllables, a surname from the prompt,
punctuation, 300亿 for 三百亿) is never taken:

1. the second pass is refused whole (and the first pass kept) when it
   - puts spaces between Chinese characters where the first pass had none (`cjk_spacing`),
   - changes more than a small fraction of the words or characters outside the retrieved
     spans (`outside_changes`): it is no longer the same sentence,
   - is less sure of itself than the first pass by more than a margin (`log_prob`, average
     log-probabilities per token);
2. otherwise, each retrieved phrase that the second pass wrote, where the first pass wrote
   something else in (or within `margin` units of) the phrase's retrieved span, replaces that
   stretch of the first pass. Nothing else changes. A single Chinese character is never
   written: a homophone of it is in every sentence. A short list is prompted whole (a
   caller's few words); its phrases the first pass did not retrieve may replace a stretch the
   second pass changed, of about the phrase's length, wherever it is.

Each verdict is logged and counted (`callscribe_hotword_second_passes_total{outcome}`).
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter
from rapidfuzz.distance import Levenshtein

from asr_core.hotwords.correct import Replacement
from asr_core.hotwords.index import Candidate
from asr_core.hotwords.model import Hotword

logger = logging.getLogger(__name__)

_CJK_CHARS = "\u3400-\u9fff\uf900-\ufaff"
_UNIT = re.compile(rf"[{_CJK_CHARS}]|[^\W_{_CJK_CHARS}]+(?:['’][^\W_{_CJK_CHARS}]+)*")
_CJK = re.compile(rf"[{_CJK_CHARS}]")
_VOWELS = re.compile(r"[aeiouy]+")
_CJK_GAP = re.compile(rf"[{_CJK_CHARS}]\s+(?=[{_CJK_CHARS}])")

OUTCOMES = ("accepted", "unchanged", "cjk_spacing", "outside_changes", "log_prob")
SECOND_PASSES = Counter(
    "callscribe_hotword_second_passes",
    "Hot-word second passes by outcome: accepted (a phrase was taken), unchanged, or the "
    "reason the whole pass was refused (cjk_spacing, outside_changes, log_prob)",
    ["outcome"],
    registry=None,
)
"""Process-wide; a service registers it in the registry it exposes at /metrics."""


@dataclass(frozen=True)
class GuardOptions:
    """Thresholds, chosen on the tuning split (`python -m bench.hotwords_tune`)."""

    margin: int = 0
    """Units (a Chinese character or a word) a written phrase may reach past its span."""
    max_new_cjk_gaps: int = 0
    """Spaces between Chinese characters the second pass may add before it is refused."""
    max_outside_change: float = 1.0
    """Units the second pass may change outside the spans, as a fraction of the first pass's:
    stricter values refused passes that had written a term right and took nothing wrong, so
    only a rewrite bigger than the sentence itself is refused."""
    max_logprob_drop: float = 0.1
    """How far the second pass's average log-probability may fall below the first's."""


@dataclass(frozen=True)
class SecondPass:
    """What an engine's hot-word pass returns: plain text, no timestamps."""

    text: str
    avg_logprob: float | None = None
    """Average log-probability per token of `text` under the prompt that produced it."""
    first_avg_logprob: float | None = None
    """The first pass's, measured the same way (None: the engine cannot compare)."""


@dataclass
class Verdict:
    replacements: list[Replacement] = field(default_factory=list)
    """Stretches of the first pass to replace, in its character offsets, left to right."""
    outcome: str = "unchanged"


@dataclass(frozen=True)
class _Unit:
    key: str
    start: int
    end: int


def units(text: str) -> list[_Unit]:
    """Words and Chinese characters, lower-cased; punctuation and spaces are not units."""
    return [_Unit(m.group().lower(), m.start(), m.end()) for m in _UNIT.finditer(text)]


def cjk_gaps(text: str) -> int:
    return len(_CJK_GAP.findall(text))


def judge(
    first: str,
    second: SecondPass,
    candidates: Sequence[Candidate],
    options: GuardOptions | None = None,
    unplaced: Sequence[Hotword] = (),
) -> Verdict:
    """Which retrieved phrases of the second pass replace what stretch of the first pass.

    `candidates` were retrieved from `first`: their spans are offsets in it. `unplaced` are
    phrases prompted without a span (a short list is prompted whole): one may replace a
    stretch the second pass changed, of about its length, anywhere.
    """
    options = options or GuardOptions()
    verdict = _judge(first, second, candidates, options, unplaced)
    SECOND_PASSES.labels(outcome=verdict.outcome).inc()
    if verdict.outcome not in ("accepted", "unchanged"):
        logger.info(
            "hot-word second pass refused (%s): kept %r over %r",
            verdict.outcome,
            first,
            second.text,
            extra={"outcome": verdict.outcome},
        )
    return verdict


def _judge(
    first: str,
    second: SecondPass,
    candidates: Sequence[Candidate],
    options: GuardOptions,
    unplaced: Sequence[Hotword],
) -> Verdict:
    if not (candidates or unplaced) or not second.text.strip():
        return Verdict()
    if cjk_gaps(second.text) > cjk_gaps(first) + options.max_new_cjk_gaps:
        return Verdict(outcome="cjk_spacing")
    if (
        second.avg_logprob is not None
        and second.first_avg_logprob is not None
        and second.avg_logprob < second.first_avg_logprob - options.max_logprob_drop
    ):
        return Verdict(outcome="log_prob")
    old, new = units(first), units(second.text)
    alignment = _Alignment(old, new)
    spans = [_unit_range(old, c.start, c.end, options.margin) for c in candidates]
    if alignment.changed_outside(spans) > options.max_outside_change * max(len(old), 1):
        return Verdict(outcome="outside_changes")
    placements = [
        (c.phrase, low, high, False) for c, (low, high) in zip(candidates, spans, strict=True)
    ]
    placements += [(hotword.phrase, 0, len(old), True) for hotword in unplaced]
    # Longest first: where the second pass wrote a phrase that holds a shorter retrieved one
    # (丽江古城 and 丽江), the whole phrase is what it wrote.
    placements.sort(key=lambda placement: -len(units(placement[0])))
    chosen: list[Replacement] = []
    for text, low, high, by_sound in placements:
        phrase = [u.key for u in units(text)]
        if not phrase or (len(phrase) < 2 and _CJK.match(text)):
            continue  # one Chinese character: a homophone of it is everywhere
        for start in _occurrences([u.key for u in new], phrase):
            a, b = alignment.source_range(start, start + len(phrase))
            stretch = [u.key for u in old[a:b]]
            if b <= a or stretch == phrase or b <= low or a >= high:
                continue
            # Retrieved: the stretch has the phrase's units, give or take one (as retrieval
            # matched it). Unplaced: its syllables, give or take one ("Xiaomeng Zhao" was
            # heard as "my own man now").
            size, wanted = (
                (_syllables(stretch), _syllables(phrase)) if by_sound else (b - a, len(phrase))
            )
            if abs(size - wanted) > 1:
                continue
            replacement = Replacement(old[a].start, old[b - 1].end, text, 100.0)
            if all(replacement.end <= r.start or replacement.start >= r.end for r in chosen):
                chosen.append(replacement)
            break
    if not chosen:
        return Verdict()
    return Verdict(sorted(chosen, key=lambda r: r.start), "accepted")


class _Alignment:
    """Unit-level edit script from the first pass (`old`) to the second (`new`)."""

    def __init__(self, old: list[_Unit], new: list[_Unit]) -> None:
        # Adjacent edits (a replacement then a deletion, say) form one changed block.
        self.blocks: list[tuple[bool, int, int, int, int]] = []
        for op in Levenshtein.opcodes([u.key for u in old], [u.key for u in new]):
            equal = op.tag == "equal"
            if self.blocks and not equal and not self.blocks[-1][0]:
                _, src_start, _, dest_start, _ = self.blocks.pop()
                self.blocks.append((False, src_start, op.src_end, dest_start, op.dest_end))
            else:
                self.blocks.append((equal, op.src_start, op.src_end, op.dest_start, op.dest_end))
        self._source: list[tuple[int, int]] = [(0, 0)] * len(new)
        for equal, src_start, src_end, dest_start, dest_end in self.blocks:
            for j in range(dest_start, dest_end):
                if equal or src_end - src_start == dest_end - dest_start:
                    i = src_start + j - dest_start  # unit for unit
                    self._source[j] = (i, i + 1)
                else:  # a block that grew or shrank maps as a whole, an insertion to its gap
                    self._source[j] = (src_start, src_end)

    def source_range(self, start: int, end: int) -> tuple[int, int]:
        """The first-pass units that new units [start, end) stand in for."""
        ranges = self._source[start:end]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def changed_outside(self, spans: list[tuple[int, int]]) -> int:
        """Units changed (replaced, deleted or inserted) that no span accounts for: a change
        block counts in full away from the spans, and beyond a span's length at one."""
        changed = 0
        for equal, src_start, src_end, dest_start, dest_end in self.blocks:
            if equal:
                continue
            allowance = max(
                (
                    high - low
                    for low, high in spans
                    if (src_start < high and src_end > low) or low <= src_start <= high
                ),
                default=0,
            )
            changed += max(0, max(src_end - src_start, dest_end - dest_start) - allowance)
        return changed


def _unit_range(old: list[_Unit], start: int, end: int, margin: int) -> tuple[int, int]:
    """Units of the first pass that characters [start, end) cover, widened by `margin`."""
    inside = [i for i, u in enumerate(old) if u.start < end and u.end > start]
    if not inside:
        return 0, 0
    return max(0, inside[0] - margin), min(len(old), inside[-1] + 1 + margin)


def _syllables(keys: list[str]) -> int:
    """A Chinese character is one; a word has one per vowel group (at least one)."""
    return sum(1 if _CJK.match(key) else max(1, len(_VOWELS.findall(key))) for key in keys)


def _occurrences(keys: list[str], phrase: list[str]):
    for start in range(len(keys) - len(phrase) + 1):
        if keys[start : start + len(phrase)] == phrase:
            yield start
