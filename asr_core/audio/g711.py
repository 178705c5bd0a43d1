"""G.711 μ-law and A-law companding (ITU-T G.711), vectorised with 256-entry tables.

Telephony media (RTP PCMU/PCMA, Twilio media streams, μ-law WAV) carries 8-bit G.711 codes;
decoding through a table is exact and needs neither audioop (gone in Python 3.13) nor ffmpeg.
"""

import numpy as np

_MULAW_BIAS = 0x21  # on 14-bit magnitudes
_MULAW_CLIP = 8159
_MULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _mulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


MULAW_TO_PCM16 = _mulaw_decode_table()
ALAW_TO_PCM16 = _alaw_decode_table()


def mulaw_to_pcm16(codes: bytes | np.ndarray) -> np.ndarray:
    """Decode μ-law bytes to int16 samples."""
    return MULAW_TO_PCM16[np.frombuffer(codes, dtype=np.uint8)]


def alaw_to_pcm16(codes: bytes | np.ndarray) -> np.ndarray:
    """Decode A-law bytes to int16 samples."""
    return ALAW_TO_PCM16[np.frombuffer(codes, dtype=np.uint8)]


def pcm16_to_mulaw(samples: np.ndarray) -> bytes:
    """Encode int16 samples to μ-law bytes (what a SIP peer or Twilio sends)."""
    pcm = np.asarray(samples, dtype=np.int32) >> 2  # μ-law works on 14-bit values
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _MULAW_CLIP) + _MULAW_BIAS
    segment = np.searchsorted(_MULAW_SEGMENT_ENDS, magnitude)
    codes = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (codes ^ mask).astype(np.uint8).tobytes()


def pcm16_to_alaw(samples: np.ndarray) -> bytes:
    """Encode int16 samples to A-law bytes."""
    pcm = np.asarray(samples, dtype=np.int32) >> 3  # A-law works on 13-bit magnitudes
    sign = np.where(pcm >= 0, 0x80, 0x00)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    magnitude = np.minimum(magnitude, 0xFFF)
    exponent = np.where(
        magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4
    )
    exponent = np.clip(exponent, 0, 7)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8).tobytes()
