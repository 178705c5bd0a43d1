"""Webhooks are always signed with a real secret of the tenant: a job's own `webhook_url`
for a tenant that never set one makes it (shown in the tenant's settings), never an empty
key anyone could sign with."""

from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api.auth import ADMIN
from admin_api.models import Job
from tests.combined_server import bearer, make_server, new_key
from tests.helpers import tone, wav_bytes
from worker.tasks.webhooks import _target, sign


def test_a_jobs_own_webhook_gets_a_real_secret(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path, outbound_allow_private=True)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        key = bearer(new_key(database, "tenant", "acme"))
        before = client.get("/v1/tenants/acme/settings", headers=key).json()
        assert not before.get("webhook_secret")
        job = client.post(
            "/v1/jobs",
            files={"file": ("a.wav", wav_bytes(tone(0, 0.5, 16_000), 16_000))},
            data={"webhook_url": "http://127.0.0.1:9/hook"},
            headers=key,
        )
        assert job.status_code == 202
        shown = client.get("/v1/tenants/acme/settings", headers=key).json()["webhook_secret"]
    assert shown.startswith("whsec_") and len(shown) >= 32
    with Session(database) as session:
        url, secret = _target(session, session.get(Job, job.json()["id"]))
    assert (url, secret) == ("http://127.0.0.1:9/hook", shown)
    assert sign(secret, "1", b"{}") != sign("", "1", b"{}")
    database.dispose()
