"""Flux (`listen` v2) turns, built from the recognizer's events: `TurnInfo` messages.

A turn is one utterance of the recognizer (a segment). Its events:

- `StartOfTurn` with the turn's first words (the first partial, eager final or final with
  text: voice activity alone starts no turn, so a cough never opens a turn that never ends);
- `Update` about every `UPDATE_INTERVAL_S` of audio while the turn is open, with the
  transcript so far;
- `EagerEndOfTurn` (eager mode only) when the final prepared at a pause is ready while the
  speaker is still silent; then either `TurnResumed` (they went on: that text is void) or
  `EndOfTurn`, whose transcript is the eager one word for word;
- `EndOfTurn` with the final transcript, once the pause reached the end-of-turn silence.

The thresholds map to the recognizer's silence policy (see `flux_endpointing` and
docs/voicebots.md): `eot_threshold` 0.5-0.9 sets the end-of-turn silence 300-700 ms (0.7,
Flux's default, is the recognizer's default 500 ms), never more than `eot_timeout_ms`;
`eager_eot_threshold` 0.3-0.9 sets when the eager final is prepared, 100-250 ms of silence.
"""

from dataclasses import dataclass, field

from asr_core.streaming import EagerFinal, Final, Partial, TurnResumed, WordTiming

UPDATE_INTERVAL_S = 0.25


@dataclass(frozen=True)
class Thresholds:
    eot_threshold: float = 0.7
    eager_eot_threshold: float | None = None
    eot_timeout_ms: int = 5000

    def as_dict(self) -> dict:
        return {
            "eot_threshold": self.eot_threshold,
            "eager_eot_threshold": self.eager_eot_threshold,
            "eot_timeout_ms": self.eot_timeout_ms,
        }


def flux_endpointing(thresholds: Thresholds) -> tuple[int, int]:
    """(end-of-turn silence ms, eager-final silence ms) for the thresholds."""
    silence = round(300 + (thresholds.eot_threshold - 0.5) * 1000)
    silence = min(silence, thresholds.eot_timeout_ms)
    eager = thresholds.eager_eot_threshold
    speculate = 100 if eager is None else round(100 + (eager - 0.3) * 250)
    return silence, min(speculate, silence - 50)


@dataclass
class Turns:
    """One v2 socket's turn state; `on_event` and `on_audio` return the messages to send."""

    request_id: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    state: str = "idle"
    """`idle`, `open` (a turn is under way) or `eager` (an EagerEndOfTurn is out)."""
    turn_index: int = 0
    sequence_id: int = 0
    transcript: str = ""
    words: list[WordTiming] = field(default_factory=list)
    start_s: float = 0.0
    audio_s: float = 0.0
    _updated_at: float = 0.0

    def connected(self) -> dict:
        return self.message({"type": "Connected", "request_id": self.request_id})

    def on_audio(self, audio_s: float) -> list[dict]:
        """The stream's audio reached `audio_s` seconds: an `Update` when one is due."""
        self.audio_s = audio_s
        if self.state != "open" or audio_s - self._updated_at < UPDATE_INTERVAL_S:
            return []
        self._updated_at = audio_s
        return [self._turn_info("Update")]

    def on_event(self, event: object) -> list[dict]:
        if isinstance(event, Partial):
            return self._heard(event.text, [], event.start_ms) if self.state != "eager" else []
        if isinstance(event, EagerFinal):
            out = self._heard(event.text, event.words, event.start_ms)
            if self.thresholds.eager_eot_threshold is None or self.state != "open":
                return out
            self.state = "eager"
            return [*out, self._turn_info("EagerEndOfTurn", self.thresholds.eager_eot_threshold)]
        if isinstance(event, TurnResumed):
            if self.state != "eager":
                return []
            self.state = "open"
            return [self._turn_info("TurnResumed")]
        if isinstance(event, Final):
            return self._final(event)
        return []

    def _heard(self, text: str, words: list[WordTiming], start_ms: int) -> list[dict]:
        if not text.strip():
            return []
        self.transcript, self.words = text.strip(), words
        if self.state != "idle":
            return []
        self.state = "open"
        self.start_s = start_ms / 1000
        self._updated_at = self.audio_s
        return [self._turn_info("StartOfTurn")]

    def _final(self, event: Final) -> list[dict]:
        text = event.text.strip()
        if self.state == "idle" and not text:
            return []
        out: list[dict] = []
        if self.state == "eager" and text != self.transcript:
            out.append(self._turn_info("TurnResumed"))  # the final is not the eager text
            self.state = "open"
        if self.state == "idle":
            out += self._heard(text, event.words, event.start_ms)
        self.transcript, self.words = text, event.words
        self.audio_s = max(self.audio_s, event.end_ms / 1000)
        out.append(self._turn_info("EndOfTurn", self.thresholds.eot_threshold))
        self.state = "idle"
        self.turn_index += 1
        self.transcript, self.words = "", []
        return out

    def _turn_info(self, event: str, confidence: float = 0.0) -> dict:
        return self.message(
            {
                "type": "TurnInfo",
                "request_id": self.request_id,
                "event": event,
                "turn_index": self.turn_index,
                "audio_window_start": round(self.start_s, 3),
                "audio_window_end": round(max(self.audio_s, self.start_s), 3),
                "transcript": self.transcript,
                "words": [
                    {
                        "word": w.word,
                        "confidence": w.confidence,
                        "start": w.start_ms / 1000,
                        "end": w.end_ms / 1000,
                    }
                    for w in self.words
                ],
                "end_of_turn_confidence": confidence,
            }
        )

    def message(self, body: dict) -> dict:
        body["sequence_id"] = self.sequence_id
        self.sequence_id += 1
        return body
