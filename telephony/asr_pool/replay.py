"""What lets a leg move to another core without losing or repeating a final.

- `ReplayBuffer`: the leg's 16 kHz PCM16 audio since its last final (positions counted in
  samples from the start of the leg). When a core's socket drops, the next core gets this audio
  first, so the segment that was open (or decoding) is recognised again from its start.
- `Renumbering`: a new core counts segments and milliseconds from its own start; its events
  are shifted to the leg's time line (where the replay began) and segment numbers (after the
  last final), so the leg's finals keep increasing ids and continuous times, and a final the
  old core already sent is never sent twice.
"""

from asr_core import SAMPLE_RATE
from asr_core.streaming import Endpoint, Error, Event, Final, Partial, WordTiming

BYTES_PER_SAMPLE = 2


class ReplayBuffer:
    def __init__(self, max_s: float) -> None:
        self._audio = bytearray()
        self._max_bytes = int(max_s * SAMPLE_RATE) * BYTES_PER_SAMPLE
        self.start = 0
        """Position (samples) of the oldest audio kept."""
        self.dropped_s = 0.0
        """Audio let go unheard by any core (no core for longer than the buffer)."""

    @property
    def end(self) -> int:
        """Position just after the newest audio."""
        return self.start + len(self._audio) // BYTES_PER_SAMPLE

    def append(self, pcm: bytes) -> None:
        self._audio += pcm
        over = len(self._audio) - self._max_bytes
        if over > 0:
            over += over % BYTES_PER_SAMPLE
            del self._audio[:over]
            self.start += over // BYTES_PER_SAMPLE

    def read(self, position: int, max_bytes: int) -> bytes:
        """Up to `max_bytes` of audio from `position` (at least the oldest kept) on."""
        offset = (max(position, self.start) - self.start) * BYTES_PER_SAMPLE
        return bytes(self._audio[offset : offset + max_bytes])

    def release(self, position: int) -> None:
        """Audio before `position` has its final: no core needs it again."""
        cut = min(max(position, self.start), self.end) - self.start
        if cut > 0:
            del self._audio[: cut * BYTES_PER_SAMPLE]
            self.start += cut

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


class Renumbering:
    """One core connection's events on the leg's time line and segment numbers."""

    def __init__(self, origin: int, first_segment: int) -> None:
        self.origin_ms = round(origin * 1000 / SAMPLE_RATE)
        """Where this connection's audio began on the leg's time line."""
        self.first_segment = first_segment

    def event(self, message: dict) -> Event | None:
        """A core's JSON event as the leg's event (None: not one a listener sees)."""
        kind = message.get("type")
        if kind == "final":
            return self._final(message)
        if kind == "partial":
            return Partial(
                segment=self._segment(message),
                text=str(message.get("text", "")),
                stable=str(message.get("stable", "")),
                unstable=str(message.get("unstable", "")),
                start_ms=self._ms(message, "start_ms"),
                end_ms=self._ms(message, "end_ms"),
                language=str(message.get("language", "")),
            )
        if kind == "endpoint":
            return Endpoint(
                self._segment(message),
                self._ms(message, "end_ms"),
                str(message.get("reason", "silence")),
            )
        if kind == "error":
            return Error(str(message.get("code", "asr_error")), str(message.get("message", "")))
        return None

    def _final(self, message: dict) -> Final:
        words = [
            WordTiming(
                str(w.get("word", "")),
                self._ms(w, "start_ms"),
                self._ms(w, "end_ms"),
                float(w.get("confidence", 0.0)),
            )
            for w in message.get("words") or []
            if isinstance(w, dict)
        ]
        version = message.get("hotword_version")
        return Final(
            segment=self._segment(message),
            text=str(message.get("text", "")),
            start_ms=self._ms(message, "start_ms"),
            end_ms=self._ms(message, "end_ms"),
            language=str(message.get("language", "")),
            words=words,
            hotwords=[str(h) for h in message.get("hotwords") or []],
            hotword_version=int(version) if version is not None else None,
            reason=str(message.get("reason", "silence")),
        )

    def _segment(self, message: dict) -> int:
        return self.first_segment + int(message.get("segment", 0))

    def _ms(self, message: dict, key: str) -> int:
        return self.origin_ms + int(message.get(key, 0))
