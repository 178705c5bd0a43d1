"""Sample-rate conversion and channel downmix to the 16 kHz mono float32 the engines take."""

import numpy as np
import soxr

from asr_core import SAMPLE_RATE


def pcm16_to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1)."""
    return np.asarray(samples, dtype=np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16, clipped rather than wrapped."""
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)


def downmix(interleaved: np.ndarray, channels: int) -> np.ndarray:
    """Average interleaved channels to mono (WebRTC gives 48 kHz stereo, files anything)."""
    if channels == 1:
        return interleaved
    frames = len(interleaved) // channels
    return interleaved[: frames * channels].reshape(frames, channels).mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a whole mono float32 signal (soxr, high quality)."""
    if from_rate == to_rate or len(audio) == 0:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


class StreamResampler:
    """Resample a stream chunk by chunk without clicks at the joins (keeps filter state)."""

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = (
            None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1, "float32")
        )

    def process(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if self._stream is None:
            return audio
        return self._stream.resample_chunk(audio, last=last)
