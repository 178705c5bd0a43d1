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


Event = Partial | Final | Endpoint | Error


def to_dict(event: Event) -> dict:
    return asdict(event)
