"""The WebRTC gateway (`POST /v1/webrtc/offer`): an aiortc client in this process plays espeak
speech into a call and reads its captions from the `captions` data channel; hanging up ends the
call with its transcript stored; bad offers and callers are refused. Then Debian's headless
Chromium does the same from the demo page's WebRTC mode, against the real `callscribe serve`.

Everything stays on loopback: `CALLSCRIBE_WEBRTC_HOSTS=127.0.0.1` (aioice never offers loopback
by itself) and, for Chromium, `--allow-loopback-in-peer-connection`.
"""

import asyncio
import json
import re
import time
import wave
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.auth import ADMIN
from admin_api.models import Call, TranscriptSegment
from tests.browser import artifacts_dir, chromium, step, watched_page
from tests.combined_server import bearer, make_server, new_key
from tests.services import CallscribeServer

aiortc = pytest.importorskip("aiortc")
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

CAPTION_S = 120  # the first live final: model warm-up and decoding on two shared cores


@pytest.fixture
def server(transcriber, tmp_path):
    app, database = make_server(transcriber, tmp_path, webrtc_hosts="127.0.0.1")
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "acme"}, headers=admin)
        yield client, database, bearer(new_key(database, "tenant", "acme")), admin
    database.dispose()


async def offer(pc: RTCPeerConnection) -> str:
    """The client's complete offer (aiortc gathers every candidate in setLocalDescription)."""
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


def test_a_webrtc_call_from_speech_to_stored_transcript(server, meeting_wav):
    client, database, key, _ = server

    async def call() -> tuple[str, list[dict]]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        player = MediaPlayer(str(meeting_wav))
        pc.addTrack(player.audio)
        channel = pc.createDataChannel("captions")
        events: list[dict] = []
        heard = asyncio.Event()

        @channel.on("message")
        def _message(message: str) -> None:
            event = json.loads(message)
            events.append(event)
            if event["type"] == "final" and "tomorrow" in event["text"].lower():
                heard.set()

        sdp = await offer(pc)
        response = await asyncio.to_thread(
            client.post,
            "/v1/webrtc/offer",
            json={"sdp": sdp, "type": "offer", "language": "en"},
            headers=key,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["type"] == "answer" and "127.0.0.1" in answer["sdp"]
        assert "stun.l.google.com" not in answer["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        try:
            await asyncio.wait_for(heard.wait(), CAPTION_S)
        finally:
            await pc.close()
            if player.audio is not None:
                player.audio.stop()
        return answer["call_id"], events

    call_id, events = asyncio.run(call())
    final = next(e for e in events if e["type"] == "final" and "tomorrow" in e["text"].lower())
    assert final["leg"] == "mixed" and final["call_id"] == call_id

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Session(database) as db:
            row = db.get(Call, call_id)
            if row is not None and row.status != "active":
                break
        time.sleep(0.2)
    with Session(database) as db:
        row = db.get(Call, call_id)
        stored = list(
            db.exec(select(TranscriptSegment).where(TranscriptSegment.call_id == call_id))
        )
    assert row.status == "ended" and row.source == "webrtc" and row.tenant_id == "acme"
    assert any("tomorrow" in s.text.lower() for s in stored)
    listed = client.get("/v1/calls?active=false", headers=key).json()
    assert [c["id"] for c in listed] == [call_id]
    assert client.app.state.call_hub.calls == {} and not client.app.state.webrtc.calls


def test_bad_offers_and_callers_are_refused(server):
    client, _, key, admin = server
    bad = client.post("/v1/webrtc/offer", json={"sdp": "nonsense", "type": "offer"}, headers=key)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_sdp"
    assert "SDP offer" in bad.json()["error"]["message"]

    async def data_only() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("captions")
        try:
            return await offer(pc)
        finally:
            await pc.close()

    no_audio = client.post(
        "/v1/webrtc/offer", json={"sdp": asyncio.run(data_only()), "type": "offer"}, headers=key
    )
    assert no_audio.status_code == 400 and "no audio track" in no_audio.text

    anonymous = client.post("/v1/webrtc/offer", json={"sdp": "v=0", "type": "offer"})
    assert anonymous.status_code == 401
    too_long = {"sdp": "v=0", "type": "offer", "hotwords": "x" * 100}
    bad_list = client.post("/v1/webrtc/offer", json=too_long, headers=key)
    assert bad_list.status_code == 422 and "line 1" in bad_list.json()["error"]["message"]
    as_admin = client.post("/v1/webrtc/offer", json={"sdp": "v=0", "type": "offer"}, headers=admin)
    assert as_admin.status_code == 403
    answer_type = client.post(
        "/v1/webrtc/offer", json={"sdp": "v=0", "type": "answer"}, headers=key
    )
    assert answer_type.status_code == 422
    assert client.app.state.call_hub.calls == {} and not client.app.state.webrtc.calls


# ---------------------------------------------------------------- Chromium on the demo page


@pytest.fixture(scope="module")
def live_server() -> Iterator[CallscribeServer]:
    """`callscribe serve` in its embedded default (local mode), offering loopback candidates."""
    serve = CallscribeServer({"CALLSCRIBE_WEBRTC_HOSTS": "127.0.0.1"})
    serve.start()
    try:
        yield serve
    finally:
        serve.close()


@pytest.fixture
def page(meeting_wav):
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={meeting_wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",  # Chrome gathers no loopback candidate otherwise
    ]
    with (
        chromium("WebRTC demo browser test", args) as browser,
        watched_page(browser, viewport={"width": 1280, "height": 900}) as tab,
    ):
        yield tab


def test_live_captions_from_the_demo_page_over_webrtc(page, live_server):
    from playwright.sync_api import expect

    with step(page, "open", "webrtc"):
        page.goto(live_server.url + "/")
        expect(page.locator("#transport")).to_have_value("websocket")

    with step(page, "a WebRTC call with live captions", "webrtc"):
        page.select_option("#transport", "webrtc")
        page.select_option("#language", "en")
        page.click("#live-toggle")
        expect(page.locator("#live-toggle")).to_have_text("Stop")
        expect(page.locator("#live-status")).to_contain_text("Listening (WebRTC", timeout=30_000)
        expect(page.locator("#live-error")).to_be_hidden()
        final = page.get_by_test_id("final").filter(has_text=re.compile("tomorrow", re.I))
        expect(final.first).to_be_visible(timeout=CAPTION_S * 1000)
        expect(final.first).to_contain_text("en")

    with step(page, "hang up", "webrtc"):
        page.click("#live-toggle")
        expect(page.locator("#live-toggle")).to_have_text("Start", timeout=60_000)
        expect(page.locator("#live-status")).to_have_text("Stopped")
        expect(page.locator("#live-error")).to_be_hidden()

    page.screenshot(path=str(artifacts_dir() / "demo-page-webrtc.png"), full_page=True)
    # The call's recording (the admin API that lists calls needs a key even in local mode).
    recordings = list((live_server.directory / "recordings" / "local").glob("*/mixed.wav"))
    assert len(recordings) == 1
    with wave.open(str(recordings[0])) as recording:
        assert recording.getframerate() == 16_000 and recording.getnframes() > 16_000
