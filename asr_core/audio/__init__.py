"""Audio in: decode files, bytes and telephony payloads to 16 kHz mono float32."""

from asr_core.audio.decode import (
    RAW_ENCODINGS,
    AudioSource,
    RawFormat,
    decode_audio,
    decode_raw,
    iter_audio,
    probe_duration,
)
from asr_core.audio.resample import StreamResampler, downmix, float_to_pcm16, resample

__all__ = [
    "RAW_ENCODINGS",
    "AudioSource",
    "RawFormat",
    "StreamResampler",
    "decode_audio",
    "decode_raw",
    "downmix",
    "float_to_pcm16",
    "iter_audio",
    "probe_duration",
    "resample",
]
