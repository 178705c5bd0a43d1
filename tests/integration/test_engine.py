"""The bundled Whisper base model on real (synthetic) speech, silence and noise."""

import numpy as np
import pytest

from asr_core.audio import RawFormat, decode_audio
from asr_core.audio.g711 import pcm16_to_mulaw
from asr_core.audio.resample import resample
from asr_core.chinese import to_simplified, to_traditional
from asr_core.engines import DecodeOptions
from asr_core.transcribe import TranscribeOptions
from tests.conftest import ENGLISH_WORDS, MANDARIN_WORDS
from tests.helpers import espeak_wav, to_int16, wav_bytes

SR = 16_000


def test_english_sentence(transcriber, english_wav):
    text = transcriber.transcribe(english_wav, TranscribeOptions(language="en")).text.lower()
    for word in ENGLISH_WORDS:
        assert word in text


def test_english_is_detected_among_allowed_languages(transcriber, english_wav):
    transcript = transcriber.transcribe(english_wav)
    assert transcript.language == "en"
    assert "fox" in transcript.text.lower()


def test_mandarin_sentence(transcriber, mandarin_wav):
    transcript = transcriber.transcribe(mandarin_wav, TranscribeOptions(language="zh"))
    for word in MANDARIN_WORDS:
        assert word in transcript.text
    assert transcript.language == "zh"


def test_telephone_mulaw_8k_english(transcriber, speech_dir):
    """Speech squeezed through G.711 μ-law at 8 kHz, as a phone line carries it."""
    sentence = "Hello, I would like to check my account balance and pay my bill today."
    wideband = decode_audio(espeak_wav(sentence, speech_dir / "telephone.wav"))
    payload = pcm16_to_mulaw(to_int16(resample(wideband, SR, 8000)))
    transcript = transcriber.transcribe(
        payload, TranscribeOptions(language="en"), raw=RawFormat("mulaw", 8000)
    )
    text = transcript.text.lower()
    for word in ["hello", "check", "account", "balance", "bill", "today"]:
        assert word in text
    assert transcript.duration == pytest.approx(len(wideband) / SR, abs=0.01)


@pytest.mark.parametrize("language", [None, "en", "zh"])
def test_ten_seconds_of_silence_is_empty(transcriber, language):
    silence = wav_bytes(np.zeros(10 * SR, dtype=np.float32), SR)
    assert transcriber.transcribe(silence, TranscribeOptions(language=language)).text == ""


@pytest.mark.parametrize("language", [None, "en", "zh"])
@pytest.mark.parametrize("level", [0.05, 0.3])
def test_ten_seconds_of_white_noise_is_empty(transcriber, language, level):
    noise = np.random.default_rng(7).normal(0, level, 10 * SR).astype(np.float32)
    transcript = transcriber.transcribe(wav_bytes(noise, SR), TranscribeOptions(language=language))
    assert transcript.text == ""


def test_one_encoding_serves_several_decodes(engine, english_wav):
    audio = decode_audio(english_wav)
    encoded = engine.encode(audio)
    greedy = engine.decode(encoded, DecodeOptions(language="en", beam_size=1))
    beam = engine.decode(encoded, DecodeOptions(language="en", beam_size=5))
    prompted = engine.decode(
        encoded, DecodeOptions(language="en", prompt="Notes on foxes and dogs.", hotwords=("fox",))
    )
    again = engine.decode(encoded, DecodeOptions(language="en", beam_size=5))
    assert [s.text for s in again] == [s.text for s in beam]
    for segments in (greedy, beam, prompted):
        assert "fox" in " ".join(s.text for s in segments).lower()


def test_decode_does_not_rerun_the_encoder(engine, english_wav, monkeypatch):
    encoded = engine.encode(decode_audio(english_wav))
    calls = []
    original = engine._model.encode
    monkeypatch.setattr(engine._model, "encode", lambda f: calls.append(1) or original(f))
    engine.decode(encoded, DecodeOptions(language="en", beam_size=1))
    engine.decode(encoded, DecodeOptions(language="en", hotwords=("fox",)))
    assert calls == []


def test_language_detection_respects_the_allowed_set(engine, english_wav):
    encoded = engine.encode(decode_audio(english_wav))
    assert engine.detect_language(encoded, ["en", "zh"])[0] == "en"
    assert engine.detect_language(encoded, ["zh"]) == ("zh", 1.0)


