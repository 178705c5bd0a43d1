"""The WebRTC gateway (`POST /v1/webrtc/offer`): an aiortc client in this process plays espeak
speech into a call and reads its captions from the `captions` data channel; hanging up ends the
call with its transcript stored; bad offers and callers are refused; only the listed web origins
may embed. Then Debian's headless Chromium, against the real `callscribe serve` with keys: the
demo page's WebRTC mode (captions, hot-words, a closed tab, four calls at once) and the embed
example of docs/embed-example.html on another origin.

Everything stays on loopback: `CALLSCRIBE_WEBRTC_HOSTS=127.0.0.1` (aioice never offers loopback
by itself) and, for Chromium, `--allow-loopback-in-peer-connection`.
"""

import asyncio
import json
import re
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from admin_api import migrate, tokens
from admin_api.auth import ADMIN, TENANT
from admin_api.db import make_engine
from admin_api.models import ApiKey, Call, Tenant, TranscriptSegment
from admin_api.security import split_prefix
from asr_core.evaluation import read_manifest, read_terms
from telephony.session import CallSession
from tests.browser import (
    artifacts_dir,
    chromium,
    chromiums,
    fake_microphone,
    final_caption,
    hang_up,
    is_offer,
    start_webrtc_call,
    step,
    watched_page,
)
from tests.combined_server import bearer, make_server, new_key, services
from tests.helpers import espeak_wav, padded_wav
from tests.services import CallscribeServer, free_port

aiortc = pytest.importorskip("aiortc")
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EMBED_ORIGIN = "https://app.example.com"
CAPTION_S = 120  # the first live final: model warm-up and decoding on two shared cores
CONCURRENT_CAPTION_S = 300  # four calls at once on two shared cores
ENDED_S = 90  # a closed tab: the peer goes away, or ICE consent runs out


@pytest.fixture
def server(transcriber, tmp_path):
    app, database = make_server(
        transcriber, tmp_path, webrtc_hosts="127.0.0.1", webrtc_origins=EMBED_ORIGIN
    )
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

    row, transcript = ended_call(database, call_id, 30)
    assert row.status == "ended" and row.source == "webrtc" and row.tenant_id == "acme"
    assert "tomorrow" in transcript.lower()
    listed = client.get("/v1/calls?active=false", headers=key).json()
    assert [c["id"] for c in listed] == [call_id]
    assert released(client, 30), "the ended call still holds its peer or hub entry"


def released(client: TestClient, timeout_s: float) -> bool:
    """Whether the server let go of every call within `timeout_s`: the row is marked ended
    first, then the peer closes, so an ended call may hold its peer for a moment."""
    deadline = time.monotonic() + timeout_s
    while services(client).hub.calls or services(client).telephony.webrtc.calls:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def ended_call(database: Engine, call_id: str, timeout_s: float) -> tuple[Call, str]:
    """The call once it is no longer active, with its stored live transcript's text."""
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(database) as db:
            row = db.get(Call, call_id)
            if (row is not None and row.status != "active") or time.monotonic() > deadline:
                break
        time.sleep(0.2)
    assert row is not None and row.status != "active", f"call {call_id} is still {row}"
    with Session(database) as db:
        stored = db.exec(select(TranscriptSegment).where(TranscriptSegment.call_id == call_id))
        return row, " ".join(segment.text for segment in stored)


def test_bad_offers_and_callers_are_refused(server):
    client, database, key, admin = server
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
    for refused in foreign_credentials(client, database):
        response = client.post("/v1/webrtc/offer", json={"sdp": "v=0", "type": "offer"}, **refused)
        assert response.status_code == 401, (refused, response.text)
    answer_type = client.post(
        "/v1/webrtc/offer", json={"sdp": "v=0", "type": "answer"}, headers=key
    )
    assert answer_type.status_code == 422
    assert not services(client).hub.calls and not services(client).telephony.webrtc.calls


