"""What a gateway's pool of ASR cores is given (the composition root fills it from
`CALLSCRIBE_ASR_URLS` and `CALLSCRIBE_ASR_SERVICE_KEY`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AsrPoolConfig:
    urls: tuple[str, ...]
    """The cores' base URLs, `ws://asr-1:7860` (or `wss://`)."""
    service_key: str
    """Presented to every core: it lets this gateway stream for the tenant it names."""
    health_interval_s: float = 2.0
    """How often each core's `/healthz` load is read."""
    health_timeout_s: float = 2.0
    connect_timeout_s: float = 5.0
    max_finals_waiting: int = 8
    """A core with this many finals waiting for a decoder takes no new stream."""
    replay_max_s: float = 35.0
    """Audio kept per leg since its last final: more than the longest segment (30 s), so an
    interrupted segment is replayed whole; beyond it (no core for that long) the oldest goes."""
    retry_s: float = 0.5
    """Pause between rounds of tries when no core takes a leg's stream."""
    close_timeout_s: float = 60.0
    """How long a leg that has ended waits for a core to give its last finals."""
