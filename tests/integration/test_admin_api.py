"""Admin API on a migrated database, SQLite and a real PostgreSQL (every test runs on both):
tenants, keys, hot-word lists, isolation."""

import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api import migrate
from admin_api.auth import ADMIN
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.main import create_admin_app
from tests.helpers import fill_path, openapi_routes, query_parameters, wav_bytes
from tests.stored_calls import segment, store_call, store_job


@pytest.fixture
def database(database_url):
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def published():
    return []


@pytest.fixture
def client(database, published):
    app = create_admin_app(database, publish=lambda *event: published.append(event))
    with TestClient(app) as test_client:
        yield test_client


def new_key(database, scope, tenant_id=None) -> dict:
    with Session(database) as session:
        _, new = keys.create(session, scope, tenant_id, "test")
        session.commit()
    return {"authorization": f"Bearer {new.secret}"}


@pytest.fixture
def admin(database):
    return new_key(database, ADMIN)


@pytest.fixture
def tenants(client, admin, database):
    """Two tenants, each with its own key."""
    headers = {}
    for tenant in ("acme", "globex"):
        assert (
            client.post(
                "/v1/tenants", json={"id": tenant, "name": tenant.title()}, headers=admin
            ).status_code
            == 201
        )
        created = client.post(f"/v1/tenants/{tenant}/keys", json={"name": "ops"}, headers=admin)
        headers[tenant] = {"authorization": f"Bearer {created.json()['key']}"}
    return headers


TSV = "ZhangSan\t张叁\nCRISPR\t基因编辑\nOzempic\n"


