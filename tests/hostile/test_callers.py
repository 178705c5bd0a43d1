"""Who may call: forged or odd credentials are refused (never a 500, never downgraded to the
local tenant), and in local mode a web page from another site cannot use the server, neither
cross-origin nor by DNS rebinding."""

import logging

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from admin_api.auth import ADMIN
from callscribe.config import Settings
from common.logs import RedactSecrets
from tests.combined_server import bearer, make_server, new_key

LOCAL = "http://127.0.0.1:7860"
SOCKET = "ws://127.0.0.1:7860"


@pytest.fixture(scope="module")
def local_app(transcriber, tmp_path_factory):
    app, database = make_server(
        transcriber,
        tmp_path_factory.mktemp("local"),
        auth="local",
        allowed_origins="https://captions.example",
    )
    admin = new_key(database, ADMIN)
    yield app, admin
    database.dispose()


@pytest.fixture(scope="module")
def local(local_app):
    app, _ = local_app
    with TestClient(app, base_url=LOCAL, client=("127.0.0.1", 50000)) as client:
        yield client


def socket_refusal(client, url, headers=None) -> int:
    """The close code of a socket refused before it was accepted."""
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(url, headers=headers or {}),
    ):
        pass
    return closed.value.code


def test_a_non_ascii_token_is_refused_not_a_crash(local):
    for token in ("cst_abc.\u00e9", "cst_\u00e9.\u4e2d", "\u00e9"):
        path = f"/v1/hotwords/active?token={token}"
        assert local.get(path).status_code == 401
    with local.websocket_connect(f"{SOCKET}/v1/stream?token=cst_a.%C3%A9") as ws:
        assert ws.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer bogus"},
        {"authorization": "Bearer cs_0000_bogus"},
        {"x-api-key": "sk-not-a-callscribe-key"},
        {"authorization": "Bearer \u00e9\u00e9".encode("utf-8")},
    ],
)
def test_a_present_but_unknown_key_is_refused_on_loopback(local, headers):
    assert local.get("/v1/hotwords/active", headers=headers).status_code == 401


def test_no_key_or_the_local_key_act_as_the_local_tenant(local):
    assert local.get("/v1/hotwords/active").status_code == 200
    assert local.get("/v1/hotwords/active", headers=bearer("local")).status_code == 200


def test_local_mode_refuses_other_sites_pages(local):
    evil = {"origin": "https://evil.example"}
    assert local.get("/v1/hotwords/active", headers=evil).status_code == 403
    upload = local.post("/v1/audio/transcriptions", headers=evil, files={"file": ("a", b"x")})
    assert upload.status_code == 403
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
        assert socket_refusal(local, f"{SOCKET}/v1/stream", {"origin": origin}) == 4403


def test_local_mode_refuses_dns_rebinding(local_app):
    app, _ = local_app
    with TestClient(app, base_url="http://rebind.evil.example:7860", client=("127.0.0.1", 1)) as c:
        assert c.get("/v1/hotwords/active").status_code == 403
        assert c.get("/healthz").status_code == 403
        assert socket_refusal(c, "ws://rebind.evil.example:7860/v1/stream") == 4403


def test_local_mode_lets_its_own_and_allowed_pages_in(local):
    assert local.get("/v1/hotwords/active", headers={"origin": LOCAL}).status_code == 200
    allowed = {"origin": "https://captions.example"}
    assert local.get("/v1/hotwords/active", headers=allowed).status_code == 200
    with local.websocket_connect(f"{SOCKET}/v1/stream", headers={"origin": LOCAL}) as ws:
        ws.send_json({"type": "end"})


def test_keys_mode_needs_no_origin_check(transcriber, tmp_path):
    """Tokens are made for browsers on any page: keys mode checks credentials, not origins."""
    app, database = make_server(transcriber, tmp_path)
    key = new_key(database, ADMIN)
    with TestClient(app, base_url="http://asr.example.com") as client:
        headers = {**bearer(key), "origin": "https://app.example"}
        assert client.get("/v1/tenants", headers=headers).status_code == 200
    database.dispose()


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    assert Settings(_env_file=None).trusted_proxies == ()
    proxies = Settings(_env_file=None, trusted_proxies="10.0.0.1, 192.168.0.0/16").trusted_proxies
    assert proxies == ("10.0.0.1", "192.168.0.0/16")
    with pytest.raises(ValueError):
        Settings(_env_file=None, trusted_proxies="proxy.example")


def test_stream_tokens_stay_out_of_access_logs():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/stream?language=en&token=cst_abc.def", "1.1", 101),
        None,
    )
    RedactSecrets().filter(record)
    line = record.getMessage()
    assert "cst_abc" not in line and "token=[redacted]" in line and "language=en" in line
