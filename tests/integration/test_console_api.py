"""What the calls console reads, on the combined server with a real two-leg call: the call's
page (legs, recordings, post-call job), recordings with HTTP Range behind the tenant's auth,
history filters, the events socket with an admin-minted token, and the call's live finals
searchable as soon as they are stored."""

import wave
from io import BytesIO

import numpy as np
import pytest
from fastapi.testclient import TestClient

from admin_api.auth import ADMIN
from asr_core.audio import RawFormat
from tests.combined_server import bearer, make_server, new_key, open_call
from tests.helpers import espeak_audio, refused_stream, to_int16

SENTENCE = "Please cancel my subscription tomorrow morning."


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    return espeak_audio(SENTENCE, tmp_path_factory.mktemp("console-speech"))


@pytest.fixture
def server(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        for tenant in ("acme", "globex"):
            client.post("/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin)
        keys = {t: bearer(new_key(database, "tenant", t)) for t in ("acme", "globex")}
        yield client, admin, keys
    database.dispose()


def test_a_two_leg_call_on_the_console(server, speech):
    client, admin, keys = server
    acme = keys["acme"]
    session = open_call(
        client,
        "acme",
        {"customer": RawFormat("pcm_s16le", 16000), "agent": RawFormat("pcm_s16le", 16000)},
        language="en",
    )
    detail = client.get(f"/v1/calls/{session.id}", headers=acme).json()
    assert detail["status"] == "active" and detail["recordings"] == []
    assert detail["hotword_version"] == 0  # the tenant's, for a call in progress
    recording = f"/v1/calls/{session.id}/recordings/customer"
    assert client.get(recording, headers=acme).status_code == 409  # not complete yet

    token = client.post("/v1/tokens", json={"tenant_id": "acme"}, headers=admin).json()["token"]
    with client.websocket_connect(f"/v1/calls/{session.id}/events?token={token}") as ws:
        assert ws.receive_json()["legs"] == ["customer", "agent"]
        silence = np.zeros(16_000, np.float32)
        session.feed("customer", to_int16(np.concatenate([speech, silence])).tobytes())
        session.feed("agent", to_int16(silence).tobytes())
        while (event := ws.receive_json())["type"] != "final":
            pass
    assert event["leg"] == "customer"
    # Stored, hence searchable, before listeners hear of it.
    hits = client.get("/v1/search", params={"q": "subscription"}, headers=acme).json()
    assert [r["id"] for r in hits["results"]] == [session.id]
    [match] = hits["results"][0]["matches"]
    assert match["pass"] == "live" and match["leg"] == "customer"
    assert event["start_ms"] <= match["time_ms"] <= event["end_ms"]
    spoken = next(w for w in event["words"] if "subscription" in w["word"].lower())
    assert match["time_ms"] == spoken["start_ms"]
    client.portal.call(session.end)

    detail = client.get(f"/v1/calls/{session.id}", headers=acme).json()
    assert detail["status"] == "ended" and detail["legs"] == ["customer"]
    assert [r["leg"] for r in detail["recordings"]] == ["agent", "customer"]
    customer = detail["recordings"][1]
    assert customer["url"] == recording
    assert customer["duration_s"] == pytest.approx((len(speech) + 16_000) / 16_000, abs=0.05)

    whole = client.get(recording, headers=acme)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert len(whole.content) == customer["bytes"] and whole.headers["accept-ranges"] == "bytes"
    with wave.open(BytesIO(whole.content)) as audio:
        assert audio.getframerate() == 16_000
    part = client.get(recording, headers={**acme, "range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == whole.content[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{customer['bytes']}"
    token = client.post("/v1/tokens", json={}, headers=acme).json()["token"]
    assert client.get(recording, params={"token": token}).status_code == 200
    assert client.get(recording, headers=admin).content == whole.content  # admin keys too
    assert client.get(f"/v1/calls/{session.id}", headers=admin).json() == detail
    assert client.get(recording).status_code == 401
    assert client.get(recording, headers=keys["globex"]).status_code == 404
    assert client.get(f"{recording}.wav", headers=acme).status_code == 422  # leg names only
    assert client.get(f"/v1/calls/{session.id}/recordings/nope", headers=acme).status_code == 404


def test_history_filters(server, speech):
    client, admin, keys = server
    acme = keys["acme"]
    ids = []
    for legs, language in (({"agent": RawFormat("pcm_s16le", 16000)}, "en"), ({}, None)):
        session = open_call(client, "acme", legs, language=language)
        ids.append(session.id)
        client.portal.call(session.end)
    still = open_call(client, "acme", {})
    other = open_call(client, "globex", {})

    def listed(**params) -> list[str]:
        response = client.get("/v1/calls", params=params, headers=acme)
        assert response.status_code == 200, response.text
        return [call["id"] for call in response.json()]

    assert listed(status="ended") == ids[::-1]
    assert listed(status="active") == [still.id]
    assert listed(language="en") == [ids[0]]
    assert listed(order="asc", active="false") == ids
    response = client.get("/v1/calls", params={"limit": 1}, headers=acme)
    assert response.headers["x-total-count"] == "3" and len(response.json()) == 1
    first = client.get(f"/v1/calls/{ids[0]}", headers=acme).json()
    assert listed(until=first["started_at"]) == []
    assert listed(since=first["started_at"], status="ended") == ids
    assert listed(leg="agent") == []  # no finals on that leg (silence)
    everyone = client.get("/v1/calls", params={"active": "true"}, headers=admin).json()
    assert {c["id"] for c in everyone} == {still.id, other.id}
    assert client.get("/v1/calls", params={"tenant_id": "globex"}, headers=acme).status_code == 404
    for session in (still, other):
        client.portal.call(session.end)


def test_the_events_socket_refuses_other_tenants_tokens(server):
    client, admin, _ = server
    session = open_call(client, "acme", {"mixed": RawFormat("pcm_s16le", 16000)})
    token = client.post("/v1/tokens", json={"tenant_id": "globex"}, headers=admin).json()["token"]
    path = f"/v1/calls/{session.id}/events?token={token}"
    assert refused_stream(client, path, 4404)["code"] == "call_not_found"
    with client.websocket_connect(f"/v1/calls/{session.id}/events", headers=admin) as ws:
        assert ws.receive_json()["type"] == "listening"
    client.portal.call(session.end)