def make_list(client, tenant, headers, name="products", content=TSV):
    response = client.post(
        f"/v1/tenants/{tenant}/hotword-lists",
        json={"name": name, "content": content, "format": "auto"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_tenant_crud_needs_an_admin_key(client, admin, tenants):
    assert client.post("/v1/tenants", json={"id": "x-corp", "name": "X"}).status_code == 401
    refused = client.post(
        "/v1/tenants", json={"id": "x-corp", "name": "X"}, headers=tenants["acme"]
    )
    assert refused.status_code == 403
    assert [t["id"] for t in client.get("/v1/tenants", headers=admin).json()] == ["acme", "globex"]
    assert client.get("/v1/tenants/acme", headers=tenants["acme"]).json()["name"] == "Acme"
    renamed = client.patch("/v1/tenants/acme", json={"name": "ACME Corp"}, headers=admin)
    assert renamed.json()["name"] == "ACME Corp"
    assert (
        client.post("/v1/tenants", json={"id": "acme", "name": "again"}, headers=admin).status_code
        == 409
    )
    bad = client.post("/v1/tenants", json={"id": "Not A Slug", "name": "x"}, headers=admin)
    assert bad.status_code == 422


def test_keys_are_shown_once_and_revocation_is_immediate(client, admin, tenants):
    created = client.post("/v1/tenants/acme/keys", json={"name": "agent desk"}, headers=admin)
    secret, prefix = created.json()["key"], created.json()["prefix"]
    assert secret.startswith(prefix + "_")
    listed = client.get("/v1/tenants/acme/keys", headers=admin).json()
    assert all("key" not in k for k in listed)
    assert prefix in [k["prefix"] for k in listed]
    headers = {"x-api-key": secret}
    assert client.get("/v1/tenants/acme", headers=headers).status_code == 200
    assert client.delete(f"/v1/tenants/acme/keys/{prefix}", headers=admin).status_code == 204
    assert client.get("/v1/tenants/acme", headers=headers).status_code == 401
    for wrong in ("Bearer nonsense", "Bearer cs_00000000_guess", f"Bearer {secret}x"):
        assert client.get("/v1/tenants/acme", headers={"authorization": wrong}).status_code == 401


def test_hotword_list_life_cycle(client, tenants, published):
    acme = tenants["acme"]
    created = make_list(client, "acme", acme)
    assert created["version"] == 1
    assert [e["phrase"] for e in created["entries"]] == ["ZhangSan", "CRISPR", "Ozempic"]
    assert created["entries"][0]["aliases"] == ["张叁"]
    assert published == [("acme", "products", 1)]

    url = "/v1/tenants/acme/hotword-lists/products"
    patched = client.patch(
        url,
        json={
            "add": [{"phrase": "Xeljanz", "weight": 5}],
            "remove": ["Ozempic"],
            "base_version": 1,
        },
        headers=acme,
    )
    assert patched.json()["version"] == 2
    assert [e["phrase"] for e in patched.json()["entries"]] == ["ZhangSan", "CRISPR", "Xeljanz"]

    stale = client.put(url, json={"content": "A\nB\n", "base_version": 1}, headers=acme)
    assert stale.status_code == 409 and "version 2" in stale.json()["error"]["message"]

    replaced = client.put(
        url, json={"content": '{"阿里巴巴": 20}', "base_version": 2}, headers=acme
    )
    assert replaced.json()["version"] == 3
    assert replaced.json()["entries"] == [{"phrase": "阿里巴巴", "weight": 20.0, "aliases": []}]

    exported = client.get(f"{url}/export", params={"format": "weighted"}, headers=acme)
    assert exported.text == "阿里巴巴 20\n"
    old = client.get(f"{url}/export", params={"format": "tsv", "version": 1}, headers=acme)
    assert old.text == TSV

    versions = client.get(f"{url}/versions", headers=acme).json()
    assert [v["version"] for v in versions] == [3, 2, 1]
    rolled = client.post(f"{url}/rollback", json={"version": 1}, headers=acme)
    assert rolled.json()["version"] == 4
    assert [e["phrase"] for e in rolled.json()["entries"]] == ["ZhangSan", "CRISPR", "Ozempic"]
    assert published[-1] == ("acme", "products", 4)  # the tenant's fourth hot-word change

    audit = client.get("/v1/tenants/acme/audit", headers=acme).json()
    actions = [event["action"] for event in audit]
    assert actions[:5] == [
        "hotwords.rollback",
        "hotwords.replace",
        "hotwords.patch",
        "hotwords.create",
        "key.create",
    ]

    assert client.delete(url, headers=acme).status_code == 204
    assert client.get(url, headers=acme).status_code == 404


def test_bad_imports_name_the_line_and_change_nothing(client, tenants):
    acme = tenants["acme"]
    make_list(client, "acme", acme)
    url = "/v1/tenants/acme/hotword-lists/products"
    cases = [
        ("list.tsv", "fine\n" + "x" * 70 + "\n", "line 2: phrase is 70 characters"),
        ("list.txt", "a 1\nb many\n", None),
        ("weights.txt", "a 1\nb 0\n", "line 2: weight 0"),
        ("list.json", '{\n "a": 1\n "b": 2\n}', "line 3: invalid JSON"),
        ("latin1.txt", b"ok\n" + b"caf\xe9\n", "line 2: not UTF-8"),
        ("long.txt", "惠派国际公司科技有限公司惠派国际\n", "line 1: phrase takes about"),
    ]
    for filename, body, message in cases:
        data = body if isinstance(body, bytes) else body.encode()
        response = client.post(
            f"{url}/import",
            files={"file": (filename, data)},
            data={"format": "weighted" if filename == "weights.txt" else "auto"},
            headers=acme,
        )
        if message is None:  # `b many` is not a weight, so the file reads as plain phrases
            assert response.status_code == 200
            continue
        assert response.status_code == 422, (filename, response.text)
        assert message in response.json()["error"]["message"]
    versions = client.get(f"{url}/versions", headers=acme).json()
    assert [v["version"] for v in versions] == [2, 1]  # only the one good import applied


def test_oversized_lists_are_refused(client, tenants, database):
    many = "".join(f"phrase{i}\n" for i in range(5001))
    response = client.post(
        "/v1/tenants/acme/hotword-lists",
        json={"name": "big", "content": many},
        headers=tenants["acme"],
    )
    assert response.status_code == 422
    assert "line 5001: more than 5000 phrases" in response.json()["error"]["message"]
    assert client.get("/v1/tenants/acme/hotword-lists", headers=tenants["acme"]).json() == []


def test_every_route_refuses_unauthenticated_calls(client, tenants):
    checked = 0
    for path, method in openapi_routes(client):
        response = client.request(method, fill_path(path, "acme"))
        assert response.status_code == 401, (method, path, response.status_code)
        checked += 1
    assert checked >= 15


def test_no_route_lets_one_tenant_reach_another(client, admin, tenants):
    """Driven by the OpenAPI spec, so a new route cannot escape the check."""
    make_list(client, "globex", tenants["globex"])
    client.post("/v1/tenants/globex/keys", json={}, headers=admin)
    acme = tenants["acme"]
    checked = 0
    for path, method in openapi_routes(client):
        if "{tenant_id}" not in path:
            continue
        bodies = {"json": {"name": "x", "content": "a\n", "version": 1, "add": []}}
        if path.endswith("/import"):
            bodies = {"files": {"file": ("l.txt", b"a\n")}}
        response = client.request(method, fill_path(path, "globex"), headers=acme, **bodies)
        assert response.status_code in (403, 404), (method, path, response.status_code)
        checked += 1
    assert checked >= 12
    # ... and globex's data is untouched
    after = client.get("/v1/tenants/globex/hotword-lists/products", headers=tenants["globex"])
    assert after.json()["version"] == 1
    assert re.match(r"^Globex$", client.get("/v1/tenants/globex", headers=admin).json()["name"])


def test_no_route_shows_one_tenant_another_tenants_calls(
    client, admin, tenants, database, tmp_path
):
    """Driven by the OpenAPI spec: every route with a call, job or leg in its path answers
    globex's own key and is not found (404) for acme's; every route taking a `tenant_id`
    query parameter refuses acme naming globex. Recordings take stream tokens, never
    another tenant's."""
    folder = tmp_path / "recordings" / "globex" / "g-call"
    folder.mkdir(parents=True)
    (folder / "mixed.wav").write_bytes(wav_bytes(np.zeros(8000, np.float32), 16_000))
    store_call(
        database,
        "globex",
        "g-call",
        live=[segment("mixed", 0, 1000, "globex secret")],
        recording_path=str(folder),
    )
    store_job(database, "globex", "g-job", [segment("mixed", 0, 1000, "globex secret")])
    acme, globex = tenants["acme"], tenants["globex"]
    checked = 0
    for path, method in openapi_routes(client):
        if not {"{call_id}", "{job_id}", "{leg}"} & set(re.findall(r"{\w+}", path)):
            continue
        url = fill_path(path, "globex", call_id="g-call", job_id="g-job")
        if method == "get" and "transcript" not in path:
            owned = client.request(method, url, headers=globex)
            assert owned.status_code == 200, (method, path, owned.status_code)
        response = client.request(method, url, headers=acme)
        assert response.status_code == 404, (method, path, response.status_code)
        checked += 1
    assert checked >= 6
    scoped = 0
    for path, method in openapi_routes(client):
        if "tenant_id" not in query_parameters(client, path, method) or "{" in path:
            continue
        params = {"tenant_id": "globex", "q": "secret"}
        response = client.request(method, path, params=params, headers=acme)
        assert response.status_code == 404, (method, path, response.status_code)
        scoped += 1
    assert scoped >= 2
    recording = "/v1/calls/g-call/recordings/mixed"
    minted = client.post("/v1/tokens", json={"tenant_id": "acme"}, headers=admin).json()
    assert client.get(recording, params={"token": minted["token"]}).status_code == 404
    assert client.get(recording).status_code == 401
    assert client.post("/v1/tokens", json={"tenant_id": "globex"}, headers=acme).status_code == 404
    minted = client.post("/v1/tokens", json={"tenant_id": "globex"}, headers=admin).json()
    assert client.get(recording, params={"token": minted["token"]}).status_code == 200
    # Tokens open media only: the call's other routes still need the key.
    assert client.get("/v1/calls/g-call", params={"token": minted["token"]}).status_code == 401


def test_deleting_a_tenant_removes_its_lists_and_keys(client, admin, tenants):
    make_list(client, "acme", tenants["acme"])
    assert client.delete("/v1/tenants/acme", headers=admin).status_code == 204
    assert client.get("/v1/tenants/acme", headers=admin).status_code == 404
    assert client.get("/v1/tenants/acme", headers=tenants["acme"]).status_code == 401
    assert client.get("/v1/tenants/globex", headers=tenants["globex"]).status_code == 200
