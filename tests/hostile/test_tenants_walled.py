"""What one tenant can learn of or take from another through shared ids and shared caps: a
call id another tenant uses gets the answer of any used id (not whether that call is live),
and one tenant cannot take every AudioSocket reservation of the process."""

import uuid

import pytest
from fastapi.testclient import TestClient

from admin_api.auth import ADMIN
from telephony.refusal import CallRefused
from tests.combined_server import bearer, make_server, new_key, open_call


@pytest.fixture(scope="module")
def server(transcriber, tmp_path_factory):
    app, database = make_server(
        transcriber,
        tmp_path_factory.mktemp("walls"),
        audiosocket_port=0,
        tenant_max_reservations=3,
    )
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        keys = {}
        for tenant in ("acme", "globex"):
            client.post("/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin)
            keys[tenant] = bearer(new_key(database, "tenant", tenant))
        yield client, keys
    database.dispose()


def refusal(client, tenant, call_id) -> tuple[int, str]:
    with pytest.raises(CallRefused) as refused:
        open_call(client, tenant, {}, call_id=call_id)
    return refused.value.status, refused.value.reason


def test_another_tenants_call_id_tells_nothing_of_that_call(server):
    client, _ = server
    live = open_call(client, "acme", {}, call_id="shared-live")
    past = open_call(client, "acme", {}, call_id="shared-past")
    client.portal.call(past.end)
    own_past = open_call(client, "globex", {}, call_id="globex-past")
    client.portal.call(own_past.end)
    answer_live, answer_past = (
        refusal(client, "globex", "shared-live"),
        refusal(client, "globex", "shared-past"),
    )
    answer_own = refusal(client, "globex", "globex-past")
    assert answer_live[0] == answer_past[0] == answer_own[0] == 409
    assert {
        a[1].replace(i, "ID")
        for a, i in (
            (answer_live, "shared-live"),
            (answer_past, "shared-past"),
            (answer_own, "globex-past"),
        )
    } == {answer_own[1].replace("globex-past", "ID")}
    assert refusal(client, "acme", "shared-live")[0] == 486  # the owner learns it is live
    client.portal.call(live.end)


def test_reservations_are_capped_per_tenant(server):
    client, keys = server
    path = "/v1/media-streams/audiosocket/reservations"
    for _ in range(3):
        assert client.post(path, json={}, headers=keys["acme"]).status_code == 201
    over = client.post(path, json={}, headers=keys["acme"])
    assert over.status_code == 429
    assert "CALLSCRIBE_TENANT_MAX_RESERVATIONS" in over.json()["error"]["message"]
    assert client.post(path, json={}, headers=keys["globex"]).status_code == 201


def test_a_reservation_for_another_tenants_live_call_is_an_ordinary_conflict(server):
    client, keys = server
    call_id = str(uuid.uuid4())
    live = open_call(client, "acme", {}, call_id=call_id)
    path = "/v1/media-streams/audiosocket/reservations"
    theirs = client.post(path, json={"call_id": call_id}, headers=keys["globex"]).json()
    assert theirs["error"]["code"] == "already_reserved"
    client.portal.call(live.end)
