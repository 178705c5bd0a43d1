"""Multichannel audio: each interleaved channel decoded on its own (`multichannel=true`),
so every channel is a leg with its own recognizer."""

import numpy as np

from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder


class ChannelSplitter:
    """Splits interleaved frames into per-channel 16 kHz mono audio; a frame torn between
    two network messages is carried to the next."""

    def __init__(self, encoding: str, sample_rate: int, channels: int) -> None:
        self._width = 2 if encoding == "pcm_s16le" else 1
        self._channels = channels
        self._carry = b""
        self.decoders = [
            StreamDecoder(RawFormat(encoding, sample_rate, 1)) for _ in range(channels)
        ]

    def decode(self, data: bytes) -> list[np.ndarray]:
        data = self._carry + data
        frame = self._width * self._channels
        usable = len(data) - len(data) % frame
        self._carry = data[usable:]
        frames = np.frombuffer(data[:usable], dtype=np.uint8).reshape(
            -1, self._channels, self._width
        )
        return [
            decoder.decode(frames[:, index, :].tobytes())
            for index, decoder in enumerate(self.decoders)
        ]

    def flush(self) -> list[np.ndarray]:
        return [decoder.flush() for decoder in self.decoders]

    @property
    def input_seconds(self) -> float:
        return self.decoders[0].input_seconds
