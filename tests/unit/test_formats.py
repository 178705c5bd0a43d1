import json

from asr_core.formats import render, to_json, to_verbose_json
from asr_core.transcript import Segment, Transcript, Word, join_text


def sample() -> Transcript:
    return Transcript(
        segments=[
            Segment(
                0.5,
                2.25,
                " Hello there.",
                [Word(0.5, 1.0, " Hello", 0.9), Word(1.1, 2.25, " there.", 0.8)],
                "en",
            ),
            Segment(3661.0, 3662.5, " Second line", None, "en"),
        ],
        duration=3663.0,
        language="en",
        language_probability=0.97,
        model="whisper-base",
    )


def test_srt():
    assert render(sample(), "srt") == (
        "1\n00:00:00,500 --> 00:00:02,250\nHello there.\n\n"
        "2\n01:01:01,000 --> 01:01:02,500\nSecond line\n"
    )


def test_vtt():
    assert render(sample(), "vtt") == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:02.250\nHello there.\n\n"
        "01:01:01.000 --> 01:01:02.500\nSecond line\n"
    )


def test_txt():
    assert render(sample(), "txt") == "Hello there. Second line\n"
    assert render(Transcript([], 1.0), "txt") == ""


def test_json_has_segments_words_and_model():
    body = json.loads(render(sample(), "json"))
    assert body == to_json(sample())
    assert body["text"] == "Hello there. Second line"
    assert body["model"] == "whisper-base"
    assert body["segments"][0]["words"][1] == {
        "word": "there.",
        "start": 1.1,
        "end": 2.25,
        "probability": 0.8,
    }
    assert "words" not in body["segments"][1]


def test_verbose_json_is_openai_shaped():
    body = to_verbose_json(sample(), words=True)
    assert body["language"] == "english"
    assert body["segments"][1]["start"] == 3661.0
    assert [w["word"] for w in body["words"]] == ["Hello", "there."]
    assert "words" not in to_verbose_json(sample())


def test_cjk_text_joins_without_spaces():
    assert join_text(["你好。", "世界", "OK then", "再见"]) == "你好。世界 OK then 再见"
