"""One table of bad requests, sent to every entry point that takes them: each mistake gets the
same answer everywhere (`common.rules`): the same message; over HTTP the same status, on a
WebSocket close code 4000 + that status (the native stream's protocol closes every bad config
with 4400), and exit code 2 from the CLI. The server serves English only
(`CALLSCRIBE_LANGUAGES=en`), so Mandarin is refused everywhere, WebRTC offers included."""

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from admin_api.auth import ADMIN
from asr_core.audio import RawFormat
from asr_core.hotwords import HotwordListError
from common.rules import InvalidRequest, RequestRules, check_call_id
from telephony.refusal import CallRefused
from tests.combined_server import bearer, make_server, new_key, open_call
from tests.helpers import tone, wav_bytes

SERVED = ("en",)
BAD_HOTWORDS = "fine\n" + "x" * 99  # line 2: longer than a phrase may be


def expected(rule, value) -> tuple[int, str]:
    """What the rule itself answers: (status, message)."""
    try:
        rule(value)
    except InvalidRequest as broken:
        return broken.status, broken.message
    except HotwordListError as broken:
        return 422, broken.reason
    raise AssertionError(f"{value!r} passes the rule")


RULES = RequestRules(languages=SERVED)
MISTAKES = {
    "language": (RULES.language, "zh"),
    "call_id": (check_call_id, "../../etc/passwd"),
    "hotwords": (RULES.hotwords, BAD_HOTWORDS),
}


@pytest.fixture(scope="module")
def server(transcriber, tmp_path_factory):
    app, database = make_server(transcriber, tmp_path_factory.mktemp("rules"), languages="en")
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        yield client, bearer(new_key(database, "tenant", "acme"))
    database.dispose()


# -- how each entry point answers: ("http", status, message), ("socket", close code, message)
# -- or ("cli", exit code, stderr)


def upload(client, key, mistake, value):
    fields = {"language": value} if mistake == "language" else {"hotwords": value}
    wav = wav_bytes(tone(0, 0.5, 16_000), 16_000)
    response = client.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data=fields, headers=key
    )
    return "http", response.status_code, response.json()["error"]["message"]


def webrtc_offer(client, key, mistake, value):
    body = {"sdp": "v=0", "type": "offer", mistake: value}
    response = client.post("/v1/webrtc/offer", json=body, headers=key)
    return "http", response.status_code, response.json()["error"]["message"]


def reservation(client, key, mistake, value):
    response = client.post(
        "/v1/media-streams/audiosocket/reservations", json={"language": value}, headers=key
    )
    return "http", response.status_code, response.json()["error"]["message"]


def batch_job(client, key, mistake, value):
    wav = wav_bytes(tone(0, 0.5, 16_000), 16_000)
    response = client.post(
        "/v1/jobs", files={"file": ("a.wav", wav)}, data={"language": value}, headers=key
    )
    return "http", response.status_code, response.json()["error"]["message"]


def refused_socket(client, key, path: str, first: dict) -> tuple[str, int, str]:
    with client.websocket_connect(path, headers=key) as ws:
        ws.send_text(json.dumps(first))
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return "socket", closed.value.code, error["message"]


def native_stream(client, key, mistake, value):
    return refused_socket(client, key, "/v1/stream", {mistake: value})


def funasr_socket(client, key, mistake, value):
    """FunASR's protocol answers a bad file config with an end-of-file message, and the
    connection stays open for the next file."""
    with client.websocket_connect("/v1/funasr", headers=key) as ws:
        ws.send_text(json.dumps({"mode": "2pass", "wav_name": "a", "hotwords": value}))
        reply = ws.receive_json()
    assert reply["is_end"] is True and reply["code"] == "invalid_config"
    return "socket", 4400, reply["error"]


def twilio(client, key, mistake, value):
    start = {
        "callSid": value if mistake == "call_id" else "CA" + "1" * 32,
        "tracks": ["inbound"],
        "customParameters": {"language": value} if mistake == "language" else {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    return refused_socket(
        client, key, "/v1/media-streams/twilio", {"event": "start", "start": start}
    )


def audio_fork(client, key, mistake, value):
    field = {"call_id": "callId", "language": "language"}[mistake]
    return refused_socket(client, key, "/v1/media-streams/audio-fork", {field: value})


def call_hub(client, key, mistake, value):
    """What SIP INVITEs (X-Callscribe-Call-Id) and every gateway go through."""
    with pytest.raises(CallRefused) as refused:
        open_call(client, "acme", {"mixed": RawFormat("pcm_s16le", 16000)}, call_id=value)
    return "sip", refused.value.status, refused.value.reason


def cli(client, key, mistake, value, tmp_path):
    clip = tmp_path / "a.wav"
    clip.write_bytes(wav_bytes(tone(0, 0.5, 16_000), 16_000))
    args = ["transcribe", str(clip)]
    if mistake == "language":
        args += ["--language", value]
    else:
        (tmp_path / "hotwords.txt").write_text(value)
        args += ["--hotwords", str(tmp_path / "hotwords.txt")]
    result = subprocess.run(
        [sys.executable, "-m", "callscribe", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CALLSCRIBE_LANGUAGES": "en"},
    )
    return "cli", result.returncode, result.stderr


TABLE = [
    ("language", upload),
    ("language", webrtc_offer),
    ("language", reservation),
    ("language", batch_job),
    ("language", native_stream),
    ("language", twilio),
    ("language", audio_fork),
    ("language", cli),
    ("call_id", twilio),
    ("call_id", audio_fork),
    ("call_id", call_hub),
    ("hotwords", upload),
    ("hotwords", webrtc_offer),
    ("hotwords", native_stream),
    ("hotwords", funasr_socket),
    ("hotwords", cli),
]


@pytest.mark.parametrize(
    ("mistake", "entry"), TABLE, ids=[f"{mistake}-{entry.__name__}" for mistake, entry in TABLE]
)
def test_the_same_mistake_gets_the_same_answer_everywhere(server, mistake, entry, tmp_path):
    client, key = server
    rule, value = MISTAKES[mistake]
    status, message = expected(rule, value)
    extra = (tmp_path,) if entry is cli else ()
    transport, code, said = entry(client, key, mistake, value, *extra)
    if transport == "cli":
        assert code == 2 and message.split(", line ")[-1] in said, said
        return
    if mistake == "hotwords":  # the list's name differs, the reason does not
        assert said.split(", line ")[-1] == message.split(", line ")[-1]
    else:
        assert said == message
    if transport in ("http", "sip"):
        assert code == status
    elif entry is native_stream or entry is funasr_socket:
        assert code == 4400  # their protocol's "bad config", whatever the mistake
    else:
        assert code == 4000 + status
