"""Live endpointing: where a caller's utterance starts and ends, as the audio arrives.

Silero VAD (ONNX, streaming) decides speech per 32 ms. A segment opens when speech starts
(padded a little before) and closes after `silence_ms` of silence (padded a little after), when
it reaches `max_segment_s` (cut at its quietest moment in the second half, so words are not
split), or when the client commits. The open segment's audio is always available for partials.
"""

from dataclasses import dataclass, replace

import numpy as np

from asr_core import SAMPLE_RATE
from asr_core.vad import WINDOW, SileroVad, silence_threshold


@dataclass
class EndpointOptions:
    threshold: float = 0.5
    neg_threshold: float | None = None
    """Below this a window is silence (default `threshold - 0.15`: hysteresis)."""
    silence_ms: int = 500
    pre_roll_ms: int = 500
    """Audio kept before the detected onset: Whisper reads speech better with a lead-in."""
    speech_pad_ms: int = 200
    """Audio kept after the detected end (the final waits for it, so it stays short)."""
    max_segment_s: float = 20.0
    min_speech_ms: int = 200
    """Shorter bursts (a click, a cough) close without being decoded."""


@dataclass
class ClosedSegment:
    """A finished stretch of speech; sample offsets count from the start of the stream."""

    start: int
    """Padded start (what is decoded)."""
    end: int
    """Padded end."""
    speech_start: int
    speech_end: int
    """End of the last speech window: the "end of speech" latencies count from."""
    audio: np.ndarray
    reason: str
    """`silence`, `max_length`, `commit` or `end`."""
    too_short: bool = False
    """Less speech than `min_speech_ms`: not worth decoding."""


class Endpointer:
    def __init__(self, options: EndpointOptions | None = None, vad: SileroVad | None = None):
        self.options = options or EndpointOptions()
        self._vad = vad or SileroVad()
        opts = self.options
        self._pad = SAMPLE_RATE * opts.speech_pad_ms // 1000
        self._pre_roll = SAMPLE_RATE * opts.pre_roll_ms // 1000
        self._silence = max(SAMPLE_RATE * opts.silence_ms // 1000, self._pad)
        self._max = int(SAMPLE_RATE * opts.max_segment_s)
        self._min_speech = SAMPLE_RATE * opts.min_speech_ms // 1000
        self._neg = silence_threshold(opts.threshold, opts.neg_threshold)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._position = 0  # stream samples the VAD has judged
        self._closed_until = 0  # end of the last closed segment
        self._reset_segment()

    def set_silence_ms(self, silence_ms: int) -> None:
        """Close segments after `silence_ms` of silence from now on (a client's new
        end-of-turn setting)."""
        self.options = replace(self.options, silence_ms=silence_ms)
        self._silence = max(SAMPLE_RATE * silence_ms // 1000, self._pad)

    def _reset_segment(self) -> None:
        self.in_speech = False
        self.segment_start = 0
        self.speech_start = 0
        self.speech_end = 0
        self._probabilities: list[float] = []  # per window since segment_start

    @property
    def received(self) -> int:
        """Stream samples received so far."""
        return self._buffer_start + len(self._buffer)

    @property
    def trailing_silence(self) -> int:
        """Samples of silence since the last speech, while a segment is open."""
        return self._position - self.speech_end if self.in_speech else 0

    def open_audio(self) -> np.ndarray:
        """The open segment's audio, from its padded start to the newest sample."""
        if not self.in_speech:
            return np.zeros(0, dtype=np.float32)
        return self._buffer[self.segment_start - self._buffer_start :]

    def push(self, audio: np.ndarray) -> list[ClosedSegment]:
        self._buffer = np.concatenate([self._buffer, np.asarray(audio, dtype=np.float32)])
        closed: list[ClosedSegment] = []
        for probability in self._vad(audio):
            segment = self._step(float(probability))
            if segment is not None:
                closed.append(segment)
            self._position += WINDOW
        self._trim()
        return closed

    def commit(self, reason: str = "commit") -> ClosedSegment | None:
        """Close the open segment now (client commit, or the end of the stream)."""
        if not self.in_speech:
            return None
        self.speech_end = max(self.speech_end, min(self.received, self._position))
        return self._close(self.received, reason)

    def _step(self, probability: float) -> ClosedSegment | None:
        window_start, window_end = self._position, self._position + WINDOW
        if not self.in_speech:
            if probability >= self.options.threshold:
                self.in_speech = True
                self.speech_start = window_start
                self.speech_end = window_end
                self.segment_start = max(
                    window_start - self._pre_roll, self._closed_until, self._buffer_start
                )
                self._probabilities = [probability]
            return None
        self._probabilities.append(probability)
        if probability >= self._neg:
            self.speech_end = window_end
        elif window_end - self.speech_end >= self._silence:
            return self._close(min(self.speech_end + self._pad, window_end), "silence")
        if window_end - self.segment_start >= self._max:
            return self._split()
        return None

    def _split(self) -> ClosedSegment:
        """Cut an over-long segment at the quietest window of its second half."""
        half = len(self._probabilities) // 2
        quietest = half + int(np.argmin(self._probabilities[half:]))
        cut = self.segment_start + quietest * WINDOW + WINDOW // 2
        cut = min(max(cut, self.segment_start + WINDOW), self._position)
        carried = self._probabilities[quietest:]
        speech_end = self.speech_end
        self.speech_end = min(self.speech_end, cut)
        segment = self._close(cut, "max_length")
        self.in_speech = True
        self.segment_start = self.speech_start = cut
        self.speech_end = max(speech_end, cut)
        self._probabilities = carried
        return segment

    def pending_close(self) -> tuple[int, int, np.ndarray] | None:
        """(start, speech end, audio) of the open segment as it will close if the silence now
        under way lasts: lets a final be prepared before the endpoint. The audio runs to the
        end padding, or to the newest sample while the padding is still arriving."""
        if not self.in_speech or self._position <= self.speech_end:
            return None
        start = self.segment_start
        end = min(self.speech_end + self._pad, self.received)
        audio = self._buffer[start - self._buffer_start : end - self._buffer_start]
        return start, self.speech_end, audio

    def _close(self, end: int, reason: str) -> ClosedSegment:
        start = self.segment_start
        too_short = (
            self.speech_end - self.speech_start < self._min_speech and reason != "max_length"
        )
        audio = self._buffer[start - self._buffer_start : end - self._buffer_start].copy()
        segment = ClosedSegment(
            start, end, self.speech_start, self.speech_end, audio, reason, too_short
        )
        self._closed_until = end
        self._reset_segment()
        return segment

    def _trim(self) -> None:
        """Keep the open segment, or just enough audio to pad the start of the next one."""
        keep_from = (
            self.segment_start if self.in_speech else self._position - self._pre_roll - WINDOW
        )
        drop = min(keep_from - self._buffer_start, len(self._buffer))
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
