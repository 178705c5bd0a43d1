"""Word times of FunAudio finals from the CTC path: runs of a unit, characters over several
byte pieces, the LLM's words matched to what CTC spelled, and the gaps where it did not."""

import pytest

from asr_core.engines.funaudio.timing import Spike, align_words, spikes, timed_chars

BLANK = 9
FRAME = 0.06
PIECES = {
    1: "你".encode()[:2],  # a CJK character over two byte pieces
    2: "你".encode()[2:],
    3: "好".encode(),
    4: b" world",
    5: "十".encode(),
}


def test_runs_of_one_unit_with_their_mean_posterior():
    best = [BLANK, 3, 3, BLANK, BLANK, 4, BLANK]
    posterior = [0.9, 0.8, 0.6, 0.9, 0.9, 0.5, 0.9]
    assert spikes(best, posterior, BLANK, FRAME) == [
        Spike(3, pytest.approx(0.06), pytest.approx(0.18), pytest.approx(0.7)),
        Spike(4, pytest.approx(0.30), pytest.approx(0.36), pytest.approx(0.5)),
    ]


def path_chars(best: list[int]) -> list:
    return timed_chars(spikes(best, [1.0] * len(best), BLANK, FRAME), PIECES)


def test_a_character_spans_the_pieces_that_spell_it():
    chars = path_chars([1, BLANK, 2, BLANK, 3, 3, BLANK, 4])
    assert [c.char for c in chars] == ["你", "好", " ", "w", "o", "r", "l", "d"]
    you, good = chars[0], chars[1]
    assert (you.start, you.end) == pytest.approx((0.0, 0.18))
    assert (good.start, good.end) == pytest.approx((0.24, 0.36))
    assert chars[2].start == pytest.approx(0.42) and chars[-1].end == pytest.approx(0.48)
    assert [c.end for c in chars[2:-1]] == pytest.approx([c.start for c in chars[3:]])


def test_words_are_timed_by_the_characters_they_match():
    chars = path_chars([1, 2, BLANK, BLANK, 3, BLANK, 4, 4, BLANK, BLANK])
    words = align_words("你好, World!", chars, duration=0.6)
    assert "".join(w.word for w in words) == "你好, World!"
    assert [w.word for w in words] == ["你", "好,", " World!"]
    # " world" is 6 characters over 0.12 s: "w" starts a sixth of it after the run's start
    assert [(w.start, w.end) for w in words] == [(0.0, 0.12), (0.24, 0.3), (0.38, 0.48)]
    assert all(w.probability == 1.0 for w in words)


def test_words_ctc_did_not_spell_share_the_gap_with_no_confidence():
    """ITN wrote "10" where CTC heard 十; "hello" was never heard: both get the time between
    their matched neighbours, in order, with probability 0."""
    chars = path_chars([1, 2, BLANK, BLANK, BLANK, BLANK, 5, BLANK, BLANK, 3])
    words = align_words("你 10 hello 好", chars, duration=0.6)
    assert [w.word.strip() for w in words] == ["你", "10", "hello", "好"]
    assert [w.probability for w in words] == [1.0, 0.0, 0.0, 1.0]
    assert words[1].start == pytest.approx(0.12) and words[2].end == pytest.approx(0.54)
    assert words[1].end == pytest.approx(words[2].start)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in words)


def test_without_a_ctc_path_words_spread_over_the_audio():
    words = align_words("a b", [], duration=1.0)
    assert [(w.word, w.start, w.end, w.probability) for w in words] == [
        ("a", 0.0, 0.5, 0.0),
        (" b", 0.5, 1.0, 0.0),
    ]
