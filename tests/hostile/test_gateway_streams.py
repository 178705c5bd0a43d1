"""The ASR core's entry point for gateways (`/v1/stream` with `X-Callscribe-Tenant`): only the
deployment's service key may name a tenant, whatever else is presented, and every refusal is
an `unauthorized` event and close code 4401 before any audio is read."""

import json

import pytest
from fastapi.testclient import TestClient

from admin_api.auth import ADMIN
from tests.combined_server import bearer, make_server, new_key
from tests.helpers import refused_stream

SERVICE_KEY = "s3rvice-key-for-gateways"
TENANT = "x-callscribe-tenant"


@pytest.fixture(scope="module")
def core(transcriber, tmp_path_factory):
    app, database = make_server(
        transcriber, tmp_path_factory.mktemp("gateway-streams"), asr_service_key=SERVICE_KEY
    )
    with TestClient(app) as client:
        admin = new_key(database, ADMIN)
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=bearer(admin))
        yield client, admin, new_key(database, "tenant", "acme")
    database.dispose()


def hostile(admin: str, tenant_key: str) -> dict[str, dict]:
    return {
        "wrong service key": {**bearer("wrong"), TENANT: "acme"},
        "service key with a suffix": {**bearer(SERVICE_KEY + "x"), TENANT: "acme"},
        "service key prefix": {**bearer(SERVICE_KEY[:-1]), TENANT: "acme"},
        "huge key": {**bearer("k" * 8000), TENANT: "acme"},
        "no key": {TENANT: "acme"},
        "tenant key naming its own tenant": {**bearer(tenant_key), TENANT: "acme"},
        "tenant key naming another": {**bearer(tenant_key), TENANT: "globex"},
        "admin key naming a tenant": {**bearer(admin), TENANT: "acme"},
        "service key without a tenant": bearer(SERVICE_KEY),
        "service key, empty tenant": {**bearer(SERVICE_KEY), TENANT: ""},
        "service key, unknown tenant": {**bearer(SERVICE_KEY), TENANT: "globex"},
        "service key, huge tenant": {**bearer(SERVICE_KEY), TENANT: "a" * 8000},
        "service key, injected tenant": {**bearer(SERVICE_KEY), TENANT: "acme' OR '1'='1"},
        "service key in X-API-Key, wrong": {"x-api-key": "nope", TENANT: "acme"},
    }


@pytest.mark.parametrize("case", list(hostile("", "")))
def test_only_the_service_key_acts_for_the_tenant_it_names(core, case):
    client, admin, tenant_key = core
    error = refused_stream(client, "/v1/stream", 4401, headers=hostile(admin, tenant_key)[case])
    assert error["code"] == "unauthorized" and len(error["message"]) < 200, error


def test_the_service_key_streams_for_the_tenant_it_names(core):
    client, _, tenant_key = core
    for headers in (
        {**bearer(SERVICE_KEY), TENANT: "acme"},
        {"x-api-key": SERVICE_KEY, TENANT: "acme"},
    ):
        with client.websocket_connect("/v1/stream", headers=headers) as ws:
            ws.send_text(json.dumps({"language": "en"}))
            assert ws.receive_json()["type"] == "ready"
    with client.websocket_connect("/v1/stream", headers=bearer(tenant_key)) as ws:  # as before
        ws.send_text(json.dumps({"language": "en"}))
        assert ws.receive_json()["type"] == "ready"
    # The admin API never takes the service key.
    assert (
        client.get("/v1/tenants/acme", headers={**bearer(SERVICE_KEY), TENANT: "acme"}).status_code
        == 401
    )
