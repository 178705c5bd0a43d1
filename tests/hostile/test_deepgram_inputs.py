"""The Deepgram-compatible entry points (`WS /v1/listen`, `WS /v2/listen`, `POST /v1/listen`)
against callers without keys and hostile input: every list, value, frame and control message is
bounded before it is used, and each mistake gets a clear answer (HTTP status and Deepgram's
JSON at the handshake; an `Error` message mid-stream, the stream going on)."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.testclient import WebSocketDenialResponse

from admin_api.auth import ADMIN
from admin_api.models import Job
from tests.combined_server import bearer, make_server, new_key
from tests.helpers import tone, wav_bytes

SOCKETS = ("/v1/listen", "/v2/listen")


@pytest.fixture(scope="module")
def server(transcriber, tmp_path_factory):
    """The combined server with tenant keys (no local mode); its URL fetches follow the public
    address rules (no private addresses)."""
    app, database = make_server(transcriber, tmp_path_factory.mktemp("deepgram"))
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        yield client, new_key(database, "tenant", "acme")
    database.dispose()


def denied(client, path: str, headers: dict | None = None) -> tuple[int, dict]:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(path, headers=headers or {}),
    ):
        pass
    return refused.value.status_code, refused.value.json()


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", SOCKETS)
def test_socket_without_credentials_gets_401(server, path):
    client, _ = server
    status, body = denied(client, path)
    assert status == 401 and body["err_code"] == "INVALID_AUTH"
    status, body = denied(client, path, {"authorization": "Token not-a-key"})
    assert status == 401


@pytest.mark.parametrize(
    "form",
    [
        lambda key: ({"authorization": f"Token {key}"}, None),
        lambda key: ({"authorization": f"Bearer {key}"}, None),
        lambda key: ({}, ["token", key]),
    ],
    ids=["token", "bearer", "subprotocol"],
)
def test_socket_accepts_deepgram_auth_forms(server, form):
    client, key = server
    headers, subprotocols = form(key)
    with client.websocket_connect(
        "/v1/listen", headers=headers, subprotocols=subprotocols or []
    ) as ws:
        assert ws.receive_json()["type"] == "Metadata"
        if subprotocols:
            assert ws.accepted_subprotocol == "token"
        ws.send_text(json.dumps({"type": "CloseStream"}))
        assert ws.receive_json()["type"] == "Metadata"


def test_stream_token_as_bearer(server):
    client, key = server
    token = client.post("/v1/tokens", json={}, headers=bearer(key)).json()["token"]
    with client.websocket_connect("/v2/listen", headers={"authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["type"] == "Connected"


def test_prerecorded_without_credentials_gets_401(server):
    client, _ = server
    response = client.post("/v1/listen", content=b"RIFF")
    assert response.status_code == 401


# -- bounded, checked parameters ----------------------------------------------------------------

BAD_QUERIES = {
    "encoding": ("encoding=opus", "encoding"),
    "sample_rate": ("encoding=linear16&sample_rate=44", "sample_rate"),
    "g711_rate": ("encoding=mulaw&sample_rate=16000", "8000"),
    "channels": ("channels=64", "channels"),
    "flag": ("interim_results=maybe", "interim_results"),
    "language": ("language=xx", "language"),
    "eot": ("eot_threshold=2", "eot_threshold"),
    "too_many_keyterms": ("&".join(f"keyterm=term{i}" for i in range(101)), "keyterm"),
    "too_many_items": ("&".join(f"x{i}=1" for i in range(301)), "query parameters"),
    "long_value": ("keyterm=" + "a" * 3000, "longer than"),
    "long_keyterm": ("keyterm=" + "a" * 200, "keyterm"),
}


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize("mistake", list(BAD_QUERIES))
def test_bad_parameter_is_refused_at_the_handshake(server, path, mistake):
    client, key = server
    query, named = BAD_QUERIES[mistake]
    status, body = denied(client, f"{path}?{query}", {"authorization": f"Token {key}"})
    assert status in (400, 422), body
    assert named in body["err_msg"], body


def test_prerecorded_bad_parameter(server):
    client, key = server
    response = client.post(
        "/v1/listen?language=xx", content=b"RIFF", headers={"authorization": f"Token {key}"}
    )
    assert response.status_code == 400
    assert "language" in response.json()["error"]["message"]


def test_unknown_parameters_are_ignored(server):
    client, key = server
    with client.websocket_connect(
        "/v1/listen?model=nova-3&diarize=true&tag=x&smart_format=true&punctuate=true",
        headers={"authorization": f"Token {key}"},
    ) as ws:
        assert ws.receive_json()["type"] == "Metadata"


# -- bounded frames and control messages ----------------------------------------------------


@pytest.mark.parametrize("path", SOCKETS)
def test_bad_control_messages_get_errors_and_the_stream_goes_on(server, path):
    client, key = server
    with client.websocket_connect(path, headers={"authorization": f"Token {key}"}) as ws:
        ws.receive_json()  # Metadata or Connected
        for bad in ("x" * 5000, "{not json", json.dumps({"type": "Explode"}), "[1, 2]"):
            ws.send_text(bad)
            error = ws.receive_json()
            assert error["type"] == "Error", error
        ws.send_bytes(b"\x00" * 1_000_001)
        assert ws.receive_json()["type"] == "Error"
        ws.send_bytes(b"\x00\x01" * 800)  # audio still flows
        ws.send_text(json.dumps({"type": "KeepAlive"}))
        ws.send_text(json.dumps({"type": "CloseStream"}))
        if path == "/v1/listen":
            assert ws.receive_json()["type"] == "Metadata"


def test_configure_out_of_bounds_fails_cleanly(server):
    client, key = server
    with client.websocket_connect("/v2/listen", headers={"authorization": f"Token {key}"}) as ws:
        ws.receive_json()
        for thresholds, keyterms in (
            ({"eot_threshold": 5}, None),
            ({"nonsense": 1}, None),
            ({}, ["x"] * 101),
            ({}, [1, 2]),
        ):
            ws.send_text(
                json.dumps({"type": "Configure", "thresholds": thresholds, "keyterms": keyterms})
            )
            assert ws.receive_json()["type"] == "ConfigureFailure"
        ws.send_text(json.dumps({"type": "CloseStream"}))


# -- prerecorded bodies -------------------------------------------------------------------------


def test_prerecorded_json_body_is_bounded_and_checked(server):
    client, key = server
    headers = {"authorization": f"Token {key}", "content-type": "application/json"}
    big = client.post("/v1/listen", content=b'{"url": "' + b"a" * 20_000 + b'"}', headers=headers)
    assert big.status_code == 400
    for body in (b"{oops", b"[]", b'{"url": 5}', b'{"nourl": "x"}'):
        response = client.post("/v1/listen", content=body, headers=headers)
        assert response.status_code == 400, body


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/a.wav", "http://169.254.169.254/latest", "file:///etc/passwd"]
)
def test_prerecorded_url_to_a_private_address_is_refused(server, url):
    client, key = server
    response = client.post(
        "/v1/listen", json={"url": url}, headers={"authorization": f"Token {key}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_unusable"


def test_prerecorded_undecodable_audio(server):
    client, key = server
    response = client.post(
        "/v1/listen", content=b"not audio at all" * 10, headers={"authorization": f"Token {key}"}
    )
    assert response.status_code == 400


def test_prerecorded_headerless_audio_needs_its_format(server):
    client, key = server
    pcm = (tone(440, 0.5, 8000) * 10000).astype(np.int16).tobytes()
    response = client.post(
        "/v1/listen?encoding=linear16&sample_rate=8000",
        content=pcm,
        headers={"authorization": f"Token {key}", "content-type": "audio/l16"},
    )
    assert response.status_code == 200
    assert response.json()["metadata"]["duration"] == pytest.approx(0.5, abs=0.05)
    wav = wav_bytes(tone(440, 0.5, 16_000), 16_000)
    response = client.post(
        "/v1/listen", content=wav, headers={"authorization": f"Token {key}", "content-type": "x/y"}
    )
    assert response.status_code == 200


# -- callback: an asynchronous batch job --------------------------------------------------------


def test_prerecorded_callback_to_a_private_address_is_refused(server):
    client, key = server
    wav = wav_bytes(tone(440, 0.5, 16_000), 16_000)
    response = client.post(
        "/v1/listen?callback=http://127.0.0.1:9/hook",
        content=wav,
        headers={"authorization": f"Token {key}"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "forbidden_address"


def test_prerecorded_callback_queues_a_batch_job(transcriber, tmp_path):
    """With private receivers allowed (an on-premises webhook), a callback request answers at
    once with the job's id; the job carries the audio and the callback as its webhook."""
    app, database = make_server(transcriber, tmp_path, outbound_allow_private=True)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        key = new_key(database, "tenant", "acme")
        wav = wav_bytes(tone(440, 0.5, 16_000), 16_000)
        response = client.post(
            "/v1/listen?callback=http://127.0.0.1:9/hook&language=en",
            content=wav,
            headers={"authorization": f"Token {key}"},
        )
        assert response.status_code == 200, response.text
        job_id = response.json()["request_id"]
        job = client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        assert job["status"] == "queued" and job["language"] == "en"
        with Session(database) as session:
            assert session.get(Job, job_id).webhook_url == "http://127.0.0.1:9/hook"
        by_url = client.post(
            "/v1/listen?callback=http://127.0.0.1:9/hook",
            json={"url": "http://127.0.0.1:9/a.wav"},
            headers={"authorization": f"Token {key}"},
        )
        assert by_url.status_code == 200
    database.dispose()


def test_finalize_with_nothing_open_is_confirmed(server):
    client, key = server
    with client.websocket_connect(
        "/v1/listen?encoding=linear16&sample_rate=16000", headers={"authorization": f"Token {key}"}
    ) as ws:
        ws.receive_json()
        ws.send_bytes(bytes(3200))  # 100 ms of silence
        ws.send_text(json.dumps({"type": "Finalize"}))
        result = ws.receive_json()
        assert result["type"] == "Results" and result["from_finalize"] and result["is_final"]
        assert result["channel"]["alternatives"][0]["transcript"] == ""
        ws.send_text(json.dumps({"type": "CloseStream"}))
