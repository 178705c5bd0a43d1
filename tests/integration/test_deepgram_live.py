"""`WS /v1/listen` in-process: telephone encodings, multichannel legs, keyterms as hot-words
(the clients' own proof is in test_deepgram_clients.py)."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import QueryParams

from asr_core.audio.g711 import pcm16_to_alaw, pcm16_to_mulaw
from asr_core.audio.resample import resample
from common.rules import InvalidRequest, RequestRules
from service import ServiceConfig, create_app
from service.deepgram.params import parse_listen
from tests.helpers import espeak_audio, to_int16

SR = 16_000


@pytest.fixture(scope="module")
def client(transcriber):
    with TestClient(create_app(transcriber, ServiceConfig())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    audio = espeak_audio(
        "I would like to check my account balance today.", tmp_path_factory.mktemp("dg")
    )
    return np.concatenate([audio, np.zeros(SR, dtype=np.float32)])


def session(client, query: str, payload: bytes, frame: int = 3200) -> list[dict]:
    with client.websocket_connect(f"/v1/listen?{query}") as ws:
        assert ws.receive_json()["type"] == "Metadata"
        for start in range(0, len(payload), frame):
            ws.send_bytes(payload[start : start + frame])
        ws.send_text(json.dumps({"type": "CloseStream"}))
        messages = []
        while (message := ws.receive_json())["type"] != "Metadata":
            messages.append(message)
    return messages


def final_text(messages: list[dict], channel: int = 0) -> str:
    return " ".join(
        m["channel"]["alternatives"][0]["transcript"]
        for m in messages
        if m["type"] == "Results" and m["is_final"] and m["channel_index"][0] == channel
    ).lower()


@pytest.mark.parametrize(
    ("encoding", "convert"), [("mulaw", pcm16_to_mulaw), ("alaw", pcm16_to_alaw)]
)
def test_telephone_encodings(client, speech, encoding, convert):
    payload = convert(to_int16(resample(speech, SR, 8000)))
    messages = session(client, f"encoding={encoding}&sample_rate=8000&language=en", payload, 160)
    assert "account" in final_text(messages) and "today" in final_text(messages)


def test_multichannel_streams_are_legs(client, speech):
    """Speech on the left channel only: its results carry channel_index [0, 2]; the right
    channel, silent, answers nothing."""
    stereo = np.stack([to_int16(speech), np.zeros(len(speech), dtype="<i2")], axis=1)
    messages = session(
        client,
        "encoding=linear16&sample_rate=16000&channels=2&multichannel=true&language=en",
        stereo.tobytes(),
        3202,  # frames torn between messages are carried
    )
    assert "account" in final_text(messages, 0) and "today" in final_text(messages, 0)
    assert final_text(messages, 1).strip() == ""
    assert {tuple(m["channel_index"]) for m in messages if m["type"] == "Results"} == {(0, 2)}


def test_keyterms_and_keywords_become_hotwords():
    params = parse_listen(
        QueryParams("keyterm=Xiaomeng Zhao&keyterm=CRISPR&keywords=Acme:2&keywords=um:-5"),
        RequestRules(),
    )
    phrases = [h.phrase for h in params.hotwords.hotwords.entries]
    assert phrases == ["Xiaomeng Zhao", "CRISPR", "Acme"]


def test_language_and_defaults():
    rules = RequestRules()
    assert parse_listen(QueryParams("language=en-US"), rules).language == "en"
    assert parse_listen(QueryParams("language=multi"), rules).language is None
    defaults = parse_listen(QueryParams("encoding=mulaw"), rules)
    assert (defaults.raw_encoding, defaults.raw_sample_rate) == ("mulaw", 8000)
    assert parse_listen(QueryParams("endpointing=false"), rules).speech_final is False
    with pytest.raises(InvalidRequest):
        parse_listen(QueryParams("language=fr"), rules)