def test_an_offer_that_fails_after_its_call_opened_leaves_no_call_behind(server, monkeypatch):
    """Whatever fails once the call is open (here: adding its leg) must end the call: it
    must not stay active in the hub, holding its tenant's stream slot."""
    client, database, key, _ = server

    def broken_add_leg(self, name, fmt) -> None:
        raise RuntimeError("no leg today")

    monkeypatch.setattr(CallSession, "add_leg", broken_add_leg)

    async def audio_offer() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio", direction="sendonly")
        pc.createDataChannel("captions")
        try:
            return await offer(pc)
        finally:
            await pc.close()

    with pytest.raises(RuntimeError, match="no leg today"):
        client.post(
            "/v1/webrtc/offer",
            json={"sdp": asyncio.run(audio_offer()), "type": "offer"},
            headers=key,
        )
    assert not services(client).hub.calls and not services(client).telephony.webrtc.calls
    assert services(client).asr.quotas.in_use("acme", "stream") == 0
    with Session(database) as db:
        assert [call.status for call in db.exec(select(Call))] == ["ended"]


def foreign_credentials(client, database: Engine) -> list[dict]:
    """Request options with credentials this server did not issue or no longer honours: an
    unknown key, a revoked one, a token signed by another server (for a valid key of the
    tenant) and one of a revoked key."""
    revoked = new_key(database, TENANT, "acme")
    token = client.post("/v1/tokens", json={}, headers=bearer(revoked)).json()["token"]
    with Session(database) as db:
        row = db.exec(select(ApiKey).where(ApiKey.prefix == split_prefix(revoked))).one()
        row.revoked_at = row.created_at
        db.add(row)
        db.commit()
    valid = split_prefix(new_key(database, TENANT, "acme"))
    forged, _ = tokens.mint(b"another server's secret", valid, "acme", 300)
    return [
        {"headers": bearer("cs_0badc0de_" + "x" * 32)},
        {"headers": bearer(revoked)},
        {"params": {"token": forged}},
        {"params": {"token": token}},
    ]


