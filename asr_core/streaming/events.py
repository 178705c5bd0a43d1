"""What a live stream sends its client. Times are milliseconds from the start of the stream."""

from dataclasses import asdict, dataclass, field


@dataclass
class WordTiming:
    word: str
    start_ms: int
    end_ms: int
    confidence: float


@dataclass
class Partial:
    """The open segment so far: `stable` will not change, `unstable` may be revised."""

    segment: int
    text: str
    stable: str
    unstable: str
    start_ms: int
    end_ms: int
    language: str
    type: str = "partial"


@dataclass
class Final:
    segment: int
    text: str
    start_ms: int
    end_ms: int
    """Where speech ended (without padding): end-of-speech latency counts from here."""
    language: str
    words: list[WordTiming] = field(default_factory=list)
    hotwords: list[str] = field(default_factory=list)
    """Hot-words the decoder was prompted with for this segment."""
    hotword_version: int | None = None
    reason: str = "silence"
    """Why the segment closed: `silence`, `max_length`, `commit` or `end`."""
    type: str = "final"


@dataclass
class SpeechStarted:
    """Speech opened segment `segment` at `start_ms` (voice activity, before any words)."""

    segment: int
    start_ms: int
    type: str = "speech_started"


@dataclass
class EagerFinal:
    """The final prepared at a pause (about 100 ms of silence), sent before the endpoint
    confirms it: it becomes the segment's `final`, word for word, unless a `turn_resumed`
    for the segment comes first (the speaker went on). Voice bots start replying on it."""

    segment: int
    text: str
    start_ms: int
    end_ms: int
    language: str
    words: list[WordTiming] = field(default_factory=list)
    type: str = "eager_final"


@dataclass
class TurnResumed:
    """Speech went on after segment `segment`'s `eager_final`: that text is no final."""

    segment: int
    type: str = "turn_resumed"


@dataclass
class UtteranceEnd:
    """No speech for `utterance_end_ms` after the last final's last word (at
    `last_word_end_ms`)."""

    last_word_end_ms: int
    type: str = "utterance_end"


@dataclass
class Endpoint:
    segment: int
    end_ms: int
    reason: str
    type: str = "endpoint"


@dataclass
class Error:
    code: str
    message: str
    type: str = "error"


Event = Partial | Final | Endpoint | Error | SpeechStarted | EagerFinal | TurnResumed | UtteranceEnd


def to_dict(event: Event) -> dict:
    return asdict(event)
