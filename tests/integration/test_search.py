"""`GET /v1/search` on a migrated database, SQLite (FTS5 trigram) and a real PostgreSQL
(pg_trgm): Mandarin substrings, English phrases, filters, ranking, redaction, the index kept by
the database's triggers as segments are stored and replaced, and tenants walled off."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from admin_api import migrate
from admin_api.auth import ADMIN
from admin_api.crud import transcripts
from admin_api.db import make_engine
from admin_api.main import create_admin_app
from tests.combined_server import bearer, new_key
from tests.stored_calls import segment, store_call, store_job

DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def database(database_url):
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def api(database):
    with TestClient(create_admin_app(database)) as client:
        admin = bearer(new_key(database, ADMIN))
        for tenant in ("acme", "globex"):
            assert client.post(
                "/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin
            ).is_success
        keys = {t: bearer(new_key(database, "tenant", t)) for t in ("acme", "globex")}
        yield client, admin, keys


def search(client, headers, q: str, **params) -> dict:
    response = client.get("/v1/search", params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page: dict) -> list[str]:
    return [result["id"] for result in page["results"]]


@pytest.fixture
def calls(database, api):
    """acme: a Mandarin refund call and an English cancellation call; globex: the same words."""
    store_call(
        database,
        "acme",
        "refund-zh",
        live=[
            segment("customer", 1000, 4000, "我想申请退款"),
            segment("agent", 4500, 7000, "好的请稍等"),
        ],
        post=[
            segment("customer", 1000, 4000, "我想申请退款。"),
            segment("agent", 4500, 7000, "好的，请稍等。"),
            segment("customer", 8000, 11000, "退款什么时候到账"),
        ],
        started_at=DAY,
        language="zh",
    )
    store_call(
        database,
        "acme",
        "cancel-en",
        live=[segment("customer", 500, 3500, "I want to cancel my subscription")],
        started_at=DAY + timedelta(hours=2),
        language="en",
    )
    store_call(
        database,
        "globex",
        "globex-1",
        live=[segment("customer", 0, 3000, "我想申请退款 cancel my subscription")],
        started_at=DAY + timedelta(hours=1),
    )
    return api


def test_mandarin_substrings_are_found(calls):
    client, _, keys = calls
    for query in ("退款", "申请退款", "请稍", "退款什么时候"):
        page = search(client, keys["acme"], query)
        assert ids(page) == ["refund-zh"], query
    page = search(client, keys["acme"], "退款")
    [result] = page["results"]
    assert result["match_count"] == 3  # live once, post-call twice
    said = [m["time_ms"] for m in result["matches"]]
    assert said == sorted(said)  # in the order they are said
    first = next(m for m in result["matches"] if m["pass"] == "live")
    assert first["leg"] == "customer" and first["start_ms"] == 1000
    assert first["snippet"][slice(*first["highlights"][0])] == "退款"
    # 我想申请退款 over 1-4 s, one character per 500 ms: 退 is the fifth, said at 3.0 s.
    assert first["time_ms"] == 3000
    assert search(client, keys["acme"], "没有说过")["results"] == []


def test_english_phrases_case_and_spacing(calls):
    client, _, keys = calls
    for query in ("cancel my", "CANCEL  MY subscription", "subscr", "my"):
        assert ids(search(client, keys["acme"], query)) == ["cancel-en"], query
    [match] = search(client, keys["acme"], "Subscription")["results"][0]["matches"]
    assert match["pass"] == "live"
    assert match["snippet"][slice(*match["highlights"][0])] == "subscription"
    assert match["time_ms"] == 500 + 5 * 500  # the sixth word of six over 3 s (500 ms each)


def test_another_tenants_segments_are_never_found(calls):
    client, admin, keys = calls
    for query in ("退款", "申请退款", "cancel my subscription", "sub"):
        found = search(client, keys["acme"], query)
        assert "globex-1" not in ids(found)
        assert all(r["tenant_id"] == "acme" for r in found["results"])
        assert ids(search(client, keys["globex"], query)) == ["globex-1"]
    refused = client.get(
        "/v1/search", params={"q": "退款", "tenant_id": "globex"}, headers=keys["acme"]
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "tenant_not_found"
    assert set(ids(search(client, admin, "退款"))) == {"refund-zh", "globex-1"}
    assert ids(search(client, admin, "退款", tenant_id="globex")) == ["globex-1"]
    assert client.get("/v1/search", params={"q": "退款"}).status_code == 401


def test_filters_and_ranking(calls, database):
    client, _, keys = calls
    acme = keys["acme"]
    assert search(client, acme, "退款", **{"pass": "live"})["results"][0]["match_count"] == 1
    assert search(client, acme, "退款", **{"pass": "postcall"})["results"][0]["match_count"] == 2
    assert ids(search(client, acme, "退款", leg="agent")) == []
    assert ids(search(client, acme, "请稍等", leg="agent")) == ["refund-zh"]
    later = (DAY + timedelta(hours=1)).isoformat()
    assert ids(search(client, acme, "s", since=later)) == ["cancel-en"]
    assert ids(search(client, acme, "退款", until=later)) == ["refund-zh"]
    assert ids(search(client, acme, "退款", since=later)) == []
    # More matching segments rank first; ties go to the newest call.
    store_call(
        database,
        "acme",
        "cancel-twice",
        live=[
            segment("customer", 0, 2000, "cancel it"),
            segment("customer", 3000, 5000, "please cancel"),
        ],
        started_at=DAY - timedelta(days=1),
    )
    page = search(client, acme, "cancel")
    assert ids(page) == ["cancel-twice", "cancel-en"] and page["total"] == 2
    assert ids(search(client, acme, "cancel", limit=1, offset=1)) == ["cancel-en"]


def test_batch_jobs_are_found_too(database, calls):
    client, _, keys = calls
    store_job(
        database,
        "acme",
        "job-1",
        [segment("mixed", 0, 4000, "订单退款已经处理")],
        file_name="ivr.wav",
    )
    page = search(client, keys["acme"], "退款")
    assert {(r["type"], r["id"]) for r in page["results"]} == {
        ("call", "refund-zh"),
        ("job", "job-1"),
    }
    job = next(r for r in page["results"] if r["type"] == "job")
    assert job["file_name"] == "ivr.wav" and job["matches"][0]["pass"] == "postcall"
    assert ids(search(client, keys["acme"], "订单退款", **{"pass": "live"})) == []
    assert ids(search(client, keys["globex"], "订单退款")) == []


def test_the_index_follows_a_rerun_of_the_post_call_pass(database, calls):
    client, _, keys = calls
    with Session(database) as session:
        transcripts.replace(
            session, [segment("customer", 1000, 4000, "我要投诉")], call_id="refund-zh"
        )
        session.commit()
    assert search(client, keys["acme"], "退款", **{"pass": "postcall"})["results"] == []
    assert ids(search(client, keys["acme"], "投诉")) == ["refund-zh"]
    assert search(client, keys["acme"], "退款")["results"][0]["match_count"] == 1  # live still


def test_only_redacted_text_is_indexed(database, api):
    client, admin, keys = api
    redacting = client.patch(
        "/v1/tenants/acme/settings", json={"redact": True, "keep_original": False}, headers=admin
    )
    assert redacting.status_code == 200
    card = "4111 1111 1111 1111"
    store_call(
        database,
        "acme",
        "card-call",
        live=[segment("customer", 0, 3000, f"my card is {card}")],
        post=[
            segment(
                "customer",
                0,
                3000,
                "my card is [CARD]",
                original_text=f"my card is {card}",
            )
        ],
    )
    acme = keys["acme"]
    assert search(client, acme, "1111")["results"] == []  # neither the original nor live
    [hit] = search(client, acme, "[CARD]")["results"]
    assert [m["pass"] for m in hit["matches"]] == ["postcall"]
    # Keeping originals: the live finals (stored as sent) are indexed again, at once.
    client.patch("/v1/tenants/acme/settings", json={"keep_original": True}, headers=admin)
    [hit] = search(client, acme, "1111")["results"]
    assert [m["pass"] for m in hit["matches"]] == ["live"]
    client.patch("/v1/tenants/acme/settings", json={"keep_original": False}, headers=admin)
    assert search(client, acme, "1111")["results"] == []


def test_short_queries_are_bounded_by_tenant(database, calls):
    """1-2 characters have no trigram: a LIKE over the tenant's own newest segments."""
    client, _, keys = calls
    page = search(client, keys["acme"], "款")
    assert ids(page) == ["refund-zh"] and page["complete"] is True
    assert ids(search(client, keys["globex"], "款")) == ["globex-1"]
    assert ids(search(client, keys["acme"], "I ")) == ["cancel-en"]
    assert (
        ids(search(client, keys["acme"], "%")) == []
        and ids(search(client, keys["acme"], "_")) == []
    )