def test_only_listed_origins_may_embed(server):
    client, _, key, _ = server
    preflight = {"origin": EMBED_ORIGIN, "access-control-request-method": "POST"}
    preflight["access-control-request-headers"] = "content-type"
    allowed = client.options("/v1/webrtc/offer", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == EMBED_ORIGIN
    module = client.get("/demo/callscribe-webrtc.js", headers={"origin": EMBED_ORIGIN})
    assert module.headers["access-control-allow-origin"] == EMBED_ORIGIN
    assert "export async function startCaptions" in module.text

    stranger = {**preflight, "origin": "https://elsewhere.example"}
    assert (
        "access-control-allow-origin"
        not in client.options("/v1/webrtc/offer", headers=stranger).headers
    )
    other_path = client.get("/v1/calls", headers={"origin": EMBED_ORIGIN, **key})
    assert other_path.status_code == 200
    assert "access-control-allow-origin" not in other_path.headers


# ---------------------------------------------------------------- Chromium on the demo page


@dataclass
class Deployment:
    """`callscribe serve` with keys: tenant `acme`, whose backend holds `key`; its database."""

    server: CallscribeServer
    database: Engine
    key: str
    origin: str
    """The web app that may embed captions (`web_app`)."""

    @property
    def url(self) -> str:
        return self.server.url

    def token(self) -> str:
        """A stream token for one page, minted as the tenant's backend would."""
        response = httpx.post(f"{self.url}/v1/tokens", json={}, headers=bearer(self.key))
        response.raise_for_status()
        return response.json()["token"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    """The real `callscribe serve` on its default decode settings, offering loopback
    candidates, with a tenant key, letting a web app on another port embed captions."""
    origin = f"http://localhost:{free_port()}"
    url = f"sqlite:///{tmp_path_factory.mktemp('webrtc-serve') / 'admin.db'}"
    migrate.upgrade(url)
    database = make_engine(url)
    with Session(database) as db:
        db.add(Tenant(id="acme", name="acme"))
        db.commit()
    serve = CallscribeServer(
        {
            "CALLSCRIBE_DATABASE_URL": url,
            "CALLSCRIBE_AUTH": "keys",
            "CALLSCRIBE_WEBRTC_HOSTS": "127.0.0.1",
            "CALLSCRIBE_WEBRTC_ORIGINS": origin,
        }
    )
    try:
        serve.start()
        yield Deployment(serve, database, new_key(database, TENANT, "acme"), origin)
    finally:
        serve.close()
        database.dispose()


@pytest.fixture
def page(meeting_wav):
    with (
        chromium("WebRTC demo browser test", fake_microphone(meeting_wav)) as browser,
        watched_page(browser, viewport={"width": 1280, "height": 900}) as tab,
    ):
        yield tab


def test_live_captions_from_the_demo_page_over_webrtc(page, deployment):
    from playwright.sync_api import expect

    with step(page, "no credential: refused with the reason", "webrtc"):
        page.goto(deployment.url + "/")
        expect(page.locator("#transport")).to_have_value("websocket")
        page.select_option("#transport", "webrtc")
        page.click("#live-toggle")
        expect(page.locator("#live-error")).to_contain_text("the call was refused")
        expect(page.locator("#live-error")).to_contain_text("API key")
        expect(page.locator("#live-toggle")).to_have_text("Start")

    with step(page, "a WebRTC call with live captions", "webrtc"):
        call_id = start_webrtc_call(page, deployment.url, token=deployment.token())
        expect(page.locator("#live-status")).to_contain_text("Listening (WebRTC", timeout=30_000)
        final = final_caption(page, "tomorrow", CAPTION_S)
        expect(final).to_contain_text("en")

    with step(page, "hang up", "webrtc"):
        hang_up(page)

    page.screenshot(path=str(artifacts_dir() / "demo-page-webrtc.png"), full_page=True)
    row, transcript = ended_call(deployment.database, call_id, ENDED_S)
    assert row.status == "ended" and row.source == "webrtc" and "tomorrow" in transcript.lower()
    with wave.open(str(Path(row.recording_path) / "mixed.wav")) as recording:
        assert recording.getframerate() == 16_000 and recording.getnframes() > 16_000


def test_closing_the_tab_ends_the_call_and_keeps_its_transcript(page, deployment):
    with step(page, "a call", "webrtc-tab"):
        call_id = start_webrtc_call(page, deployment.url, token=deployment.token())
        final_caption(page, "tomorrow", CAPTION_S)
    page.close()

    row, transcript = ended_call(deployment.database, call_id, ENDED_S)
    assert row.status == "ended" and row.tenant_id == "acme"
    assert "tomorrow" in transcript.lower()
    listed = httpx.get(f"{deployment.url}/v1/calls", headers=bearer(deployment.key)).json()
    assert {"id": call_id, "status": "ended"}.items() <= next(
        c for c in listed if c["id"] == call_id
    ).items()


# ---------------------------------------------------------------- hot-words from the page

RARE_CLIP = ("en_cmuarctic_aew_a0001", "Philip Steels", "danger trail")
"""A shared recording, a name in it that Whisper base writes "fill up steels" without a list
(docs/benchmarks.md, hot-words), and words it gets right either way."""
ESPEAK_NAME = "Ramanathan Subramaniam"


@pytest.fixture(scope="module")
def rare_name(shared_speech, speech_dir) -> tuple[Path, str, str]:
    """Speech with a rare name, the name, and words recognised either way: the shared
    recording, or espeak-ng speech where the shared data is absent."""
    if shared_speech is None:
        espeak = espeak_wav(f"The meeting with {ESPEAK_NAME} is at noon.", speech_dir / "r.wav")
        return padded_wav(espeak, speech_dir / "rare-name.wav"), ESPEAK_NAME, "meeting"
    clip, name, context = RARE_CLIP
    assert name in read_terms(shared_speech / "hotwords.tsv")[clip]
    [utterance] = [u for u in read_manifest(shared_speech / "manifest.tsv") if u.id == clip]
    return padded_wav(utterance.path, speech_dir / f"{clip}.wav"), name, context


def test_a_rare_name_in_the_hotword_box_is_transcribed_right(rare_name, deployment):
    from playwright.sync_api import expect

    wav, name, context = rare_name
    with chromium("hot-words browser test", fake_microphone(wav)) as browser:
        for hotwords in ("", f"{name}\n"):
            with watched_page(browser, viewport={"width": 1280, "height": 900}) as page:
                label = "with" if hotwords else "without"
                with step(page, f"a call {label} hot-words", "webrtc-hotwords"):
                    start_webrtc_call(
                        page, deployment.url, hotwords=hotwords, token=deployment.token()
                    )
                    final = final_caption(page, context, CAPTION_S)
                    if hotwords:
                        expect(final).to_contain_text(name)
                    else:
                        expect(final).not_to_contain_text(re.compile(name, re.I))
                    page.screenshot(path=str(artifacts_dir() / f"demo-page-hotwords-{label}.png"))
                    hang_up(page)
                    captions = page.locator("#finals").inner_text()
                    assert (name.lower() in captions.lower()) == bool(hotwords), captions


# ---------------------------------------------------------------- four calls at once

SHARED_CALLS = {
    "en_cmuarctic_aew_a0001": "danger",
    "en_jfk_inaugural": "country",
    "en_ljspeech_LJ001-0030": "Germany",
    "en_ljspeech_LJ001-0016": "calligraphy",
}
"""Recordings and a word each that only it says."""
ESPEAK_CALLS = {
    "The quick brown fox jumps over the lazy dog.": "fox",
    "Please call me tomorrow morning about the meeting.": "tomorrow",
    "The train to London leaves at seven o'clock.": "London",
    "My sister bought a yellow umbrella yesterday.": "umbrella",
}


@pytest.fixture(scope="module")
def four_speakers(shared_speech, speech_dir) -> list[tuple[Path, str]]:
    """Four speech files (shared recordings, else espeak-ng) and the word each one alone says."""
    if shared_speech is None:
        return [
            (padded_wav(espeak_wav(text, speech_dir / "s.wav"), speech_dir / f"four-{i}.wav"), w)
            for i, (text, w) in enumerate(ESPEAK_CALLS.items())
        ]
    paths = {u.id: u.path for u in read_manifest(shared_speech / "manifest.tsv")}
    return [
        (padded_wav(paths[clip], speech_dir / f"{clip}.wav"), word)
        for clip, word in SHARED_CALLS.items()
    ]


def test_four_calls_at_once_each_get_their_own_captions(four_speakers, deployment):
    microphones = [fake_microphone(wav) for wav, _ in four_speakers]
    words = [word for _, word in four_speakers]
    with chromiums("concurrent WebRTC calls", microphones) as browsers, ExitStack() as tabs:
        pages = [
            tabs.enter_context(watched_page(b, viewport={"width": 800, "height": 700}))
            for b in browsers
        ]
        call_ids = [
            start_webrtc_call(page, deployment.url, token=deployment.token()) for page in pages
        ]
        assert len(set(call_ids)) == 4
        for index, (page, word) in enumerate(zip(pages, words, strict=True)):
            with step(page, f"captions of call {index}", "webrtc-four"):
                final_caption(page, word, CONCURRENT_CAPTION_S)
        for index, page in enumerate(pages):
            page.screenshot(path=str(artifacts_dir() / f"demo-page-webrtc-four-{index}.png"))
            hang_up(page)
            captions = page.locator("#finals").inner_text().lower()
            others = [w for w in words if w != words[index] and w.lower() in captions]
            assert not others, (index, captions)
    for call_id, word in zip(call_ids, words, strict=True):
        row, transcript = ended_call(deployment.database, call_id, ENDED_S)
        assert row.status == "ended" and word.lower() in transcript.lower()
        assert not [w for w in words if w != word and w.lower() in transcript.lower()]


# ---------------------------------------------------------------- embedded in another web app


@pytest.fixture(scope="module")
def web_app(deployment) -> Iterator[str]:
    """A tenant's web app on its own origin (`deployment.origin`): its page is
    docs/embed-example.html pointed at the server, and its backend's token route mints stream
    tokens with the tenant key. Both on loopback, as Chromium lets no public page reach it."""
    example = (REPO / "docs" / "embed-example.html").read_text()
    page = example.replace("https://callscribe.example.com", deployment.url).encode()
    assert page != example.encode()

    class App(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.reply(page, "text/html")

        def do_POST(self) -> None:
            token = json.dumps({"token": deployment.token()}).encode()
            self.reply(token, "application/json")

        def reply(self, body: bytes, media_type: str) -> None:
            self.send_response(200)
            self.send_header("content-type", media_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    port = int(deployment.origin.rsplit(":", 1)[1])
    with ThreadingHTTPServer(("127.0.0.1", port), App) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield deployment.origin
        server.shutdown()


def test_the_embed_example_captions_a_call_on_another_origin(page, deployment, web_app):
    from playwright.sync_api import expect

    with step(page, "captions on the app's page", "embed"):
        with page.expect_response(is_offer, timeout=60_000) as answer:
            page.goto(f"{web_app}/")
        call_id = answer.value.json()["call_id"]
        line = page.locator("#captions li").filter(has_text=re.compile("tomorrow", re.I))
        expect(line.first).to_be_visible(timeout=CAPTION_S * 1000)
    page.screenshot(path=str(artifacts_dir() / "embed-example.png"))
    page.goto("about:blank")  # leaving the page hangs up
    row, transcript = ended_call(deployment.database, call_id, ENDED_S)
    assert row.status == "ended" and "tomorrow" in transcript.lower()
