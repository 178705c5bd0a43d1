"""Decode a live byte stream (PCM16, μ-law, A-law at a declared rate) chunk by chunk.

Network frames need not align with samples: a torn PCM16 sample or stereo frame is carried to
the next chunk, and the resampler keeps its filter state, so chunk boundaries leave no clicks.
"""

import numpy as np

from asr_core.audio.decode import RawFormat
from asr_core.audio.g711 import alaw_to_pcm16, mulaw_to_pcm16
from asr_core.audio.resample import StreamResampler, downmix, pcm16_to_float


class StreamDecoder:
    def __init__(self, raw: RawFormat) -> None:
        self.raw = raw
        self._frame_bytes = (2 if raw.encoding == "pcm_s16le" else 1) * raw.channels
        self._carry = b""
        self._resampler = StreamResampler(raw.sample_rate)
        self.input_seconds = 0.0

    def decode(self, data: bytes) -> np.ndarray:
        """16 kHz mono float32 for these bytes (possibly empty while the resampler fills)."""
        data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        payload = data[:usable]
        if self.raw.encoding == "pcm_s16le":
            samples = np.frombuffer(payload, dtype="<i2")
        elif self.raw.encoding == "mulaw":
            samples = mulaw_to_pcm16(payload)
        else:
            samples = alaw_to_pcm16(payload)
        mono = downmix(pcm16_to_float(samples), self.raw.channels)
        self.input_seconds += len(mono) / self.raw.sample_rate
        return self._resampler.process(mono)

    def flush(self) -> np.ndarray:
        """What the resampler still holds, at the end of the stream."""
        return self._resampler.process(np.zeros(0, dtype=np.float32), last=True)
