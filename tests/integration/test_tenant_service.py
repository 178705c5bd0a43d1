"""The combined server of `callscribe serve` (ASR + admin backend) in-process: tenant keys and
stream tokens on every ASR endpoint, the tenant's lists in its decodes, a list edit reaching a
live call from its next segment, and per-tenant limits."""

import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api.auth import ADMIN
from admin_api.crud import hotword_lists
from asr_core.hotwords import Hotword, HotwordLimits
from callscribe.config import Settings
from callscribe.server import auth_mode
from tests.combined_server import bearer, make_server, new_key
from tests.helpers import (
    espeak_audio,
    fill_path,
    openapi_routes,
    refused_stream,
    to_int16,
    wav_bytes,
)

SR = 16_000
NAME_SENTENCE = "Please call Xiaomeng Zhao about the CRISPR assay."


@pytest.fixture(scope="module")
def rare_name(tmp_path_factory):
    return espeak_audio(NAME_SENTENCE, tmp_path_factory.mktemp("tenant-speech"))


@pytest.fixture
def server(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        tenant_keys = {}
        for tenant in ("acme", "globex"):
            assert client.post("/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin)
            tenant_keys[tenant] = new_key(database, "tenant", tenant)
        yield client, admin, tenant_keys
    database.dispose()


def put_list(client, admin, tenant: str, content: str) -> dict:
    response = client.put(
        f"/v1/tenants/{tenant}/hotword-lists/names", json={"content": content}, headers=admin
    )
    if response.status_code == 404:
        response = client.post(
            f"/v1/tenants/{tenant}/hotword-lists",
            json={"name": "names", "content": content},
            headers=admin,
        )
    assert response.status_code in (200, 201), response.text
    return response.json()


def speak_segment(ws, audio: np.ndarray) -> dict:
    """Send one utterance and a second of silence; return its final (after its endpoint)."""
    data = to_int16(np.concatenate([audio, np.zeros(SR, np.float32)])).tobytes()
    for offset in range(0, len(data), 3200):
        ws.send_bytes(data[offset : offset + 3200])
    final = None
    while (event := ws.receive_json())["type"] != "endpoint":
        final = event if event["type"] == "final" else final
    assert final is not None
    return final


def test_every_asr_endpoint_needs_a_key_or_token(server, rare_name):
    client, _, _ = server
    upload = {"file": ("a.wav", wav_bytes(rare_name, SR))}
    refused = client.post("/v1/audio/transcriptions", files=upload)
    assert refused.status_code == 401
    assert "key" in refused.json()["error"]["message"]
    assert client.get("/v1/hotwords/active").status_code == 401
    assert client.get("/v1/hotwords/active", headers=bearer("cs_0000_bogus")).status_code == 401
    for path in ("/v1/stream", "/v1/funasr"):
        assert refused_stream(client, path, 4401)["code"] == "unauthorized"


PUBLIC_ROUTES = {("/healthz", "get")}
"""Liveness probes need no key; everything else `callscribe serve` documents does."""


def test_every_route_of_the_server_needs_a_key(server):
    client, _, _ = server
    checked = 0
    for path, method in openapi_routes(client):
        if (path, method) in PUBLIC_ROUTES:
            continue
        response = client.request(method, fill_path(path, "acme"))
        assert response.status_code == 401, (method, path, response.status_code)
        checked += 1
    assert checked >= 20


def test_stream_tokens_for_browsers(server):
    client, admin, tenant_keys = server
    assert client.post("/v1/tokens", json={}, headers=admin).status_code == 403
    minted = client.post("/v1/tokens", json={"ttl_s": 60}, headers=bearer(tenant_keys["acme"]))
    assert minted.status_code == 201
    token = minted.json()["token"]
    assert minted.json()["tenant_id"] == "acme"
    with client.websocket_connect(f"/v1/stream?token={token}") as ws:
        ws.send_text(json.dumps({"language": "en"}))
        assert ws.receive_json()["type"] == "ready"
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert client.get(f"/v1/hotwords/active?token={forged}").status_code == 401
    # Revoking the key ends its tokens at once.
    prefix = "_".join(tenant_keys["acme"].split("_")[:2])
    assert client.delete(f"/v1/tenants/acme/keys/{prefix}", headers=admin).status_code == 204
    refused = client.get(f"/v1/hotwords/active?token={token}")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    # Tokens open ASR endpoints only, never the admin API.
    minted = client.post("/v1/tokens", json={}, headers=bearer(tenant_keys["globex"]))
    assert client.get(f"/v1/tenants/globex?token={minted.json()['token']}").status_code == 401


def test_a_tenants_lists_reach_its_calls_and_no_one_elses(server, rare_name):
    client, admin, tenant_keys = server
    put_list(client, admin, "acme", "Xiaomeng Zhao\nCRISPR")
    active = client.get("/v1/hotwords/active", headers=bearer(tenant_keys["acme"])).json()
    assert active == {"version": 1, "phrase_count": 2, "phrases": ["Xiaomeng Zhao", "CRISPR"]}
    other = client.get("/v1/hotwords/active", headers=bearer(tenant_keys["globex"])).json()
    assert other == {"version": None, "phrase_count": 0, "phrases": []}

    upload = {"file": ("a.wav", wav_bytes(rare_name, SR)), "language": (None, "en")}
    with_list = client.post(
        "/v1/audio/transcriptions", files=upload, headers=bearer(tenant_keys["acme"])
    )
    assert "Xiaomeng Zhao" in with_list.json()["text"]
    without = client.post(
        "/v1/audio/transcriptions", files=upload, headers=bearer(tenant_keys["globex"])
    )
    assert "Xiaomeng Zhao" not in without.json()["text"]


def test_a_list_edit_reaches_a_live_call_from_its_next_segment(server, rare_name):
    client, admin, tenant_keys = server
    with client.websocket_connect("/v1/stream", headers=bearer(tenant_keys["acme"])) as ws:
        ws.send_text(json.dumps({"language": "en"}))
        assert ws.receive_json()["type"] == "ready"
        before = speak_segment(ws, rare_name)
        assert before["hotword_version"] is None
        assert "Xiaomeng Zhao" not in before["text"]

        put_list(client, admin, "acme", "Xiaomeng Zhao\nCRISPR")
        after = speak_segment(ws, rare_name)
        assert after["hotword_version"] == 1
        assert "Xiaomeng Zhao" in after["text"]

        put_list(client, admin, "acme", "Something Else")  # the stream's own phrases stay
        ws.send_text(json.dumps({"type": "hotwords", "hotwords": "CRISPR"}))
        reply = ws.receive_json()
        while reply["type"] == "utterance_end":  # the turn event of the segment before
            reply = ws.receive_json()
        assert reply["type"] == "hotwords_set"
        last = speak_segment(ws, rare_name)
        assert last["hotword_version"] == 2
        assert "Xiaomeng Zhao" not in last["text"]
        ws.send_text(json.dumps({"type": "end"}))


def test_per_tenant_limits(transcriber, tmp_path, rare_name):
    app, database = make_server(
        transcriber, tmp_path, tenant_max_streams=1, tenant_requests_per_minute=3
    )
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        acme = bearer(new_key(database, "tenant", "acme"))
        with client.websocket_connect("/v1/stream", headers=acme) as first:
            first.send_text(json.dumps({"language": "en"}))
            assert first.receive_json()["type"] == "ready"
            refused = refused_stream(client, "/v1/stream", 4429, headers=acme)
            assert refused["code"] == "rate_limited"
            assert "1 streams" in refused["message"]
        # Three requests a minute: the stream took one, then two uploads, then a refusal.
        upload = {"file": ("a.wav", wav_bytes(rare_name[: SR // 2], SR))}
        for _ in range(2):
            assert client.post("/v1/audio/transcriptions", files=upload, headers=acme).is_success
        over = client.post("/v1/audio/transcriptions", files=upload, headers=acme)
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1
        assert over.json()["error"]["code"] == "rate_limited"
        # Admin keys and other tenants are not held back by acme's limit.
        assert client.post("/v1/audio/transcriptions", files=upload, headers=admin).is_success
    database.dispose()


def test_local_mode_trusts_only_this_machine(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path, auth="local")
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as local:
        assert local.get("/v1/hotwords/active").status_code == 200
        assert local.get("/v1/tenants").status_code == 401  # the admin API still needs a key
    with TestClient(app, base_url="http://127.0.0.1", client=("203.0.113.7", 50000)) as remote:
        assert remote.get("/v1/hotwords/active").status_code == 401
    database.dispose()


def test_auth_mode_follows_the_bind_address():
    assert auth_mode(Settings(_env_file=None, host="127.0.0.1")) == "local"
    assert auth_mode(Settings(_env_file=None, host="0.0.0.0")) == "keys"
    with pytest.raises(ValueError, match="loopback"):
        auth_mode(Settings(_env_file=None, host="0.0.0.0", auth="local"))


def test_a_change_no_message_announced_arrives_by_the_periodic_resync(transcriber, tmp_path):
    """Another process wrote the database and its message was lost: the resync catches up."""
    app, database = make_server(transcriber, tmp_path, hotword_resync_s=0.2)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        acme = bearer(new_key(database, "tenant", "acme"))
        put_list(client, admin, "acme", "Xiaomeng Zhao")
        assert client.get("/v1/hotwords/active", headers=acme).json()["version"] == 1
        with Session(database) as session:  # behind the bus's back
            names = hotword_lists.get(session, "acme", "names")
            hotword_lists.add_version(
                session, names, [Hotword("CRISPR")], "other-process", HotwordLimits()
            )
            session.commit()
        deadline = time.monotonic() + 20
        while client.get("/v1/hotwords/active", headers=acme).json()["version"] != 2:
            assert time.monotonic() < deadline, "the resync never caught up"
            time.sleep(0.1)
        assert client.get("/v1/hotwords/active", headers=acme).json()["phrases"] == ["CRISPR"]
    database.dispose()
