"""The live WebSocket endpoints, native and FunASR-compatible, in-process."""

import asyncio
import json
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from asr_core.audio.g711 import pcm16_to_mulaw
from asr_core.audio.resample import resample
from asr_core.streaming import StreamingOptions
from common.errors import Unauthorized
from common.rules import RequestRules
from service import ServiceConfig, create_app
from service.state import service_state
from tests.helpers import encode, espeak_audio, refused_stream, to_int16, wav_bytes

SR = 16_000


@pytest.fixture(scope="module")
def client(transcriber):
    with TestClient(create_app(transcriber, ServiceConfig())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ws")
    pause = np.zeros(SR, dtype=np.float32)
    return np.concatenate(
        [
            espeak_audio("Please call me tomorrow morning.", folder),
            pause,
            espeak_audio("The meeting starts at nine o'clock.", folder),
            pause,
        ]
    )


@pytest.fixture(scope="module")
def rare_name(tmp_path_factory):
    return espeak_audio(
        "Please call Xiaomeng Zhao about the CRISPR assay.", tmp_path_factory.mktemp("ws-name")
    )


def pcm(audio: np.ndarray) -> bytes:
    return to_int16(audio).tobytes()


def frames(data: bytes, size: int = 3200):
    return (data[i : i + size] for i in range(0, len(data), size))


def receive_until(ws, kind: str, limit: int = 500) -> list[dict]:
    events = []
    for _ in range(limit):
        event = ws.receive_json()
        events.append(event)
        if event.get("type") == kind:
            return events
    raise AssertionError(f"no {kind!r} in {events}")


def metric(client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(name)


def test_native_session_from_config_to_closed(client, speech):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"language": "en"}))
        assert ws.receive_json()["type"] == "ready"
        for frame in frames(pcm(speech)):
            ws.send_bytes(frame)
        ws.send_text(json.dumps({"type": "end"}))
        events = receive_until(ws, "closed")
    finals = [e for e in events if e["type"] == "final"]
    assert [f["segment"] for f in finals] == [0, 1]
    assert "tomorrow" in finals[0]["text"].lower()
    assert "meeting" in finals[1]["text"].lower()
    assert finals[0]["words"][0]["start_ms"] >= 0
    assert [e["type"] for e in events if e["type"] in ("final", "endpoint")][-1] == "endpoint"
    assert [e["segment"] for e in events if e["type"] == "speech_started"] == [0, 1]
    started = next(e for e in events if e["type"] == "speech_started")
    assert started["start_ms"] <= finals[0]["start_ms"]


def test_native_turn_events(client, speech):
    """Voice-bot events: `utterance_end` once `utterance_end_ms` of silence follows a final's
    last word; eager finals are never empty, and a `turn_resumed` takes one back."""
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"language": "en", "utterance_end_ms": 600}))
        assert ws.receive_json()["type"] == "ready"
        for frame in frames(pcm(speech)):
            ws.send_bytes(frame)
        ws.send_text(json.dumps({"type": "end"}))
        events = receive_until(ws, "closed")
    ends = [e for e in events if e["type"] == "utterance_end"]
    finals = [e for e in events if e["type"] == "final"]
    assert len(ends) == 2
    assert ends[0]["last_word_end_ms"] == finals[0]["words"][-1]["end_ms"]
    assert all(e["text"] for e in events if e["type"] == "eager_final")


def test_mulaw_8k_stream(client, tmp_path):
    speech = espeak_audio(
        "Hello, I would like to check my account balance and pay my bill today.", tmp_path
    )
    payload = pcm16_to_mulaw(to_int16(resample(speech, SR, 8000)))
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"encoding": "mulaw", "sample_rate": 8000, "language": "en"}))
        assert ws.receive_json()["type"] == "ready"
        for frame in frames(payload, 160):  # 20 ms RTP-sized frames
            ws.send_bytes(frame)
        ws.send_text(json.dumps({"type": "end"}))
        events = receive_until(ws, "closed")
    text = " ".join(e["text"] for e in events if e["type"] == "final").lower()
    assert "account balance" in text and "bill" in text


