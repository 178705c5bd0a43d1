from asr_core.engines.guards import cut_repetition_loops, repetition_loop_cut
from asr_core.transcript import Segment, Word


def test_english_loop_is_cut_after_two_occurrences():
    text = "thank you " * 8 + "bye"
    assert text[: repetition_loop_cut(text)] == "thank you thank you"


def test_chinese_character_loop():
    assert "啊啊啊啊啊啊啊"[: repetition_loop_cut("啊啊啊啊啊啊啊")] == "啊啊"


def test_normal_speech_and_short_repeats_are_kept():
    for text in ["no no no I said no", "一二三四五六七八九十", "hello world. hello again."]:
        assert repetition_loop_cut(text) is None


def test_segment_words_follow_the_cut():
    words = [Word(i, i + 0.5, " la", 0.9) for i in range(10)]
    segment = Segment(0.0, 10.0, " la" * 10, words)
    cut_repetition_loops(segment)
    assert segment.text == " la la"
    assert len(segment.words) == 2
    assert segment.end == 1.5
