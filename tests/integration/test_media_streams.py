"""Media-stream adapters against the combined server: Twilio Media Streams, mod_audio_fork
style L16 and Asterisk AudioSocket each carry espeak speech into a call whose finals are
stored (and streamed to listeners) per leg; disconnects lose nothing, a flooding stream
disturbs no other call, and nothing gets in without a tenant."""

import base64
import json
import socket
import time
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from admin_api import migrate
from admin_api.auth import ADMIN
from admin_api.db import make_engine
from admin_api.models import Call, Tenant, TranscriptSegment
from asr_core.audio import resample
from asr_core.audio.g711 import pcm16_to_mulaw
from telephony.adapters.audio_fork import StereoSplitter
from telephony.adapters.audiosocket import KIND_AUDIO, KIND_ERROR, KIND_HANGUP, KIND_UUID
from telephony.adapters.reservations import Reservations
from tests.combined_server import bearer, make_server, new_key, services
from tests.helpers import espeak_audio, to_int16
from tests.services import CallscribeServer

SR = 16_000
SENTENCE = "Please call me tomorrow morning about the meeting."
WORDS = ("tomorrow", "morning")
OTHER = "The quick brown fox jumps over the lazy dog."
OTHER_WORDS = ("quick", "fox")
SILENCE = np.zeros(SR, np.float32)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media-speech")
    return espeak_audio(SENTENCE, folder), espeak_audio(OTHER, folder)


@pytest.fixture
def server(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path, audiosocket_port=0)
    with TestClient(app) as client:
        admin = new_key(database, ADMIN)
        assert client.post(
            "/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=bearer(admin)
        )
        key = new_key(database, "tenant", "acme")
        yield client, database, key, admin
    database.dispose()


def token_for(client, key: str) -> str:
    minted = client.post("/v1/tokens", json={"ttl_s": 300}, headers=bearer(key))
    assert minted.status_code == 201, minted.text
    return minted.json()["token"]