def test_malformed_messages_get_errors_and_the_stream_survives(client, speech):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"language": "en"}))
        ws.receive_json()
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "invalid_message"
        ws.send_text(json.dumps({"type": "dance"}))
        assert ws.receive_json()["code"] == "invalid_message"
        ws.send_bytes(bytes(1_000_001))
        assert ws.receive_json()["code"] == "frame_too_large"
        ws.send_text(json.dumps({"type": "ping"}))
        assert ws.receive_json() == {"type": "pong"}
        for frame in frames(pcm(speech), 3201):  # frames that tear samples apart are fine
            ws.send_bytes(frame)
        ws.send_text(json.dumps({"type": "end"}))
        events = receive_until(ws, "closed")
    assert any(e["type"] == "final" and "tomorrow" in e["text"].lower() for e in events)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sample_rate": 44100}, "sample_rate"),
        ({"encoding": "mulaw", "sample_rate": 16000}, "8000"),
        ({"language": "fr"}, "language"),
        ({"hotwords": "ok\n" + "x" * 99}, "line 2"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_config_is_refused_with_a_reason(client, config, message):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps(config))
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "invalid_config"
        assert message in error["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400


def test_audio_before_config_is_refused(client):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(bytes(3200))
        assert ws.receive_json()["code"] == "config_expected"


def test_hotword_swap_message(client, speech):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"language": "en"}))
        ws.receive_json()
        ws.send_text(json.dumps({"type": "hotwords", "hotwords": "Xiaomeng Zhao\nCRISPR"}))
        assert ws.receive_json() == {"type": "hotwords_set", "applies_from_segment": 0}
        ws.send_text(json.dumps({"type": "hotwords", "hotwords": "x" * 100}))
        assert ws.receive_json()["code"] == "hotword_list_error"
        ws.send_text(json.dumps({"type": "end"}))
        receive_until(ws, "closed")


def test_a_client_that_vanishes_frees_its_stream(client, speech):
    before = metric(client, 'callscribe_active_streams{protocol="native"}')
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"language": "en"}))
        ws.receive_json()
        for frame in list(frames(pcm(speech)))[:40]:
            ws.send_bytes(frame)
        assert metric(client, 'callscribe_active_streams{protocol="native"}') == before + 1
    deadline = time.monotonic() + 30
    while metric(client, 'callscribe_active_streams{protocol="native"}') != before:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    while client.app.dependency_overrides[service_state]().scheduler.pending != (0, 0):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_stream_whose_finals_wait_keeps_reading_its_socket(transcriber, speech, monkeypatch):
    """Backpressure must not stop the server reading a socket: a server that stops reading
    stops answering keepalive pings too, and the connection, with every final still
    pending, is dropped as dead. Finals are held back here until the client's ping (sent
    after all its audio) is answered; before the fix the ping waited behind the audio."""
    engine = transcriber.engine
    gate = threading.Event()
    safety_net = threading.Timer(60, gate.set)  # a regression must fail, not hang
    original = engine.encode

    def held_encode(*args, **kwargs):
        gate.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "encode", held_encode)
    streaming = replace(StreamingOptions(), max_pending_finals=1)
    app = create_app(transcriber, ServiceConfig(rules=RequestRules(streaming=streaming)))
    with TestClient(app) as held, held.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"language": "en", "interim_results": False}))
        assert ws.receive_json()["type"] == "ready"
        for frame in frames(pcm(np.concatenate([speech, speech]))):  # 4 segments
            ws.send_bytes(frame)
        ws.send_text(json.dumps({"type": "ping"}))
        safety_net.start()
        first = ws.receive_json()
        while first["type"] == "speech_started":  # voice activity needs no decode
            first = ws.receive_json()
        gate.set()
        ws.send_text(json.dumps({"type": "end"}))
        events = receive_until(ws, "closed")
    safety_net.cancel()
    assert first == {"type": "pong"}
    finals = [e for e in events if e["type"] == "final"]
    assert [f["segment"] for f in finals] == [0, 1, 2, 3]
    assert all(f["text"] for f in finals)


def funasr_session(
    client, path: str, config: dict, audio_bytes: bytes, stride: int = 1920, pause: float = 0
):
    """What FunASR's funasr_wss_client.py does for one file, and its 2pass text assembly
    (`pause` seconds between 60 ms frames: 0.06 is its real-time pace)."""
    with client.websocket_connect(path, subprotocols=["binary"]) as ws:
        ws.send_text(
            json.dumps(
                {
                    "chunk_size": [5, 10, 5],
                    "chunk_interval": 10,
                    "encoder_chunk_look_back": 4,
                    "decoder_chunk_look_back": 0,
                    "audio_fs": 16000,
                    "wav_name": "demo",
                    "wav_format": "pcm",
                    "is_speaking": True,
                    "itn": True,
                    **config,
                }
            )
        )
        for frame in frames(audio_bytes, stride):
            ws.send_bytes(frame)
            time.sleep(pause)
        ws.send_text(json.dumps({"is_speaking": False, "is_end": True}))
        messages, online, offline = [], "", ""
        while True:
            message = ws.receive_json()
            messages.append(message)
            if message.get("mode") == "2pass-online":
                online += message["text"]
            elif message.get("mode") in ("2pass-offline", "offline"):
                online, offline = "", offline + message["text"]
            if message.get("is_end"):
                return messages, offline + online


