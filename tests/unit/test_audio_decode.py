import os

import numpy as np
import pytest

from asr_core.audio import RawFormat, decode_audio, decode_raw, iter_audio, probe_duration
from asr_core.audio.g711 import pcm16_to_alaw, pcm16_to_mulaw
from asr_core.errors import AudioDecodeError
from tests.helpers import dominant_frequency, encode, to_int16, tone, wav_bytes


def test_48k_stereo_becomes_16k_mono_average():
    left = tone(440, 2.0, 48_000, amplitude=0.6)
    right = tone(440, 2.0, 48_000, amplitude=0.2)
    audio = decode_audio(wav_bytes(np.stack([left, right], axis=1), 48_000, channels=2))
    assert audio.dtype == np.float32
    assert abs(len(audio) - 32_000) <= 16
    assert dominant_frequency(audio, 16_000) == pytest.approx(440, abs=2)
    # Downmix averages the channels: (0.6 + 0.2) / 2.
    assert np.abs(audio[1000:-1000]).max() == pytest.approx(0.4, abs=0.02)


def test_opposite_phase_stereo_cancels():
    left = tone(300, 1.0, 48_000)
    audio = decode_audio(wav_bytes(np.stack([left, -left], axis=1), 48_000, channels=2))
    assert np.abs(audio).max() < 0.01


def test_8k_is_upsampled_to_16k():
    audio = decode_audio(wav_bytes(tone(1000, 3.0, 8000), 8000))
    assert abs(len(audio) - 48_000) <= 16
    assert dominant_frequency(audio, 16_000) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize("codec", ["pcm_mulaw", "pcm_alaw"])
def test_g711_wav_decodes_close_to_source(codec):
    source = tone(700, 2.0, 8000, amplitude=0.5)
    audio = decode_audio(encode(source, 8000, codec, "wav"))
    reference = decode_audio(wav_bytes(source, 8000))
    assert len(audio) == len(reference)
    noise = audio - reference
    snr = 10 * np.log10(np.sum(reference**2) / np.sum(noise**2))
    assert snr > 30


@pytest.mark.parametrize(
    ("encoding", "encoder"), [("mulaw", pcm16_to_mulaw), ("alaw", pcm16_to_alaw)]
)
def test_raw_g711_with_declared_rate(encoding, encoder):
    payload = encoder(to_int16(tone(500, 1.0, 8000)))
    audio = decode_raw(payload, RawFormat(encoding, 8000))
    assert abs(len(audio) - 16_000) <= 16
    assert dominant_frequency(audio, 16_000) == pytest.approx(500, abs=2)


def test_raw_mulaw_file_extension_implies_8k(tmp_path):
    path = tmp_path / "call.ul"
    path.write_bytes(pcm16_to_mulaw(to_int16(tone(500, 1.0, 8000))))
    assert abs(len(decode_audio(path)) - 16_000) <= 16


def test_raw_pcm16_stereo_48k():
    stereo = np.stack([tone(440, 1.0, 48_000)] * 2, axis=1)
    audio = decode_raw(to_int16(stereo).tobytes(), RawFormat.parse("pcm_s16le:48000:2"))
    assert abs(len(audio) - 16_000) <= 16


def test_raw_pcm16_with_a_torn_frame_is_rejected():
    with pytest.raises(AudioDecodeError, match="not a whole number"):
        decode_raw(b"\x00\x01\x02", RawFormat("pcm_s16le", 16_000))


@pytest.mark.parametrize("spec", ["mulaw", "mulaw:fast", "gsm:8000", "mulaw:100", "mulaw:8000:9"])
def test_bad_raw_format_specs(spec):
    with pytest.raises(AudioDecodeError):
        RawFormat.parse(spec)


@pytest.mark.parametrize(
    ("codec", "container"),
    [("flac", "flac"), ("libmp3lame", "mp3"), ("libopus", "ogg"), ("aac", "mp4")],
)
def test_compressed_formats(codec, container):
    rate = 48_000 if codec == "libopus" else 16_000
    data = encode(tone(440, 2.0, 16_000), 16_000, codec, container, out_rate=rate)
    audio = decode_audio(data)
    assert abs(len(audio) / 16_000 - 2.0) < 0.15  # encoders add priming samples
    assert dominant_frequency(audio, 16_000) == pytest.approx(440, abs=3)


@pytest.mark.parametrize(
    "data",
    [
        b"this is a text file, not audio\n" * 20,
        os.urandom(4096),
        wav_bytes(tone(440, 1.0, 16_000), 16_000)[:30],  # header torn off mid-way
        b"",
    ],
    ids=["text", "random", "torn-header", "empty"],
)
def test_corrupt_inputs_raise_a_typed_error_with_a_reason(data):
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(data)
    assert error.value.reason
    assert error.value.code == "audio_decode_error"


def test_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="no such file"):
        decode_audio(tmp_path / "nope.wav")


def test_empty_audio_gives_an_empty_result():
    audio = decode_audio(wav_bytes(np.zeros(0, dtype=np.float32), 16_000))
    assert audio.dtype == np.float32
    assert len(audio) == 0


def test_truncated_audio_keeps_what_was_there():
    data = wav_bytes(tone(440, 4.0, 16_000), 16_000)
    audio = decode_audio(data[: len(data) // 2])
    assert abs(len(audio) / 16_000 - 2.0) < 0.05


def test_long_input_streams_in_bounded_blocks():
    data = wav_bytes(tone(440, 95.0, 16_000), 16_000)
    blocks = list(iter_audio(data, block_seconds=10.0))
    assert sum(len(b) for b in blocks) == 95 * 16_000
    assert max(len(b) for b in blocks) <= 11 * 16_000
    assert len(blocks) >= 9


def test_probe_duration(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(tone(440, 2.5, 8000), 8000))
    assert probe_duration(path) == pytest.approx(2.5, abs=0.01)
    assert probe_duration(b"garbage") is None
