"""What a speculative final offers to commit, and when a partial confirms it."""

from asr_core.streaming.commit import Commit, agrees, candidate, without_copies
from asr_core.streaming.events import WordTiming
from asr_core.transcribe import WindowResult
from asr_core.transcript import Segment, Word

SR = 16_000


def decoded(words: list[tuple[str, float, float, float]], **segment) -> WindowResult:
    text = "".join(w for w, _, _, _ in words)
    fields = {"avg_logprob": -0.3, "temperature": 0.0, **segment}
    timed = [Word(start, end, word, p) for word, start, end, p in words]
    return WindowResult([Segment(words[0][1], words[-1][2], text, timed, **fields)], "en", 1.0)


SPOKEN = [(" Please", 0.6, 0.9, 0.9), (" send", 0.9, 1.2, 0.95), (" the invoice,", 1.3, 3.9, 0.8)]


def test_a_sure_decode_up_to_a_pause_is_offered_with_stream_times():
    offered = candidate(decoded(SPOKEN), 2 * SR, None, 6 * SR, 2 * SR + 8000, 3.0)
    assert offered is not None
    assert offered.cut == 6 * SR + 800  # 50 ms into the pause
    assert offered.text == "Please send the invoice,"
    assert offered.words[0] == WordTiming("Please", 2600, 2900, 0.9)
    assert offered.language == "en"


def test_a_commit_grows_from_the_one_it_was_decoded_after():
    base = Commit(4 * SR, "Hello there,", (WordTiming("Hello", 100, 400, 0.9),), "en")
    offered = candidate(decoded(SPOKEN), base.cut, base, 8 * SR, 0, 3.0)
    assert offered.text == "Hello there, Please send the invoice,"
    assert [w.word for w in offered.words] == ["Hello", "Please", "send", "the invoice,"]
    assert offered.words[1].start_ms == 4600


def test_unsure_decodes_are_not_offered():
    pause = 6 * SR
    too_short = candidate(decoded(SPOKEN), 2 * SR, None, pause, pause - 2 * SR, 3.0)
    fallback = candidate(decoded(SPOKEN, temperature=0.4), 2 * SR, None, pause, 0, 3.0)
    unlikely = candidate(decoded(SPOKEN, avg_logprob=-0.95), 2 * SR, None, pause, 0, 3.0)
    weak_last = [*SPOKEN[:2], (" the invoice,", 1.3, 3.9, 0.2)]
    into_pause = [*SPOKEN[:2], (" the invoice,", 1.3, 4.3, 0.9)]
    assert too_short is fallback is unlikely is None
    assert candidate(decoded(weak_last), 2 * SR, None, pause, 0, 3.0) is None
    assert candidate(decoded(into_pause), 2 * SR, None, pause, 0, 3.0) is None


def test_a_partial_must_read_every_committed_word_first():
    offered = Commit(SR, "Please send the invoice,", (), "en")
    assert agrees(offered, "please send the invoice and call me", "en")
    assert not agrees(offered, "Please sent the invoice and call me", "en")
    assert not agrees(offered, "Please send the", "en")
    assert agrees(Commit(SR, "请把发票寄给我们,", (), "zh"), "請把發票寄給我們然後", "zh")


def tail_of(texts: list[str], language: str) -> WindowResult:
    return WindowResult([Segment(0.0, 1.0, t, None) for t in texts], language, 1.0)


def test_a_tail_segment_that_only_repeats_committed_words_is_dropped():
    commit = Commit(SR, "A very few years saw the birth of Roman character.", (), "en")
    spoken = " Not only in Italy, but in Germany and France."
    tail = tail_of([spoken, " A very few years saw the birth of Roman character."], "en")
    assert [s.text for s in without_copies(tail, commit).segments] == [spoken]


def test_a_mandarin_copy_is_dropped_from_six_characters():
    commit = Commit(SR, "请把发票寄给我们的办公室。", (), "zh")
    assert without_copies(tail_of(["发票寄给我们"], "zh"), commit).segments == []


def test_new_words_and_short_repeats_are_kept():
    """Speech that reuses a few committed words, or says one or two again, is no copy."""
    english = Commit(SR, "Please send the invoice to our office.", (), "en")
    mandarin = Commit(SR, "请把发票寄给我们的办公室。", (), "zh")
    for texts, commit in [
        ([" Send the invoice today."], english),  # new words around committed ones
        ([" The invoice."], english),  # two words said again
        (["寄给我们的"], mandarin),  # five characters: too short to call a copy
        (["发票寄给你们"], mandarin),  # not word for word
    ]:
        tail = tail_of(texts, commit.language)
        assert without_copies(tail, commit) is tail