def test_word_timestamps_are_ordered_and_inside_the_audio(transcriber, english_wav):
    transcript = transcriber.transcribe(
        english_wav, TranscribeOptions(language="en", word_timestamps=True)
    )
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 10
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= transcript.duration + 0.05 for w in words)


def test_timestamps_survive_removed_silence(transcriber, english_wav):
    speech = decode_audio(english_wav)
    gap = np.zeros(8 * SR, dtype=np.float32)
    audio = np.concatenate([gap, speech, gap, speech])
    transcript = transcriber.transcribe(wav_bytes(audio, SR), TranscribeOptions(language="en"))
    first = len(gap) / SR
    second = (2 * len(gap) + len(speech)) / SR
    assert transcript.segments[0].start == pytest.approx(first, abs=0.6)
    later = [s for s in transcript.segments if s.start >= second - 0.6]
    assert later and later[0].start == pytest.approx(second, abs=0.6)
    assert transcript.duration == pytest.approx(len(audio) / SR, abs=0.01)


def test_mandarin_output_is_simplified_by_default(transcriber, testdata):
    path = testdata / "zh_funasr_asr_example.wav"
    simplified = transcriber.transcribe(path, TranscribeOptions(language="zh")).text
    traditional = transcriber.transcribe(
        path, TranscribeOptions(language="zh", chinese_script="traditional")
    ).text
    # The words themselves vary with the CPU's int8 kernels (语音/运营); the script does not.
    assert "识别" in simplified and simplified == to_simplified(simplified)
    assert "識別" in traditional and traditional == to_traditional(traditional)
    assert traditional != simplified


@pytest.mark.parametrize("level", [0.0, 1e-4])
def test_a_silent_window_decodes_to_nothing_every_time(engine, english_wav, level):
    """Whisper normalises its input, so it hears digital silence and faint hiss at any
    level: greedy, it wrote "I'm not going to let you know, ..." over 2 s of zeros, and
    with fallback it sampled at random. Silence gives no segments, alone and in a batch."""
    quiet = np.random.default_rng(3).uniform(-level, level, 2 * SR).astype(np.float32)
    greedy = DecodeOptions(language="en", word_timestamps=True, temperatures=(0.0,))
    assert engine.decode(engine.encode(quiet, min_window_s=15.0), greedy) == []
    english = decode_audio(english_wav)
    batch = engine.decode_batch(engine.encode_batch([quiet, english], 15.0), [greedy, greedy])
    assert batch[0] == [] and "fox" in batch[1][0].text.lower()
    # Quiet speech is still speech: the same sentence 46 dB down.
    faint = english * (0.005 / np.abs(english).max())
    assert "fox" in engine.decode(engine.encode(faint, min_window_s=15.0), greedy)[0].text.lower()


def test_a_batch_decodes_as_single_windows_do(engine, english_wav, mandarin_wav):
    """Windows of several streams decoded together give each what a decode alone gives:
    other languages, a prompt, silence, a longer window in the same batch."""
    english, mandarin = decode_audio(english_wav), decode_audio(mandarin_wav)
    audios = [english, mandarin, np.zeros(2 * SR, np.float32), english, np.tile(english, 3)]
    options = [
        DecodeOptions(language=None, word_timestamps=True),
        DecodeOptions(language="zh", word_timestamps=True),
        DecodeOptions(language="en", word_timestamps=True),
        DecodeOptions(language="en", prompt="The fox and the dog.", beam_size=2),
        # Thrice the same words compress well enough to fall back to sampling, which is
        # random: decoded without fallback to compare.
        DecodeOptions(language="en", word_timestamps=True, temperatures=(0.0,)),
    ]
    batch = engine.decode_batch(engine.encode_batch(audios, 15.0), options)
    for audio, option, batched in zip(audios, options, batch, strict=True):
        alone = engine.decode(engine.encode(audio, min_window_s=15.0), option)
        assert [(s.text, s.start, s.end) for s in batched] == [
            (s.text, s.start, s.end) for s in alone
        ]
        words = [[(w.word, w.start, w.end) for w in s.words or []] for s in batched]
        assert words == [[(w.word, w.start, w.end) for w in s.words or []] for s in alone]
    assert batch[2] == [] and "fox" in batch[0][0].text.lower()