OLD_ROWS = [
    "INSERT INTO tenant (id, name, created_at, hotword_version) "
    "VALUES ('acme', 'Acme', '2026-11-30 09:00:00', 0)",
    "INSERT INTO call (id, tenant_id, source, status, started_at) "
    "VALUES ('old', 'acme', 'sip', 'ended', '2026-11-30 09:00:00')",
    "INSERT INTO transcript_segment (call_id, leg, kind, start_ms, end_ms, text, words) "
    "VALUES ('old', 'mixed', 'live', 0, 1000, '旧的退款记录', '[]')",
]


def test_segments_stored_before_the_migration_are_indexed(tmp_path):
    """0007 indexes what earlier versions stored."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0f948bd01302")
    engine = make_engine(url)
    with engine.begin() as connection:
        for statement in OLD_ROWS:
            connection.execute(text(statement))
    engine.dispose()
    migrate.upgrade(url)
    engine = make_engine(url)
    with TestClient(create_admin_app(engine)) as client:
        page = search(client, bearer(new_key(engine, "tenant", "acme")), "退款记录")
    assert ids(page) == ["old"]
    engine.dispose()


EXPLAIN = "EXPLAIN SELECT segment_id FROM transcript_search WHERE text ILIKE '%申请退款%'"


def test_postgres_answers_mandarin_from_the_trigram_index(postgres_server):
    """With a UTF-8 LC_CTYPE (as production databases have) pg_trgm sees Chinese characters,
    and a 3+ character query is answered from the GIN index."""
    url = postgres_server.new_database(ctype="C.UTF-8")
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("SET enable_seqscan = off"))
            plan = connection.execute(text(EXPLAIN)).scalars().all()
        engine.dispose()
        assert any("ix_transcript_search_text_trgm" in line for line in plan), plan
    finally:
        postgres_server.drop_database(url)
