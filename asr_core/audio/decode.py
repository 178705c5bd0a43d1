"""Decode audio files, bytes and raw telephony payloads to 16 kHz mono float32.

Containers and codecs go through PyAV, which bundles its own FFmpeg libraries, so no system
ffmpeg is needed. Long recordings are decoded as a stream of blocks so memory stays bounded
whatever the length. Raw PCM16 and G.711 have no header, so their rate must be declared.
"""

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import av
import numpy as np

from asr_core import SAMPLE_RATE
from asr_core.audio.g711 import alaw_to_pcm16, mulaw_to_pcm16
from asr_core.audio.resample import downmix, pcm16_to_float, resample
from asr_core.errors import AudioDecodeError

logger = logging.getLogger(__name__)

AudioSource = str | os.PathLike | bytes | BinaryIO
RawEncoding = Literal["pcm_s16le", "mulaw", "alaw"]
RAW_ENCODINGS: tuple[str, ...] = ("pcm_s16le", "mulaw", "alaw")
_MAX_CORRUPT_PACKETS = 50


@dataclass(frozen=True)
class RawFormat:
    """A headerless payload: its encoding, rate and channel count must be declared."""

    encoding: RawEncoding
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in RAW_ENCODINGS:
            raise AudioDecodeError(
                f"unknown raw encoding {self.encoding!r}; "
                f"expected one of {', '.join(RAW_ENCODINGS)}"
            )
        if not 4000 <= self.sample_rate <= 192_000:
            raise AudioDecodeError(f"sample rate {self.sample_rate} Hz is outside 4000-192000 Hz")
        if not 1 <= self.channels <= 8:
            raise AudioDecodeError(f"{self.channels} channels is outside 1-8")

    @classmethod
    def parse(cls, spec: str) -> "RawFormat":
        """Parse `ENCODING:RATE[:CHANNELS]`, e.g. `mulaw:8000` or `pcm_s16le:48000:2`."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts[1:]):
            raise AudioDecodeError(
                f"raw format {spec!r} must look like ENCODING:RATE[:CHANNELS], e.g. mulaw:8000"
            )
        return cls(parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 1)  # type: ignore[arg-type]


RAW_EXTENSIONS = {
    ".ul": RawFormat("mulaw", 8000),
    ".ulaw": RawFormat("mulaw", 8000),
    ".mulaw": RawFormat("mulaw", 8000),
    ".al": RawFormat("alaw", 8000),
    ".alaw": RawFormat("alaw", 8000),
}


def decode_raw(data: bytes, raw: RawFormat) -> np.ndarray:
    """Decode a headerless PCM16 / μ-law / A-law payload to 16 kHz mono float32."""
    if raw.encoding == "pcm_s16le":
        frame_bytes = 2 * raw.channels
        if len(data) % frame_bytes:
            raise AudioDecodeError(
                f"PCM16 payload of {len(data)} bytes is not a whole number of "
                f"{raw.channels}-channel frames ({frame_bytes} bytes each)"
            )
        samples = np.frombuffer(data, dtype="<i2")
    elif raw.encoding == "mulaw":
        samples = mulaw_to_pcm16(data)
    else:
        samples = alaw_to_pcm16(data)
    mono = downmix(pcm16_to_float(samples), raw.channels)
    return resample(mono, raw.sample_rate)


def decode_audio(source: AudioSource, raw: RawFormat | None = None) -> np.ndarray:
    """Decode a whole input to one 16 kHz mono float32 array (empty audio -> empty array)."""
    blocks = list(iter_audio(source, raw=raw))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def iter_audio(
    source: AudioSource, raw: RawFormat | None = None, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Yield 16 kHz mono float32 blocks of about `block_seconds` each, in order.

    Raises AudioDecodeError before the first block when the input is not audio. A stream that
    breaks after some audio was decoded ends early with a warning, keeping what was read.
    """
    if raw is None and isinstance(source, str | os.PathLike):
        raw = RAW_EXTENSIONS.get(Path(source).suffix.lower())
    if raw is not None:
        yield from _iter_raw(_read_bytes(source), raw, block_seconds)
        return
    yield from _iter_container(source, block_seconds)


def probe_duration(source: AudioSource) -> float | None:
    """Duration in seconds from the container header, or None when it does not say."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if container.duration:
                return container.duration / av.time_base
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
    return None


def _read_bytes(source: AudioSource) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | os.PathLike):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise AudioDecodeError(f"cannot read {source}: {exc.strerror or exc}") from exc
    return source.read()


def _iter_raw(data: bytes, raw: RawFormat, block_seconds: float) -> Iterator[np.ndarray]:
    bytes_per_frame = (2 if raw.encoding == "pcm_s16le" else 1) * raw.channels
    block_bytes = max(1, int(block_seconds * raw.sample_rate)) * bytes_per_frame
    if raw.encoding == "pcm_s16le" and len(data) % bytes_per_frame:
        decode_raw(data, raw)  # raises the descriptive error
    for offset in range(0, len(data), block_bytes):
        yield decode_raw(data[offset : offset + block_bytes], raw)


def _open_container(source: AudioSource) -> av.container.InputContainer:
    if isinstance(source, bytes):
        if not source:
            raise AudioDecodeError("the input is empty (0 bytes)")
        source = io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise AudioDecodeError(f"no such file: {path}")
        if path.stat().st_size == 0:
            raise AudioDecodeError(f"{path} is empty (0 bytes)")
        source = str(path)
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise AudioDecodeError(f"not a readable audio file: {_reason(exc)}") from exc


def _iter_container(source: AudioSource, block_seconds: float) -> Iterator[np.ndarray]:
    container = _open_container(source)
    with container:
        if not container.streams.audio:
            raise AudioDecodeError("the file has no audio stream")
        stream = container.streams.audio[0]
        block_samples = int(block_seconds * SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_samples = 0
        decoded_any = False
        for chunk in _decode_stream(container, stream):
            decoded_any = decoded_any or len(chunk) > 0
            pending.append(chunk)
            pending_samples += len(chunk)
            if pending_samples >= block_samples:
                yield np.concatenate(pending)
                pending, pending_samples = [], 0
        if pending_samples:
            yield np.concatenate(pending)
        elif not decoded_any:
            logger.info("audio stream decoded to 0 samples")


def _decode_stream(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[np.ndarray]:
    """Demux, decode, resample to 16 kHz (keeping channels) and downmix by averaging."""
    resampler: av.AudioResampler | None = None
    channels = 1
    corrupt = 0
    seconds = 0.0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            if seconds == 0.0:
                raise AudioDecodeError(f"cannot read audio data: {_reason(exc)}") from exc
            logger.warning("audio stream ends early at %.1f s: %s", seconds, _reason(exc))
            break
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            corrupt += 1
            if corrupt > _MAX_CORRUPT_PACKETS and seconds == 0.0:
                raise AudioDecodeError(f"audio data is corrupt: {_reason(exc)}") from exc
            continue
        for frame in frames:
            if resampler is None:
                channels = len(frame.layout.channels)
                resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=SAMPLE_RATE)
            for out in resampler.resample(frame):
                chunk = downmix(out.to_ndarray().reshape(-1), channels)
                seconds += len(chunk) / SAMPLE_RATE
                yield chunk
    if resampler is not None:
        for out in resampler.resample(None):
            yield downmix(out.to_ndarray().reshape(-1), channels)
    if corrupt:
        logger.warning("skipped %d corrupt audio packets", corrupt)
    if seconds == 0.0 and corrupt:
        raise AudioDecodeError(f"audio data is corrupt: {corrupt} packets failed to decode")


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '", 1)[0].strip() or exc.__class__.__name__
