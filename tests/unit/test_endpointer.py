import itertools

import numpy as np
import pytest

from asr_core.streaming import Endpointer, EndpointOptions
from tests.helpers import espeak_audio

SR = 16_000


@pytest.fixture(scope="module")
def sentence(tmp_path_factory):
    return espeak_audio(
        "Endpointing finds where each sentence ends.", tmp_path_factory.mktemp("ep")
    )


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def run(endpointer: Endpointer, audio: np.ndarray, chunk: int = 1600):
    closed = []
    for i in range(0, len(audio), chunk):
        closed += endpointer.push(audio[i : i + chunk])
    return closed


def test_sentences_separated_by_silence_close_one_by_one(sentence):
    audio = np.concatenate([silence(0.5), sentence, silence(1.0), sentence, silence(1.0)])
    closed = run(Endpointer(EndpointOptions(silence_ms=500)), audio)
    assert [c.reason for c in closed] == ["silence", "silence"]
    first, second = closed
    assert 0.2 * SR <= first.speech_start <= 0.8 * SR
    assert first.end <= second.start
    assert second.speech_start >= (0.5 + 1.0) * SR + len(sentence) - SR // 2
    for c in closed:
        assert c.start <= c.speech_start < c.speech_end <= c.end
        np.testing.assert_array_equal(c.audio, audio[c.start : c.end])


def test_short_pauses_inside_a_sentence_do_not_end_it(sentence):
    audio = np.concatenate([sentence, silence(0.25), sentence, silence(1.0)])
    assert len(run(Endpointer(EndpointOptions(silence_ms=500)), audio)) == 1


def test_open_segment_audio_is_available_for_partials(sentence):
    endpointer = Endpointer()
    run(endpointer, np.concatenate([silence(0.3), sentence[:SR]]))
    assert endpointer.in_speech
    assert 0.5 * SR < len(endpointer.open_audio()) <= 1.3 * SR


def test_commit_closes_the_open_segment(sentence):
    endpointer = Endpointer()
    run(endpointer, sentence[: 2 * SR])
    segment = endpointer.commit()
    assert segment.reason == "commit"
    assert not endpointer.in_speech
    assert endpointer.commit() is None


def test_long_speech_is_cut_at_the_maximum_length(sentence):
    speech = np.tile(np.concatenate([sentence, silence(0.15)]), 8)
    closed = run(
        Endpointer(EndpointOptions(max_segment_s=6.0)), np.concatenate([speech, silence(1)])
    )
    assert [c.reason for c in closed[:-1]] == ["max_length"] * (len(closed) - 1)
    assert all(len(c.audio) <= 6 * SR for c in closed)
    assert all(a.end == b.start for a, b in itertools.pairwise(closed))  # nothing lost


def test_a_click_is_too_short_to_decode(sentence):
    closed = run(
        Endpointer(EndpointOptions(min_speech_ms=2000)),
        np.concatenate([sentence[: SR // 2], silence(1.0)]),
    )
    assert [c.too_short for c in closed] == [True]


def test_pending_close_predicts_the_silence_close(sentence):
    endpointer = Endpointer(EndpointOptions(silence_ms=500, speech_pad_ms=200))
    run(endpointer, np.concatenate([sentence, silence(0.3)]))
    start, speech_end, audio = endpointer.pending_close()
    [closed] = run(endpointer, silence(0.5))
    assert (closed.start, closed.speech_end) == (start, speech_end)
    np.testing.assert_array_equal(closed.audio, audio)
    assert endpointer.pending_close() is None
