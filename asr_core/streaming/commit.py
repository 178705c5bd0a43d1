"""Tail-only finals: the settled beginning of a long utterance is decoded once, not again at
every pause and at the end.

Whenever the speaker pauses, the recognizer decodes the segment so far with the final's
settings (its speculative final). When they go on talking that decode used to be thrown
away; here its words become a commit candidate, committed when all of these hold:

- the pause came after at least `min_speech_s` of speech (a short segment gains nothing);
- the decode is sure where it would be cut: no fallback temperature, a likely enough text,
  and its last word ends inside the pause with a confident probability;
- a partial decoded later, over audio past the pause, agrees with every committed word (two
  decodes, the beam search up to the pause and a greedy one over more audio, read the same).

Once a segment has a commit, its later speculations and its final decode only the audio
after the cut (inside the pause) in the committed language, with the committed text as
previous-text context: CTranslate2 reads those tokens, placed before
`<|startoftranscript|>`, in one pass, where a `prefix` would cost one decoder step per token.
The final's text and words are the committed ones followed by the tail's. Where a check
fails nothing is committed, and the whole segment is decoded as before.

Whisper given previous text sometimes writes it out again after the tail's own words (the
tail "Not only in Italy, but in Germany and France." decoded after the committed "A very few
years saw the birth of Roman character." came back with that sentence once more): a tail
segment that only repeats committed words is dropped (`without_copies`).
"""

from dataclasses import dataclass, replace

from asr_core import SAMPLE_RATE
from asr_core.evaluation import normalize, tokens
from asr_core.streaming.events import WordTiming
from asr_core.transcribe import WindowResult
from asr_core.transcript import join_text

CUT_AFTER_SPEECH_MS = 50
"""Where the tail starts: this far into the pause (a speculation waits for 100 ms of it)."""
MIN_AVG_LOGPROB = -0.8
"""A decode less likely than this (per token) is not committed (fallback starts at -1.0)."""
MIN_LAST_WORD_PROBABILITY = 0.4
"""The word before the cut: a weak one may be a word cut in two, or one still to come."""
LAST_WORD_SLACK_MS = 100
"""Whisper's word ends are rough: the last word may end this far past the cut."""
PROMPT_CHARS = 200
"""Committed text given as context (Whisper caps previous text at 223 tokens)."""
PARTIAL_PAST_CUT_S = 0.3
"""A partial must have heard this much audio past the cut to confirm a commit."""
MIN_COPY_WORDS = 3
"""A tail segment this long (words; characters x 2 where characters are scored, as in
Mandarin) that repeats committed text is a copy; a shorter one may be a word said twice."""


@dataclass(frozen=True)
class Commit:
    """The settled beginning of an open segment."""

    cut: int
    """Stream sample where the still-undecided tail starts (inside a pause)."""
    text: str
    words: tuple[WordTiming, ...]
    """Times in ms from the start of the stream."""
    language: str

    @property
    def prompt(self) -> str:
        return self.text[-PROMPT_CHARS:]


def candidate(
    result: WindowResult,
    audio_start: int,
    base: "Commit | None",
    pause_start: int,
    speech_start: int,
    min_speech_s: float,
) -> "Commit | None":
    """What a finished decode of the segment up to a pause offers to commit (extending the
    commit it was decoded after, if any), or None where it is unsure.

    `audio_start`: stream sample where the decoded audio began; `pause_start`: the end of
    speech the decode ran up to.
    """
    if pause_start - speech_start < min_speech_s * SAMPLE_RATE:
        return None
    segments = result.segments
    if not segments or any(
        s.temperature > 0 or s.avg_logprob < MIN_AVG_LOGPROB or s.words is None for s in segments
    ):
        return None
    offset = audio_start / SAMPLE_RATE
    words = [
        WordTiming(
            w.word.strip(), _ms(offset + w.start), _ms(offset + w.end), round(w.probability, 3)
        )
        for s in segments
        for w in s.words or []
    ]
    cut = pause_start + CUT_AFTER_SPEECH_MS * SAMPLE_RATE // 1000
    if not words:
        return None
    last = words[-1]
    if last.end_ms > _ms(cut / SAMPLE_RATE) + LAST_WORD_SLACK_MS:
        return None  # the decode heard a word running into the pause: the cut is unsure
    if last.confidence < MIN_LAST_WORD_PROBABILITY:
        return None
    text = join_text([base.text if base else "", *(s.text for s in segments)])
    return Commit(
        cut=cut,
        text=text,
        words=(*(base.words if base else ()), *words),
        language=result.language,
    )


def agrees(commit: Commit, partial_text: str, language: str) -> bool:
    """Every committed word (character, in Mandarin) begins the partial's text, in order,
    after normalisation (case, punctuation, script)."""
    committed = _units(commit.text, language)
    heard = _units(partial_text, language)
    return bool(committed) and heard[: len(committed)] == committed


def without_copies(result: WindowResult, commit: Commit) -> WindowResult:
    """The tail's decode without the segments that repeat a run of the committed text word
    for word (after normalisation): Whisper copying its previous-text context."""
    language = commit.language
    committed = _joined(_units(commit.text, language))
    kept = []
    for segment in result.segments:
        units = _units(segment.text, language)
        if len(units) < _min_copy(language) or _joined(units) not in committed:
            kept.append(segment)
    return result if len(kept) == len(result.segments) else replace(result, segments=kept)


def _units(text: str, language: str) -> list[str]:
    """Scoring units of the normalised text: words, or characters in Mandarin."""
    return tokens(normalize(text, language), language)


def _joined(units: list[str]) -> str:
    """Units with a separator around each, so `in` finds whole runs."""
    return "|" + "|".join(units) + "|"


def _min_copy(language: str) -> int:
    return MIN_COPY_WORDS if language == "en" else 2 * MIN_COPY_WORDS


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
