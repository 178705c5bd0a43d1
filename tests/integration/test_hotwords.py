"""Hot-word retrieval end to end: a rare name hidden in a 1,000-phrase list."""

import pytest

from asr_core.hotwords import Hotword, HotwordIndex, HotwordList
from asr_core.transcribe import TranscribeOptions
from bench.hotwords import distractors
from tests.helpers import espeak_wav

NAME = "Ramanathan Subramaniam"


@pytest.fixture(scope="module")
def tenant_list() -> HotwordIndex:
    phrases = distractors("en", 1000, [NAME])
    phrases.insert(517, NAME)
    return HotwordIndex(HotwordList([Hotword(p) for p in phrases], version=7))


@pytest.fixture(scope="module")
def name_clip(speech_dir):
    return espeak_wav(f"The meeting with {NAME} is at noon.", speech_dir / "rare-name.wav")


def test_rare_name_is_wrong_without_a_list(transcriber, name_clip):
    text = transcriber.transcribe(name_clip, TranscribeOptions(language="en")).text
    assert NAME not in text


def test_rare_name_is_right_with_the_thousand_phrase_list(transcriber, name_clip, tenant_list):
    transcript = transcriber.transcribe(
        name_clip, TranscribeOptions(language="en", hotword_index=tenant_list)
    )
    assert NAME in transcript.text
    [segment] = transcript.segments
    assert NAME in segment.hotwords
    assert len(segment.hotwords) <= 10  # only retrieved phrases were prompted
    assert segment.hotword_version == 7


def test_a_clip_without_the_name_does_not_gain_it(transcriber, english_wav, tenant_list):
    transcript = transcriber.transcribe(
        english_wav, TranscribeOptions(language="en", hotword_index=tenant_list)
    )
    text = transcript.text.lower()
    assert "quick brown fox" in text and "tomorrow morning" in text
    assert "ramanathan" not in text and "subramaniam" not in text
    assert not [p for p in tenant_list.hotwords.phrases if p.lower() in text]


def test_first_pass_reuses_the_encoder_output(
    engine, transcriber, name_clip, tenant_list, monkeypatch
):
    calls = []
    original = engine.encode
    monkeypatch.setattr(engine, "encode", lambda audio: calls.append(1) or original(audio))
    transcriber.transcribe(name_clip, TranscribeOptions(language="en", hotword_index=tenant_list))
    assert calls == [1]  # one window, one encoder run for both passes
