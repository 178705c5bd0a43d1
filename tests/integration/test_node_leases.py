"""Node leases: the calls of a process that died and never came back are marked interrupted by
the others; a live process's calls are never touched. On SQLite and a real PostgreSQL."""

import asyncio
from datetime import timedelta

from sqlmodel import Session, select

from admin_api import migrate
from admin_api.db import make_engine
from admin_api.models import Call, NodeLease, Tenant, utcnow
from telephony.leases import NodeLeases


def seeded(url: str):
    """A database with two other nodes holding a call each: `gone` (its lease ran out two
    minutes ago) and `alive` (renewed just now), and an ended call of `gone`."""
    migrate.upgrade(url)
    database = make_engine(url)
    now = utcnow()
    with Session(database) as db:
        db.add(Tenant(id="acme", name="acme"))
        db.add(NodeLease(node="gone", renewed_at=now - timedelta(minutes=2)))
        db.add(NodeLease(node="alive", renewed_at=now))
        db.commit()
        db.add(Call(id="on-gone", tenant_id="acme", source="sip", node="gone"))
        db.add(Call(id="on-alive", tenant_id="acme", source="sip", node="alive"))
        db.add(Call(id="ended", tenant_id="acme", source="sip", node="gone", status="ended"))
        db.commit()
    return database


def statuses(database) -> dict[str, str]:
    with Session(database) as db:
        return {call.id: call.status for call in db.exec(select(Call))}


def leases(database) -> set[str]:
    with Session(database) as db:
        return set(db.exec(select(NodeLease.node)))


def test_calls_of_an_expired_node_are_marked_interrupted(database_url):
    database = seeded(database_url)
    try:
        assert NodeLeases(database, "me", expiry_s=60).renew_and_sweep() == 1
        assert statuses(database) == {
            "on-gone": "interrupted",
            "on-alive": "active",
            "ended": "ended",
        }
        assert leases(database) == {"me", "alive"}
        assert NodeLeases(database, "me", expiry_s=60).renew_and_sweep() == 0  # idempotent
    finally:
        database.dispose()


def test_a_running_node_renews_its_lease_and_gives_it_up_when_it_stops(database_url):
    database = seeded(database_url)

    async def lifecycle() -> tuple[set[str], set[str]]:
        service = NodeLeases(database, "me", expiry_s=0.3)
        await service.start()
        await asyncio.sleep(0.5)  # a few renewals; "alive" is not renewed here and expires
        running = leases(database)
        await service.stop()
        return running, leases(database)

    try:
        running, stopped = asyncio.run(lifecycle())
        assert running == {"me"}
        assert stopped == set()
        assert statuses(database) == {
            "on-gone": "interrupted",
            "on-alive": "interrupted",
            "ended": "ended",
        }
    finally:
        database.dispose()
