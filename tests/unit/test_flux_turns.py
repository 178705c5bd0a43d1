"""Flux turns from recognizer events (`service.deepgram.turns`): the state machine's rules
hold whatever order the recognizer's events come in."""

import pytest

from asr_core.streaming import EagerFinal, Final, Partial, SpeechStarted, TurnResumed, WordTiming
from service.deepgram.turns import Thresholds, Turns, flux_endpointing

WORDS = [WordTiming("Hello", 100, 400, 0.9), WordTiming("there.", 400, 700, 0.8)]


def partial(text: str) -> Partial:
    return Partial(0, text, text, "", 100, 500, "en")


def eager(text: str) -> EagerFinal:
    return EagerFinal(0, text, 100, 700, "en", WORDS)


def final(text: str) -> Final:
    return Final(0, text, 100, 700, "en", WORDS)


def events(turns: Turns, *inputs) -> list[str]:
    out = []
    for item in inputs:
        messages = turns.on_audio(item) if isinstance(item, float) else turns.on_event(item)
        out += [m["event"] for m in messages]
    return out


def test_eager_then_end_of_turn_repeats_the_eager_transcript():
    turns = Turns("r", Thresholds(eager_eot_threshold=0.5))
    got = []
    for item in (SpeechStarted(0, 100), partial("Hello"), 0.3, 0.6, eager("Hello there.")):
        got += turns.on_audio(item) if isinstance(item, float) else turns.on_event(item)
    got += turns.on_event(final("Hello there."))
    assert [m["event"] for m in got] == [
        "StartOfTurn",
        "Update",
        "Update",
        "EagerEndOfTurn",
        "EndOfTurn",
    ]
    assert got[-1]["transcript"] == got[-2]["transcript"] == "Hello there."
    assert got[-1]["words"][0] == {"word": "Hello", "confidence": 0.9, "start": 0.1, "end": 0.4}
    assert [m["sequence_id"] for m in got] == [0, 1, 2, 3, 4]
    assert turns.turn_index == 1 and turns.state == "idle"


def test_turn_resumed_voids_the_eager_transcript():
    turns = Turns("r", Thresholds(eager_eot_threshold=0.5))
    assert events(
        turns, partial("Hello"), eager("Hello."), 0.5, TurnResumed(0), partial("Hello there")
    ) == ["StartOfTurn", "EagerEndOfTurn", "TurnResumed"]
    assert events(turns, final("Hello there.")) == ["EndOfTurn"]


def test_a_final_unlike_the_eager_text_resumes_the_turn_first():
    turns = Turns("r", Thresholds(eager_eot_threshold=0.5))
    events(turns, eager("Hello."))
    assert events(turns, final("Hello there.")) == ["TurnResumed", "EndOfTurn"]


def test_no_eager_events_without_eager_mode_and_no_turn_without_words():
    turns = Turns("r")
    assert events(turns, SpeechStarted(0, 0), partial(""), final("")) == []
    assert events(turns, eager("Hello."), final("Hello.")) == ["StartOfTurn", "EndOfTurn"]


@pytest.mark.parametrize(
    ("thresholds", "silence", "speculate"),
    [
        (Thresholds(), 500, 100),
        (Thresholds(0.5, 0.3), 300, 100),
        (Thresholds(0.9, 0.9), 700, 250),
        (Thresholds(0.9, None, 500), 500, 100),
        (Thresholds(0.5, 0.9), 300, 250),
    ],
)
def test_thresholds_map_onto_the_silence_policy(thresholds, silence, speculate):
    assert flux_endpointing(thresholds) == (silence, speculate)
