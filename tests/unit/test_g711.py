import numpy as np
import pytest

from asr_core.audio.g711 import alaw_to_pcm16, mulaw_to_pcm16, pcm16_to_alaw, pcm16_to_mulaw

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_mulaw_reference_values():
    # ITU-T G.711: 0xFF and 0x7F are the two zeros, 0x00 / 0x80 the extremes.
    assert mulaw_to_pcm16(bytes([0xFF, 0x7F, 0x00, 0x80])).tolist() == [0, 0, -32124, 32124]


def test_alaw_reference_values():
    assert alaw_to_pcm16(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]


@pytest.mark.parametrize(
    ("encode", "decode"), [(pcm16_to_mulaw, mulaw_to_pcm16), (pcm16_to_alaw, alaw_to_pcm16)]
)
def test_every_level_survives_a_round_trip(encode, decode):
    codes = bytes(range(256))
    # Decoding is exact; encoding returns the same code (μ-law has two zeros, 0x7F and 0xFF).
    assert np.array_equal(decode(encode(decode(codes))), decode(codes))


@pytest.mark.parametrize(
    ("encode", "decode"), [(pcm16_to_mulaw, mulaw_to_pcm16), (pcm16_to_alaw, alaw_to_pcm16)]
)
def test_quantisation_error_is_within_a_step(encode, decode):
    decoded = decode(encode(ALL_SAMPLES)).astype(np.int32)
    error = np.abs(decoded - ALL_SAMPLES.astype(np.int32))
    # Companding steps grow with magnitude: at most 1/16 of the value plus the smallest step.
    assert np.all(error <= np.abs(ALL_SAMPLES.astype(np.int32)) / 16 + 16)


def test_matches_audioop_where_available():
    audioop = pytest.importorskip("audioop")
    samples = ALL_SAMPLES.tobytes()
    assert pcm16_to_mulaw(ALL_SAMPLES) == audioop.lin2ulaw(samples, 2)
    assert pcm16_to_alaw(ALL_SAMPLES) == audioop.lin2alaw(samples, 2)
    codes = bytes(range(256))
    assert mulaw_to_pcm16(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert alaw_to_pcm16(codes).tobytes() == audioop.alaw2lin(codes, 2)