def stored(database, call_id: str, timeout_s: float = 120.0) -> dict[str, str]:
    """The call's stored finals, text per leg, once the call has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(database) as db:
            call = db.get(Call, call_id)
            if call is not None and call.status != "active":
                rows = db.exec(
                    select(TranscriptSegment)
                    .where(TranscriptSegment.call_id == call_id)
                    .order_by(TranscriptSegment.start_ms)
                ).all()
                texts: dict[str, str] = {}
                for row in rows:
                    texts[row.leg] = f"{texts.get(row.leg, '')} {row.text}".strip()
                return {leg: text.lower() for leg, text in texts.items()}
        assert time.monotonic() < deadline, f"call {call_id} did not end"
        time.sleep(0.1)


def says(text: str, words) -> bool:
    return all(word in text for word in words)


def until_closed(ws) -> list[dict]:
    """What the server still sends, until it closes the socket."""
    messages = []
    with pytest.raises(WebSocketDisconnect):
        while True:
            messages.append(ws.receive_json())
    return messages


def wait_for_call(client, call_id: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while call_id not in services(client).hub.calls:
        assert time.monotonic() < deadline, f"call {call_id} was not opened"
        time.sleep(0.02)


# -- Twilio ------------------------------------------------------------------------------------


def mulaw_8k(audio: np.ndarray) -> bytes:
    return pcm16_to_mulaw(to_int16(resample(audio, SR, 8000)))


def twilio_start(call_sid: str, tracks: list[str], parameters: dict | None = None) -> dict:
    stream_sid = "MZ" + call_sid[2:]
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC" + "0" * 32,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": tracks,
            "customParameters": parameters or {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": stream_sid,
    }


def twilio_media(tracks: dict[str, bytes]) -> list[str]:
    """Media messages of 20 ms per track, the tracks interleaved as Twilio sends them."""
    messages = []
    longest = max(len(payload) for payload in tracks.values())
    for chunk, offset in enumerate(range(0, longest, 160)):
        for track, payload in tracks.items():
            if offset < len(payload):
                media = {
                    "track": track,
                    "chunk": str(chunk + 1),
                    "timestamp": str(chunk * 20),
                    "payload": base64.b64encode(payload[offset : offset + 160]).decode(),
                }
                messages.append(json.dumps({"event": "media", "media": media}))
    return messages


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def test_twilio_both_tracks_give_customer_and_agent_finals(server, speech):
    client, database, key, _ = server
    sentence, other = speech
    call_sid = new_call_sid()
    with client.websocket_connect(f"/v1/media-streams/twilio?token={token_for(client, key)}") as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(json.dumps(twilio_start(call_sid, ["inbound", "outbound"])))
        # Malformed messages are answered and skipped; the stream goes on.
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "invalid_json"
        ws.send_text(json.dumps({"event": "media", "media": {"track": "inbound", "payload": "*"}}))
        bad_payload = ws.receive_json()
        assert bad_payload["event"] == "error" and bad_payload["code"] == "invalid_payload"
        tracks = {
            "inbound": mulaw_8k(np.concatenate([sentence, SILENCE])),
            "outbound": mulaw_8k(np.concatenate([other, SILENCE])),
        }
        for message in twilio_media(tracks):
            ws.send_text(message)
        ws.send_text(
            json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}})
        )
        ws.send_text(json.dumps({"event": "stop", "stop": {"callSid": call_sid}}))
        assert until_closed(ws) == []
    texts = stored(database, call_sid)
    assert says(texts["customer"], WORDS), texts
    assert says(texts["agent"], OTHER_WORDS), texts
    with Session(database) as db:
        call = db.get(Call, call_sid)
        assert (call.tenant_id, call.source, call.status) == ("acme", "twilio", "ended")


def test_twilio_token_in_custom_parameters(server, speech):
    client, database, key, _ = server
    call_sid = new_call_sid()
    with client.websocket_connect("/v1/media-streams/twilio") as ws:
        ws.send_text(
            json.dumps(twilio_start(call_sid, ["inbound"], {"token": token_for(client, key)}))
        )
        for message in twilio_media({"inbound": mulaw_8k(np.concatenate([speech[0], SILENCE]))}):
            ws.send_text(message)
        ws.send_text(json.dumps({"event": "stop"}))
        until_closed(ws)
    assert says(stored(database, call_sid)["customer"], WORDS)


# -- mod_audio_fork ----------------------------------------------------------------------------


def test_stereo_audio_fork_gives_two_legs_to_listeners(server, speech):
    client, database, key, _ = server
    sentence, other = speech
    left = np.concatenate([sentence, SILENCE])
    right = np.concatenate([np.zeros(len(left) - len(other), np.float32), other])
    stereo = to_int16(np.stack([left, right], axis=1)).tobytes()
    with client.websocket_connect("/v1/media-streams/audio-fork", headers=bearer(key)) as fork:
        fork.send_text(json.dumps({"callId": "fork-1", "sampleRate": 16000, "channels": 2}))
        started = fork.receive_json()
        assert started == {"type": "started", "call_id": "fork-1", "legs": ["customer", "agent"]}
        with client.websocket_connect("/v1/calls/fork-1/events", headers=bearer(key)) as listener:
            assert listener.receive_json()["legs"] == ["customer", "agent"]
            for offset in range(0, len(stereo), 1001):  # frames torn mid-sample and mid-pair
                fork.send_bytes(stereo[offset : offset + 1001])
            fork.send_text(json.dumps({"type": "end"}))
            assert until_closed(fork) == [{"type": "ended", "call_id": "fork-1"}]
            events = []
            while (event := listener.receive_json())["type"] != "call_ended":
                events.append(event)
    finals = {}
    for event in events:
        if event["type"] == "final":
            finals[event["leg"]] = f"{finals.get(event['leg'], '')} {event['text']}".lower()
    assert says(finals["customer"], WORDS), finals
    assert says(finals["agent"], OTHER_WORDS), finals
    assert stored(database, "fork-1").keys() == {"customer", "agent"}


def test_stereo_splitting_survives_torn_frames():
    pairs = np.arange(-500, 500, dtype="<i2").reshape(-1, 2)
    data = pairs.tobytes()
    splitter = StereoSplitter()
    left, right = b"", b""
    for size in (1, 2, 3, 5, 7, 4, 1, 999, 13, 2000):
        piece, data = data[:size], data[size:]
        got = splitter.split(piece)
        left, right = left + got[0], right + got[1]
    got = splitter.split(data)
    left, right = left + got[0], right + got[1]
    assert np.array_equal(np.frombuffer(left, "<i2"), pairs[:, 0])
    assert np.array_equal(np.frombuffer(right, "<i2"), pairs[:, 1])


def test_a_sender_that_disconnects_mid_utterance_loses_nothing(server, speech):
    client, database, key, _ = server
    audio = to_int16(resample(speech[0], SR, 8000)).tobytes()  # no trailing silence
    with client.websocket_connect(
        f"/v1/media-streams/audio-fork?token={token_for(client, key)}"
    ) as fork:
        fork.send_text(json.dumps({"callId": "cut-off", "sampleRate": 8000}))
        assert fork.receive_json()["legs"] == ["mixed"]
        for offset in range(0, len(audio), 640):
            fork.send_bytes(audio[offset : offset + 640])
    # The socket is gone without an end message: the open segment is still finalized.
    texts = stored(database, "cut-off")
    assert says(texts["mixed"], WORDS), texts


def test_a_flooding_stream_does_not_disturb_another_call(server, speech):
    client, database, key, _ = server
    sentence, other = speech
    token = token_for(client, key)
    flood_sid, normal_sid = new_call_sid(), new_call_sid()
    flood = mulaw_8k(np.tile(np.concatenate([other, SILENCE]), 20)[: 60 * SR])
    normal = mulaw_8k(np.concatenate([sentence, SILENCE]))
    url = f"/v1/media-streams/twilio?token={token}"
    with (
        client.websocket_connect(url) as flooder,
        client.websocket_connect(url) as caller,
    ):
        flooder.send_text(json.dumps(twilio_start(flood_sid, ["inbound"])))
        wait_for_call(client, flood_sid)
        with client.websocket_connect(
            f"/v1/calls/{flood_sid}/events", headers=bearer(key)
        ) as listener:
            listener.receive_json()
            caller.send_text(json.dumps(twilio_start(normal_sid, ["inbound"])))
            for message in twilio_media({"inbound": flood}):  # 60 s in one burst
                flooder.send_text(message)
            started = time.monotonic()
            for sent, message in enumerate(twilio_media({"inbound": normal})):
                caller.send_text(message)  # real time: 20 ms a message
                time.sleep(max(0.0, started + sent * 0.02 - time.monotonic()))
            caller.send_text(json.dumps({"event": "stop"}))
            until_closed(caller)
            texts = stored(database, normal_sid)
            assert says(texts["customer"], WORDS), texts
            assert client.get("/healthz").status_code == 200
            flooder.send_text(json.dumps({"event": "stop"}))
            until_closed(flooder)
            codes = []
            while (event := listener.receive_json())["type"] != "call_ended":
                codes.append(event.get("code"))
    assert "audio_overflow" in codes
    assert stored(database, flood_sid)["customer"]


# -- AudioSocket -------------------------------------------------------------------------------


def audiosocket_message(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def reserve(client, key: str) -> str:
    response = client.post("/v1/media-streams/audiosocket/reservations", headers=bearer(key))
    assert response.status_code == 201, response.text
    assert response.json()["expires_in"] == 120
    return response.json()["call_id"]


def connect_audiosocket(client) -> socket.socket:
    port = services(client).telephony.audiosocket.port
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def send_audiosocket_call(sock: socket.socket, call_id: str, audio: np.ndarray) -> None:
    """The UUID, then 20 ms messages of 8 kHz PCM16, written in torn pieces."""
    stream = audiosocket_message(KIND_UUID, uuid.UUID(call_id).bytes)
    pcm = to_int16(resample(audio, SR, 8000)).tobytes()
    for offset in range(0, len(pcm), 320):
        stream += audiosocket_message(KIND_AUDIO, pcm[offset : offset + 320])
    for offset in range(0, len(stream), 997):
        sock.sendall(stream[offset : offset + 997])


def test_audiosocket_call_of_a_reserved_uuid(server, speech):
    client, database, key, _ = server
    call_id = reserve(client, key)
    with connect_audiosocket(client) as sock:
        send_audiosocket_call(sock, call_id, np.concatenate([speech[0], SILENCE]))
        sock.sendall(audiosocket_message(KIND_HANGUP))
        assert read_all(sock) == b""
    assert says(stored(database, call_id)["mixed"], WORDS)
    with Session(database) as db:
        assert db.get(Call, call_id).source == "audiosocket"
    # A reservation is used once.
    with connect_audiosocket(client) as sock:
        sock.sendall(audiosocket_message(KIND_UUID, uuid.UUID(call_id).bytes))
        assert read_all(sock) == audiosocket_message(KIND_HANGUP)


def test_audiosocket_peer_that_vanishes_mid_utterance_loses_nothing(server, speech):
    client, database, key, _ = server
    call_id = reserve(client, key)
    sock = connect_audiosocket(client)
    send_audiosocket_call(sock, call_id, speech[0])
    sock.sendall(audiosocket_message(KIND_AUDIO, b"\x00" * 320)[:100])  # torn, then gone
    sock.close()
    assert says(stored(database, call_id)["mixed"], WORDS)


def test_audiosocket_refuses_unknown_uuids_and_broken_framing(server):
    client, database, key, _ = server
    with connect_audiosocket(client) as sock:
        sock.sendall(audiosocket_message(KIND_UUID, uuid.uuid4().bytes))
        assert read_all(sock) == audiosocket_message(KIND_HANGUP)
    with connect_audiosocket(client) as sock:  # audio before the UUID
        sock.sendall(audiosocket_message(KIND_AUDIO, b"\x00" * 320))
        assert read_all(sock)[:1] == bytes([KIND_ERROR])
    call_id = reserve(client, key)
    with connect_audiosocket(client) as sock:  # an oversize length ends the call
        sock.sendall(audiosocket_message(KIND_UUID, uuid.UUID(call_id).bytes))
        sock.sendall(bytes([KIND_AUDIO]) + (60_000).to_bytes(2, "big"))
        assert read_all(sock)[:1] == bytes([KIND_ERROR])
    assert stored(database, call_id) == {}
    assert not services(client).hub.calls


def test_reservations_expire_and_are_used_once():
    now = [0.0]
    reservations = Reservations(ttl_s=120, clock=lambda: now[0])
    first = reservations.reserve("acme")
    second = reservations.reserve("acme", "zh")
    assert reservations.take(first).tenant_id == "acme"
    assert reservations.take(first) is None
    now[0] = 121.0
    assert reservations.take(second) is None
    given = str(uuid.uuid4())
    assert reservations.reserve("acme", call_id=given) == given
    with pytest.raises(ValueError):
        reservations.reserve("acme", call_id=given)


# -- authentication ----------------------------------------------------------------------------


def refused(ws, *messages: str) -> tuple[dict, int]:
    for message in messages:
        ws.send_text(message)
    error = ws.receive_json()
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    return error, closed.value.code


def test_streams_without_a_tenant_are_refused(server):
    client, _, key, admin = server
    start = json.dumps(twilio_start(new_call_sid(), ["inbound"]))
    with client.websocket_connect("/v1/media-streams/twilio") as ws:
        error, code = refused(ws, start)
    assert (error["event"], error["code"], code) == ("error", "unauthorized", 4401)
    with client.websocket_connect("/v1/media-streams/twilio?token=bogus") as ws:
        assert refused(ws)[1] == 4401  # refused before any message
    with client.websocket_connect("/v1/media-streams/twilio", headers=bearer(admin)) as ws:
        assert refused(ws)[1] == 4403  # an admin key acts for no tenant
    with client.websocket_connect("/v1/media-streams/audio-fork") as ws:
        error, code = refused(ws, json.dumps({"sampleRate": 8000}))
    assert (error["type"], error["code"], code) == ("error", "unauthorized", 4401)
    with client.websocket_connect("/v1/media-streams/audio-fork", headers=bearer(key)) as ws:
        assert refused(ws, json.dumps({"channels": 2, "legs": ["a"]}))[1] == 4400
    path = "/v1/media-streams/audiosocket/reservations"
    assert client.post(path).status_code == 401
    assert client.post(path, headers=bearer(admin)).status_code == 403
    made = client.post(path, json={"tenant_id": "acme"}, headers=bearer(admin))
    assert made.status_code == 201
    assert not services(client).hub.calls


def test_audiosocket_is_off_unless_configured(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path)
    with TestClient(app) as client:
        assert services(app).telephony.audiosocket.port is None
        key = new_key(database, ADMIN)
        path = "/v1/media-streams/audiosocket/reservations"
        made = client.post(path, json={"tenant_id": "local"}, headers=bearer(key))
        assert made.status_code == 503
    database.dispose()


def test_a_killed_gateway_leaves_no_call_active_after_restart(tmp_path, speech):
    """kill -9 during a live call, then start again: the call is marked interrupted."""
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    migrate.upgrade(url)
    database = make_engine(url)
    with Session(database) as db:
        db.add(Tenant(id="acme", name="Acme"))
        db.commit()
    key = new_key(database, "tenant", "acme")
    server = CallscribeServer(
        {"CALLSCRIBE_DATABASE_URL": url, "CALLSCRIBE_AUTH": "keys"}, "whisper-tiny.en"
    )
    server.start()
    try:
        call_sid = new_call_sid()
        address = server.url.replace("http", "ws", 1) + "/v1/media-streams/twilio"
        with connect(address, additional_headers=bearer(key)) as ws:
            ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            ws.send(json.dumps(twilio_start(call_sid, ["inbound"])))
            for message in twilio_media({"inbound": mulaw_8k(speech[0][: SR // 2])}):
                ws.send(message)
            deadline = time.monotonic() + 30
            while (status := call_status(database, call_sid)) != "active":
                assert time.monotonic() < deadline, status
                time.sleep(0.1)
            server.kill()
        server.start()  # same port, so the same node name
        assert call_status(database, call_sid) == "interrupted"
    finally:
        server.close()
        database.dispose()


def call_status(database, call_id: str) -> str | None:
    with Session(database) as db:
        call = db.get(Call, call_id)
        return call.status if call is not None else None
