import numpy as np
import pytest
from faster_whisper.vad import VadOptions as BatchVadOptions
from faster_whisper.vad import get_speech_timestamps

from asr_core.vad import SileroVad, SpeechSegmenter, VadOptions, segment_speech
from tests.helpers import espeak_audio

SR = 16_000


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return espeak_audio(
        "Speech detection splits long recordings at the pauses between sentences.",
        tmp_path_factory.mktemp("vad"),
    )


def with_gaps(speech: np.ndarray, gaps_s: list[float]) -> np.ndarray:
    pieces = []
    for gap in gaps_s:
        pieces += [speech, np.zeros(int(gap * SR), dtype=np.float32)]
    return np.concatenate(pieces)


def test_streaming_probabilities_equal_one_shot(speech):
    audio = with_gaps(speech, [1.0, 2.0])
    one_shot = SileroVad()(audio)
    vad = SileroVad()
    streamed = np.concatenate([vad(audio[i : i + 1234]) for i in range(0, len(audio), 1234)])
    np.testing.assert_allclose(streamed, one_shot[: len(streamed)], atol=1e-6)


@pytest.mark.parametrize("block", [480, 16_000, 10**7])
def test_regions_match_faster_whisper_whatever_the_block_size(speech, block):
    audio = with_gaps(speech, [3.0, 0.3, 2.5, 0.0])
    options = VadOptions(min_silence_ms=1000, speech_pad_ms=400, min_speech_ms=250)
    blocks = (audio[i : i + block] for i in range(0, len(audio), block))
    ours = [(r.start, r.end) for r in segment_speech(blocks, options)]
    batch_options = BatchVadOptions(
        min_silence_duration_ms=1000, speech_pad_ms=400, min_speech_duration_ms=250
    )
    batch = get_speech_timestamps(audio, batch_options)
    assert ours == [(s["start"], s["end"]) for s in batch]
    assert len(ours) >= 2


def test_region_audio_is_the_source_audio(speech):
    audio = with_gaps(speech, [2.0, 2.0])
    for region in segment_speech([audio]):
        np.testing.assert_array_equal(region.audio, audio[region.start : region.end])


def test_silence_and_hum_have_no_speech():
    hum = 0.3 * np.sin(2 * np.pi * 50 * np.arange(10 * SR) / SR).astype(np.float32)
    assert list(segment_speech([np.zeros(10 * SR, dtype=np.float32)])) == []
    assert list(segment_speech([hum])) == []


def test_memory_stays_bounded_on_a_long_stream(speech):
    """Ten minutes pushed in 1 s blocks: held audio never exceeds one region plus padding."""
    options = VadOptions(max_speech_s=28.0)
    segmenter = SpeechSegmenter(options)
    unit = with_gaps(speech, [1.5])
    stream = np.tile(unit, int(600 * SR / len(unit)) + 1)
    most = 0
    regions = 0
    for i in range(0, len(stream), SR):
        regions += len(segmenter.push(stream[i : i + SR]))
        most = max(most, segmenter.buffered_samples)
    regions += len(segmenter.flush())
    assert regions > 50
    assert most <= (options.max_speech_s + 2 * options.speech_pad_ms / 1000 + 2) * SR


def test_continuous_speech_is_split_at_the_maximum_length(speech):
    continuous = np.tile(speech, int(70 * SR / len(speech)) + 1)
    regions = list(segment_speech([continuous], VadOptions(max_speech_s=20.0)))
    assert len(regions) >= 3
    assert all(r.end - r.start <= 20 * SR for r in regions)
