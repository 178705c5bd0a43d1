"""Limits before work: bodies capped by route (and their senders checked) before they are
read, hot-word lists within budgets of what costs work, and the FunASR socket's whole-file
buffer within the upload limit and the tenant's transcription quota."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from admin_api.auth import ADMIN
from asr_core.hotwords import HotwordLimits, HotwordListError, parse_hotwords
from common.rules import RequestRules, check_sample_rate
from tests.combined_server import bearer, make_server, new_key, services
from tests.helpers import tone, wav_bytes

NESTED = b"[" * 20_000 + b"]" * 20_000


@pytest.fixture(scope="module")
def server(transcriber, tmp_path_factory):
    app, database = make_server(
        transcriber,
        tmp_path_factory.mktemp("limits"),
        max_upload_mb=0.5,
        tenant_max_transcriptions=1,
        hotwords_max_active_lists=2,
    )
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        yield client, bearer(new_key(database, "tenant", "acme")), admin
    database.dispose()


def test_a_keyless_body_is_refused_before_it_is_read(server):
    client, _, _ = server
    sent = []

    def body():
        for _ in range(400):  # 40 MB if it were all read
            sent.append(1)
            yield NESTED[:100_000]

    response = client.post(
        "/v1/tokens", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    assert len(sent) <= 2


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/tenants/acme/settings", "/v1/tenants"])
def test_small_routes_take_small_bodies(server, path):
    client, key, admin = server
    headers = {**(admin if path == "/v1/tenants" else key), "content-type": "application/json"}
    method = client.patch if path.endswith("settings") else client.post
    response = method(path, content=NESTED * 2, headers=headers)
    assert response.status_code == 413
    assert "CALLSCRIBE_MAX_REQUEST_KB" in response.json()["error"]["message"]


def test_a_deeply_nested_small_body_is_a_4xx(server):
    client, key, _ = server
    small = b"[" * 7_000 + b"]" * 7_000
    headers = {**key, "content-type": "application/json"}
    assert client.post("/v1/tokens", content=small, headers=headers).status_code in (400, 413)
    shallow = b"[" * 900 + b"]" * 900  # within the values limit: parsed, and refused
    assert client.post("/v1/tokens", content=shallow, headers=headers).status_code in (400, 422)


def test_hotword_lists_have_their_own_body_limit(server):
    client, key, _ = server
    path = "/v1/tenants/acme/hotword-lists/big"
    body = json.dumps({"content": "x\n" * 1_100_000})  # 2.2 MB > 2048 KB
    response = client.put(path, content=body, headers={**key, "content-type": "application/json"})
    assert response.status_code == 413
    assert "CALLSCRIBE_HOTWORDS_MAX_BODY_KB" in response.json()["error"]["message"]


def many_aliases(count: int) -> str:
    return "Acme\t" + "\t".join(f"a{i}" for i in range(count)) + "\n"


def test_aliases_count_toward_a_lists_budget():
    limits = HotwordLimits(max_aliases=100, max_list_chars=10_000)
    assert len(parse_hotwords(many_aliases(100), "tsv", limits)) == 1
    with pytest.raises(HotwordListError, match="CALLSCRIBE_HOTWORDS_MAX_ALIASES"):
        parse_hotwords(many_aliases(101), "tsv", limits)
    with pytest.raises(HotwordListError, match="CALLSCRIBE_HOTWORDS_MAX_LIST_CHARS"):
        parse_hotwords("x" * 40 + "\n" + "y" * 40, "lines", HotwordLimits(max_list_chars=50))
    with pytest.raises(HotwordListError, match="for a list's text"):
        parse_hotwords("#" * 1_000_000, "lines", HotwordLimits(max_list_chars=1000))


def test_an_upload_with_too_many_aliases_is_refused_naming_the_limit(server):
    client, key, _ = server
    wav = wav_bytes(tone(0, 0.5, 16_000), 16_000)
    response = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", wav)},
        data={"hotwords": many_aliases(30_000)},
        headers=key,
    )
    assert response.status_code == 422
    assert "CALLSCRIBE_HOTWORDS_MAX_ALIASES" in response.json()["error"]["message"]


def test_stored_lists_are_within_the_alias_budget(server):
    client, key, _ = server
    path = "/v1/tenants/acme/hotword-lists"
    entries = [{"phrase": "Acme", "aliases": [f"a{i}" for i in range(20_001)]}]
    response = client.post(path, json={"name": "aliases", "entries": entries}, headers=key)
    assert response.status_code == 422
    assert "CALLSCRIBE_HOTWORDS_MAX_ALIASES" in response.json()["error"]["message"]


def test_a_tenant_has_a_limited_number_of_active_lists(server):
    client, key, _ = server
    path = "/v1/tenants/acme/hotword-lists"
    for name in ("one", "two"):
        body = {"name": name, "content": name}
        assert client.post(path, json=body, headers=key).status_code == 201
    third = client.post(path, json={"name": "three", "content": "three"}, headers=key)
    assert third.status_code == 422
    assert "CALLSCRIBE_HOTWORDS_MAX_ACTIVE_LISTS" in third.json()["error"]["message"]
    parked = {"name": "three", "content": "three", "active": False}
    assert client.post(path, json=parked, headers=key).status_code == 201
    assert client.patch(f"{path}/three", json={"active": True}, headers=key).status_code == 422
    assert client.patch(f"{path}/one", json={"active": False}, headers=key).status_code == 200
    assert client.patch(f"{path}/three", json={"active": True}, headers=key).status_code == 200


def test_a_stream_config_is_bounded_before_it_is_parsed(server):
    client, key, _ = server
    with client.websocket_connect("/v1/stream", headers=key) as ws:
        ws.send_text(json.dumps({"hotwords": "x\n" * 600_000}))
        assert ws.receive_json()["code"] == "config_too_large"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400


def test_funasr_whole_files_are_bounded_by_the_upload_limit(server):
    client, key, _ = server
    for config in ({"mode": "offline"}, {"mode": "2pass", "wav_format": "others"}):
        with client.websocket_connect("/v1/funasr", headers=key) as ws:
            ws.send_text(json.dumps({**config, "wav_name": "big", "is_speaking": True}))
            for _ in range(6):  # 600 KB > 0.5 MB
                ws.send_bytes(bytes(100_000))
            reply = ws.receive_json()
            assert reply["code"] == "payload_too_large" and reply["is_end"] is True
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert closed.value.code == 4413


def test_funasr_whole_files_count_as_the_tenants_transcriptions(server):
    client, key, _ = server
    offline = json.dumps({"mode": "offline", "wav_name": "a", "is_speaking": True})
    with client.websocket_connect("/v1/funasr", headers=key) as first:
        first.send_text(offline)
        first.send_bytes(bytes(3200))
        with client.websocket_connect("/v1/funasr", headers=key) as second:
            second.send_text(offline)
            assert second.receive_json()["code"] == "rate_limited"
            with pytest.raises(WebSocketDisconnect) as closed:
                second.receive_json()
        assert closed.value.code == 4429
        first.send_text(json.dumps({"is_speaking": False}))
        assert first.receive_json()["is_end"] is True
    with client.websocket_connect("/v1/funasr", headers=key) as again:  # the slot came back
        again.send_text(offline)
        again.send_bytes(bytes(3200))
        again.send_text(json.dumps({"is_speaking": False}))
        assert "error" not in again.receive_json()


@pytest.mark.parametrize("rate", [1e400, -1, 16000.5, "16k", True, [16000], 10**30])
def test_odd_sample_rates_are_refused_by_rule(rate):
    with pytest.raises(ValueError, match="sample rate"):
        check_sample_rate(rate)


def test_funasr_audio_fs_overflow_is_a_config_error(server):
    client, key, _ = server
    with client.websocket_connect("/v1/funasr", headers=key) as ws:
        ws.send_text('{"mode": "2pass", "wav_name": "a", "audio_fs": 1e400}')
        reply = ws.receive_json()
    assert reply["code"] == "invalid_config" and "sample rate" in reply["error"]


def test_request_lists_are_indexed_off_the_event_loop():
    rules = RequestRules()
    import asyncio

    async def build():
        return await rules.hotwords_in_thread("Acme\nGlobex")

    assert len(asyncio.run(build()).hotwords) == 2


def test_one_tenants_rebuild_does_not_hold_up_anothers(server):
    """Standing lists are rebuilt under a lock per tenant, not one for the whole process."""
    client, _, admin = server
    client.post("/v1/tenants", json={"id": "globex", "name": "Globex"}, headers=admin)
    hotwords = services(client).hotwords
    caller = type("Caller", (), {"tenant_id": "globex"})()
    with hotwords._lock("acme"):  # acme's rebuild is under way
        loaded = ThreadPoolExecutor(1).submit(hotwords, caller)
        assert loaded.result(timeout=30) is None  # globex has no lists, and was not held up


def test_json_bodies_are_capped_by_their_values_too(server):
    """`json.loads` holds the interpreter for as long as it runs; its time grows with the
    values, so a body within its byte limit is also counted by values as it arrives."""
    client, key, _ = server
    headers = {**key, "content-type": "application/json"}
    lists = "/v1/tenants/acme/hotword-lists/values"
    body = b"[" + b"[]," * 120_000 + b"[]]"  # 360 KB, within the routes' 2 MB
    refused = client.put(lists, content=body, headers=headers)
    assert refused.status_code == 413 and "values" in refused.json()["error"]["message"]
    form = {**key, "content-type": "multipart/form-data; boundary=b"}  # not JSON: not counted
    assert "values" not in client.put(lists, content=body, headers=form).text


def test_an_upload_over_its_tenants_quota_gets_no_work_done(server):
    """The quota is checked before the upload's hot-words are parsed: 429, not their 422."""
    client, key, _ = server
    acme = type("Caller", (), {"tenant_id": "acme"})()
    wav = wav_bytes(tone(0, 0.5, 16_000), 16_000)
    with services(client).asr.quotas.transcription(acme):  # its one transcription is running
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", wav)},
            data={"hotwords": many_aliases(30_000)},
            headers=key,
        )
    assert response.status_code == 429
