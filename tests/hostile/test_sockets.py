"""Idle and slow sockets: a socket's outgoing events are bounded (a client that stops reading
loses partials, then the connection, with a reason; finals are kept while it keeps up), a
client's own text is never echoed back whole, and a Twilio socket gets one start timeout
however much else it sends."""

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketState

from admin_api.auth import ADMIN
from asr_core.streaming import Final, Partial
from service.live import SLOW_READER_CLOSE, Outbox, render_native
from telephony.adapters import twilio
from tests.combined_server import bearer, make_server, new_key


class StalledClient:
    """A WebSocket whose client reads nothing: every send waits until `resume`."""

    client_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed: tuple[int, str] | None = None
        self.reading = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.reading.wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)


def partial(n: int) -> Partial:
    return Partial(n, f"partial {n}", "", f"partial {n}", 0, 1000, "en")


def final(n: int) -> Final:
    return Final(n, f"final {n}", 0, 1000, "en")


def test_a_slow_reader_loses_partials_then_the_connection():
    async def scenario():
        client = StalledClient()
        outbox = Outbox(client, render_native, limit=8)
        await asyncio.sleep(0)
        for n in range(1000):
            outbox.put(partial(n))
        assert outbox.queue.qsize() <= 9 and outbox.queue.dropped > 900
        for n in range(8):
            outbox.put(final(n))  # kept: the backlog is within twice the limit
        assert client.closed is None
        for n in range(8, 20):
            outbox.put(final(n))
        await asyncio.sleep(0.05)
        assert client.closed is not None and client.closed[0] == SLOW_READER_CLOSE
        assert "too slowly" in client.closed[1]
        assert outbox.queue.qsize() <= 17
        outbox.cancel()

    asyncio.run(scenario())


def test_a_reader_that_keeps_up_gets_every_final():
    async def scenario():
        client = StalledClient()
        client.reading.set()
        outbox = Outbox(client, render_native, limit=8)
        for n in range(200):
            outbox.put(partial(n))
            outbox.put(final(n))
            await asyncio.sleep(0)
        await outbox.drain()
        finals = [m["text"] for m in client.sent if m["type"] == "final"]
        assert finals == [f"final {n}" for n in range(200)] and client.closed is None

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def server(transcriber, tmp_path_factory):
    app, database = make_server(transcriber, tmp_path_factory.mktemp("sockets"))
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        yield client, bearer(new_key(database, "tenant", "acme"))
    database.dispose()


def test_unknown_message_types_are_not_echoed_whole(server):
    client, key = server
    huge = "x" * 500_000
    with client.websocket_connect("/v1/stream", headers=key) as ws:
        ws.send_text(json.dumps({}))
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(json.dumps({"type": huge}))
        error = ws.receive_json()
        assert error["code"] == "invalid_message" and len(error["message"]) < 200
        ws.send_text(json.dumps({"type": "end"}))
    with client.websocket_connect("/v1/media-streams/audio-fork", headers=key) as ws:
        ws.send_text(json.dumps({"callId": "fork-echo"}))
        ws.send_text(json.dumps({"type": huge}))
        error = ws.receive_json()
        assert len(json.dumps(error)) < 400


def test_twilio_start_timeout_is_not_restarted_by_other_messages(server, monkeypatch):
    client, key = server
    monkeypatch.setattr(twilio, "START_TIMEOUT_S", 0.5)
    with client.websocket_connect("/v1/media-streams/twilio", headers=key) as ws:
        keepalive_until = time.monotonic() + 2.0
        while time.monotonic() < keepalive_until:  # never a start, only chatter
            ws.send_text(json.dumps({"event": "connected"}))
            time.sleep(0.1)
        ws.send_text(json.dumps({"event": "stop"}))
        reply = ws.receive_json()
    assert reply["code"] == "start_timeout"


def test_socket_messages_are_capped_by_their_json_values(server):
    """`json.loads` holds the interpreter: a message's values are counted before it is parsed
    (900 KB of `[],` would take about half a second on the loop every call shares)."""
    client, key = server
    heavy = json.dumps({"type": "commit", "x": "X"}).replace('"X"', "[" + "[]," * 300_000 + "[]]")
    with client.websocket_connect("/v1/stream", headers=key) as ws:
        ws.send_text(json.dumps({}))
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(heavy)
        error = ws.receive_json()
        assert error["code"] == "invalid_message" and "JSON values" in error["message"]
        ws.send_text(json.dumps({"type": "end"}))
    with client.websocket_connect("/v1/media-streams/twilio", headers=key) as ws:
        ws.send_text(heavy)
        assert ws.receive_json()["code"] == "invalid_json"
    with client.websocket_connect("/v1/funasr", headers=key) as ws:
        ws.send_text(heavy)
        assert ws.receive_json()["code"] == "invalid_message"
