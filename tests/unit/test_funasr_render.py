"""FunASR replies from recognizer events: what a FunASR client's running line shows."""

from asr_core.streaming import Final, Partial
from service.live import Owned
from service.routes.funasr import _continuation, _File, _Renderer


def partial(text: str, stable: str = "", segment: int = 0) -> Partial:
    unstable = text[len(stable) :] if text.startswith(stable) else ""
    return Partial(segment, text, stable, unstable.strip(), 0, 1000, "en")


def final(text: str, segment: int = 0) -> Final:
    return Final(segment, text, 0, 1000, "en")


def session(mode: str, events) -> list[dict]:
    renderer = _Renderer()
    file = _File("clip", mode, False, 16000, hotwords=None)
    renderer.file = file
    return [m for m in (renderer.render(Owned(file, e)) for e in events) if m is not None]


def running_line(messages: list[dict]) -> str:
    """What a FunASR client shows: online texts appended, each offline text committing the
    line (its own text in 2pass, the line so far in online mode)."""
    committed, line = "", ""
    for message in messages:
        if message["mode"] == "2pass-offline":
            committed, line = committed + message["text"], ""
        else:
            line += message["text"]
    return committed + line


def test_2pass_sends_a_partials_whole_text_at_once():
    messages = session("2pass", [partial("Please call")])
    assert messages == [
        {"mode": "2pass-online", "text": "Please call", "wav_name": "clip", "is_final": False}
    ]


def test_2pass_line_only_grows_and_the_offline_text_replaces_it():
    events = [
        partial("Please call me to borrow"),
        partial("Please call me tomorrow morning about", "Please call me"),
        final("Please call me tomorrow morning about the order."),
        partial("Thanks", segment=1),
    ]
    messages = session("2pass", events)
    online = [m["text"] for m in messages if m["mode"] == "2pass-online"]
    assert online == ["Please call me to borrow", " about", " Thanks"]
    assert running_line(messages) == "Please call me tomorrow morning about the order. Thanks"


def test_online_mode_sends_stable_text_and_the_final_fills_in_the_rest():
    events = [
        partial("Please call me to borrow", "Please call"),
        partial("Please call me tomorrow morning about", "Please call me tomorrow"),
        final("Please call me tomorrow morning about the order."),
    ]
    messages = session("online", events)
    assert [m["mode"] for m in messages] == ["online"] * 3
    assert "".join(m["text"] for m in messages) == (
        "Please call me tomorrow morning about the order."
    )


def test_online_mode_keeps_the_final_words_when_the_sent_text_was_revised():
    messages = session("online", [partial("I want a refund", "I want a"), final("I won a refund.")])
    assert "".join(m["text"] for m in messages) == "I want a refund."


def test_continuation_aligns_chinese_by_character():
    assert _continuation("今天天气", "今天天汽很好", "") == "很好"
    assert _continuation("", "你好", "Hi.") == "你好"
    assert _continuation("", "Hello", "你好。") == "Hello"
    assert _continuation("", "Hello", "Hi.") == " Hello"


def test_continuation_goes_on_inside_a_word():
    assert _continuation("Please call me tom", "Please call me tomorrow", "") == "orrow"
    assert _continuation("Please call me, tomorrow", "Please call me tomorrow.", "") == ""


def test_a_files_events_render_as_its_own_after_it_ended_or_another_began():
    """The outbox renders when it sends: the first file's last final may go out after its
    end was handled and the next file's config arrived."""
    renderer = _Renderer()
    first = _File("first", "2pass", False, 16000, hotwords=None)
    renderer.file = _File("second", "2pass", False, 16000, hotwords=None)
    message = renderer.render(Owned(first, final("Please call me.")))
    assert message["mode"] == "2pass-offline"
    assert (message["wav_name"], message["text"]) == ("first", "Please call me.")
    assert renderer.render(final("No owner.")) is None