def test_funasr_2pass_session_with_hotwords(client, rare_name):
    _, plain = funasr_session(client, "/", {"mode": "2pass"}, pcm(rare_name))
    hotwords = json.dumps({"Xiaomeng Zhao": 20, "CRISPR": 10})
    messages, text = funasr_session(
        client, "/", {"mode": "2pass", "hotwords": hotwords}, pcm(rare_name), pause=0.03
    )
    assert "Xiaomeng" not in plain
    assert "Xiaomeng Zhao" in text
    assert messages[-1]["is_final"] is True and messages[-1]["is_end"] is True
    assert {m.get("mode") for m in messages} >= {"2pass-online", "2pass-offline"}
    offline = [m for m in messages if m.get("mode") == "2pass-offline" and m["text"]]
    stamps = json.loads(offline[0]["timestamp"])
    assert stamps and all(a <= b for a, b in stamps)


def test_funasr_finals_queued_behind_the_socket_still_reach_the_client(
    transcriber, speech, monkeypatch
):
    """Events are rendered when the socket gets to send them, which may be after the file's
    end was handled: its end and its last final landing in the same turn of the event loop
    (what lost two finals in bench.live), or a socket whose writes wait. Here nothing is
    written until the end has been handled; before the fix the second sentence's final then
    rendered as no file's and was dropped, and the client got partials but no final."""
    from starlette.websockets import WebSocket

    from service.routes import funasr

    ended = threading.Event()
    finish, send_text = funasr._finish, WebSocket.send_text

    async def finish_then_release(*args):
        try:
            await finish(*args)
        finally:
            ended.set()

    async def send_after_the_end(self, data):
        deadline = time.monotonic() + 60  # a regression must fail, not hang
        while not ended.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await send_text(self, data)

    monkeypatch.setattr(funasr, "_finish", finish_then_release)
    monkeypatch.setattr(WebSocket, "send_text", send_after_the_end)
    with TestClient(create_app(transcriber, ServiceConfig())) as held:
        messages, text = funasr_session(held, "/", {"mode": "2pass"}, pcm(speech))
    assert ended.is_set()
    finals = [m for m in messages if m.get("mode") == "2pass-offline" and m["text"]]
    assert len(finals) == 2, messages
    assert all(m["wav_name"] == "demo" for m in finals)
    assert "tomorrow" in text.lower() and "meeting" in text.lower()
    assert messages[-1]["is_end"] is True


def test_funasr_2pass_mandarin_recording(client, testdata):
    import wave

    with wave.open(str(testdata / "zh_aishell_BAC009S0150W0222.wav")) as recording:
        audio = recording.readframes(recording.getnframes())
    hotwords = json.dumps({"左小蕾": 20, "中国银河证券": 10}, ensure_ascii=False)
    _, text = funasr_session(client, "/", {"mode": "2pass", "hotwords": hotwords}, audio)
    assert "左小蕾" in text and "中国银河证券" in text


def test_funasr_offline_mode_and_encoded_files(client, speech):
    _, text = funasr_session(
        client, "/v1/funasr", {"mode": "offline", "hotwords": "tomorrow,meeting"}, pcm(speech)
    )
    assert "tomorrow" in text.lower()
    mp3 = encode(speech, SR, "libmp3lame", "mp3")
    _, text = funasr_session(
        client, "/", {"mode": "offline", "wav_format": "others"}, mp3, stride=4096
    )
    assert "meeting" in text.lower()


def test_funasr_bad_mode(client):
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        ws.send_text(json.dumps({"mode": "turbo", "wav_name": "x"}))
        reply = ws.receive_json()
    assert reply["is_end"] and not reply.get("text") and "mode" in reply["error"]


async def bearer_secret(connection):
    token = connection.headers.get("authorization", "") or connection.query_params.get("token")
    if token not in ("Bearer secret", "secret"):
        raise Unauthorized("a valid key is required")
    return "tenant-a"


def test_auth_hook_guards_files_and_streams(transcriber, speech):
    app = create_app(transcriber, ServiceConfig(authenticate=bearer_secret))
    with TestClient(app) as guarded:
        upload = {"file": ("a.wav", wav_bytes(speech, SR))}
        refused = guarded.post("/v1/audio/transcriptions", files=upload)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        allowed = guarded.post(
            "/v1/audio/transcriptions", files=upload, headers={"authorization": "Bearer secret"}
        )
        assert allowed.status_code == 200
        for path in ("/v1/stream", "/"):
            assert refused_stream(guarded, path, 4401)["code"] == "unauthorized"
        with guarded.websocket_connect("/v1/stream?token=secret") as ws:
            ws.send_text(json.dumps({"language": "en"}))
            assert ws.receive_json()["type"] == "ready"
