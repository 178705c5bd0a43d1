"""Call sessions (what every gateway feeds), driven directly: legs decoded and recorded, finals
stored and streamed to listeners by leg, calls listed, stale calls closed at start, and
admission refusing calls instead of degrading live ones."""

import json
import wave

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from starlette.websockets import WebSocketDisconnect

from admin_api.auth import ADMIN
from admin_api.models import Call, Tenant, TranscriptSegment
from asr_core.audio import RawFormat
from asr_core.audio.g711 import pcm16_to_mulaw
from asr_core.audio.resample import resample
from asr_core.hotwords import HotwordIndex, parse_hotwords
from telephony.refusal import CallRefused
from tests.combined_server import bearer, make_server, new_key, open_call, services
from tests.helpers import espeak_audio, refused_stream, to_int16

SENTENCE = "Please call me tomorrow morning about the meeting."


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    return espeak_audio(SENTENCE, tmp_path_factory.mktemp("call-speech"))


def mulaw_8k(audio: np.ndarray) -> bytes:
    return pcm16_to_mulaw(to_int16(resample(audio, 16_000, 8_000)))


@pytest.fixture
def server(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        for tenant in ("acme", "globex"):
            client.post("/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin)
        keys = {t: bearer(new_key(database, "tenant", t)) for t in ("acme", "globex")}
        yield client, database, keys
    database.dispose()


def feed_in_packets(session, leg: str, data: bytes, packet: int = 160) -> None:
    """From this (non-loop) thread, in 20 ms μ-law packets, as a media thread would."""
    for offset in range(0, len(data), packet):
        session.feed(leg, data[offset : offset + packet])


def test_a_two_leg_call_from_audio_to_stored_transcript(server, speech):
    client, database, keys = server
    session = open_call(
        client,
        "acme",
        {"customer": RawFormat("mulaw", 8000), "agent": RawFormat("pcm_s16le", 16000)},
        language="en",
    )
    listed = client.get("/v1/calls?active=true", headers=keys["acme"]).json()
    assert [c["id"] for c in listed] == [session.id]
    assert client.get("/v1/calls?active=true", headers=keys["globex"]).json() == []

    with client.websocket_connect(f"/v1/calls/{session.id}/events", headers=keys["acme"]) as ws:
        assert ws.receive_json() == {
            "type": "listening",
            "call_id": session.id,
            "legs": ["customer", "agent"],
        }
        silence = np.zeros(16_000, np.float32)
        feed_in_packets(session, "customer", mulaw_8k(np.concatenate([speech, silence])))
        feed_in_packets(session, "agent", to_int16(silence).tobytes(), 640)
        finals, seen = [], []
        while not finals:
            event = ws.receive_json()
            seen.append(event["type"])
            if event["type"] == "final":
                finals.append(event)
        assert "speech_started" in seen  # the turn events reach call listeners too
        assert finals[0]["leg"] == "customer"
        assert finals[0]["call_id"] == session.id
        assert "tomorrow" in finals[0]["text"].lower()
        client.portal.call(session.end)
        kinds = []
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                kinds.append(ws.receive_json()["type"])
        assert kinds[-1] == "call_ended" and closed.value.code == 1000

    with Session(database) as db:
        call = db.get(Call, session.id)
        segments = db.exec(select(TranscriptSegment).where(TranscriptSegment.call_id == call.id))
        stored = list(segments)
    assert call.status == "ended" and call.ended_at is not None
    assert [s.leg for s in stored] == ["customer"]
    assert "morning" in stored[0].text.lower()
    assert json.loads(stored[0].words)[0]["start_ms"] >= 0
    with wave.open(f"{call.recording_path}/customer.wav") as recording:
        assert recording.getframerate() == 16_000
        assert recording.getnframes() == pytest.approx(len(speech) + 16_000, abs=400)
    assert client.get("/v1/calls?active=false", headers=keys["acme"]).json()[0]["status"] == "ended"


def test_listeners_see_only_their_tenants_calls(server):
    client, _, keys = server
    session = open_call(client, "acme", {"mixed": RawFormat("pcm_s16le", 16000)})
    path = f"/v1/calls/{session.id}/events"
    assert refused_stream(client, path, 4404, headers=keys["globex"])["code"] == "call_not_found"
    assert refused_stream(client, path, 4401)["code"] == "unauthorized"
    client.portal.call(session.end)


def test_hanging_up_mid_utterance_still_stores_the_final(server, speech):
    client, database, _ = server
    session = open_call(client, "acme", {"mixed": RawFormat("mulaw", 8000)}, language="en")
    feed_in_packets(session, "mixed", mulaw_8k(speech))  # no trailing silence: cut off
    client.portal.call(session.end)
    with Session(database) as db:
        texts = [s.text for s in db.exec(select(TranscriptSegment))]
    assert len(texts) == 1 and "tomorrow" in texts[0].lower()


def test_unknown_tenants_and_a_busy_box_are_refused(server, transcriber, tmp_path):
    client, _, _ = server
    with pytest.raises(CallRefused) as unknown:
        open_call(client, "initech", {})
    assert unknown.value.status == 404
    app, database = make_server(transcriber, tmp_path / "small", max_calls=1)
    with TestClient(app) as small:
        with Session(database) as db:
            db.add(Tenant(id="acme", name="Acme"))
            db.commit()
        first = open_call(small, "acme", {"mixed": RawFormat("pcm_s16le", 16000)})
        with pytest.raises(CallRefused) as busy:
            open_call(small, "acme", {"mixed": RawFormat("pcm_s16le", 16000)})
        assert busy.value.status == 503 and busy.value.retry_after_s
        small.portal.call(first.end)
    database.dispose()


def test_calls_left_active_by_a_killed_gateway_are_closed_at_start(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path)
    node = services(app).hub.config.node
    with Session(database) as db:
        db.add(Tenant(id="acme", name="Acme"))
        db.flush()
        db.add(Call(id="left-over", tenant_id="acme", source="sip", node=node))
        db.add(Call(id="elsewhere", tenant_id="acme", source="sip", node="other-host:7860"))
        db.commit()
    with TestClient(app), Session(database) as db:
        assert db.get(Call, "left-over").status == "interrupted"
        assert db.get(Call, "elsewhere").status == "active"  # another node's live call
    database.dispose()


def test_call_ids_are_checked_and_never_reused(server):
    client, _, _ = server
    with pytest.raises(CallRefused) as bad:
        open_call(client, "acme", {}, call_id="../../etc")
    assert bad.value.status == 400
    first = open_call(client, "acme", {}, call_id="CA1234")
    with pytest.raises(CallRefused) as live:
        open_call(client, "acme", {}, call_id="CA1234")
    assert live.value.status == 486
    client.portal.call(first.end)
    with pytest.raises(CallRefused) as used:
        open_call(client, "acme", {}, call_id="CA1234")
    assert used.value.status == 409


def test_a_calls_own_hotwords_add_to_the_tenants(server, tmp_path):
    client, database, _ = server
    rare = espeak_audio("Please call Xiaomeng Zhao about the CRISPR assay.", tmp_path)
    extra = HotwordIndex(parse_hotwords("Xiaomeng Zhao\nCRISPR", "lines"))
    texts = {}
    for label, hotwords in (("without", None), ("with", extra)):
        # Wideband: on this synthetic voice's μ-law version the prompted pass rewrites most of
        # the sentence, and the hot-word guard rightly keeps the first pass (docs/hotwords.md).
        session = open_call(
            client,
            "acme",
            {"mixed": RawFormat("pcm_s16le", 16000)},
            language="en",
            hotwords=hotwords,
        )
        audio = np.concatenate([rare, np.zeros(16_000, np.float32)])
        feed_in_packets(session, "mixed", to_int16(audio).tobytes(), packet=640)
        client.portal.call(session.end)
        with Session(database) as db:
            rows = db.exec(select(TranscriptSegment).where(TranscriptSegment.call_id == session.id))
            texts[label] = " ".join(row.text for row in rows)
    assert "Xiaomeng Zhao" in texts["with"]
    assert "Xiaomeng Zhao" not in texts["without"]
