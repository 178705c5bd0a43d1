"""What calls keep in the admin database (through `admin_api.crud.calls`), on SQLite and a
real PostgreSQL: the row opened and closed with the hot-words the call ended with, finals as
they were sent, and a killed run's calls marked interrupted, this node's only."""

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from admin_api import migrate
from admin_api.crud.hotword_lists import decode
from admin_api.db import make_engine
from admin_api.models import Call, Tenant, TranscriptSegment
from asr_core.hotwords import Hotword, HotwordIndex, HotwordList
from asr_core.streaming import Final, WordTiming
from telephony.storage import CallStorage


@pytest.fixture
def database(database_url):
    """A migrated admin database (SQLite, then PostgreSQL) with tenant `acme`."""
    migrate.upgrade(database_url)
    database = make_engine(database_url)
    with Session(database) as session:
        session.add(Tenant(id="acme", name="Acme"))
        session.commit()
    yield database
    database.dispose()


def test_a_call_from_opening_to_closing(database):
    storage = CallStorage(database, "host-a:7860")
    assert storage.lookup("acme", "c1") == (True, False)
    assert storage.lookup("nobody", "c1") == (False, False)
    storage.open("c1", "acme", "sip", Path("/recordings/acme/c1"), "en")
    assert storage.lookup("acme", "c1") == (True, True)

    final = Final(
        segment=0,
        text="hello there",
        start_ms=100,
        end_ms=900,
        words=[WordTiming("hello", 100, 400, 0.9), WordTiming("there", 450, 900, 0.8)],
        language="en",
        hotword_version=3,
    )
    storage.store_final("c1", "customer", final)
    hotwords = HotwordIndex(HotwordList([Hotword("Callscribe", 2.0, ("call scribe",))], 3))
    storage.close("c1", "ended", hotwords)
    with Session(database) as session:
        call = session.get(Call, "c1")
        segment = session.exec(select(TranscriptSegment)).one()
    assert (call.status, call.node, call.language, call.source) == (
        "ended",
        "host-a:7860",
        "en",
        "sip",
    )
    assert call.recording_path == "/recordings/acme/c1" and call.ended_at is not None
    assert call.hotword_version == 3 and [h.phrase for h in decode(call.hotwords)] == ["Callscribe"]
    assert (segment.call_id, segment.leg, segment.kind, segment.text) == (
        "c1",
        "customer",
        "live",
        "hello there",
    )
    assert [w["word"] for w in json.loads(segment.words)] == ["hello", "there"]
    assert segment.hotword_version == 3


def test_at_start_only_this_nodes_active_calls_are_interrupted(database):
    mine, other = CallStorage(database, "host-a:7860"), CallStorage(database, "host-b:7860")
    mine.open("left-over", "acme", "sip", None, None)
    mine.open("finished", "acme", "sip", None, None)
    mine.close("finished", "ended", None)
    other.open("elsewhere", "acme", "webrtc", None, None)
    assert mine.close_stale() == 1
    with Session(database) as session:
        status = {call.id: call.status for call in session.exec(select(Call))}
    assert status == {"left-over": "interrupted", "finished": "ended", "elsewhere": "active"}
