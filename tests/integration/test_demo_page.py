"""The demo page at `/`: served with its content security policy (browser-free), and end to end
in Debian's headless Chromium with a fake microphone that plays espeak-ng speech: live captions
over `/v1/stream` from the real `callscribe serve`, and a file transcribed through the form.

Never run `playwright install`: the browser is the system one (`/usr/bin/chromium`). Without it
(or without the playwright package) the browser test is skipped, except under `CI=true`.
A full-page screenshot lands in `$CALLSCRIBE_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import create_app
from tests.browser import artifacts_dir, chromium, fake_microphone, step, watched_page
from tests.services import CallscribeServer

CAPTION_S = 120  # the first live final: model warm-up and decoding on two shared cores
TRANSCRIBE_S = 180


# ---------------------------------------------------------------- browser-free checks


@pytest.fixture(scope="module")
def client(transcriber):
    with TestClient(create_app(transcriber)) as client:
        yield client


def test_the_page_is_served_at_the_root_with_its_policy(client):
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="demo/demo.js">' in page.text
    assert 'href="docs"' in page.text and 'href="admin/"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"

    script = client.get("/demo/demo.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "v1/stream" in script.text and "v1/audio/transcriptions" in script.text
    assert "content-security-policy" in script.headers
    worklet = client.get("/demo/pcm-worklet.js")
    assert "javascript" in worklet.headers["content-type"]
    assert "registerProcessor" in worklet.text
    assert "text/css" in client.get("/demo/demo.css").headers["content-type"]
    base = client.get("/ui/base.css")  # shared with the admin UI, linked before demo.css
    assert base.status_code == 200 and "text/css" in base.headers["content-type"]
    assert "--accent" in base.text and "content-security-policy" in base.headers
    assert page.text.index('href="ui/base.css"') < page.text.index('href="demo/demo.css"')
    assert client.get("/demo/missing.js").status_code == 404
    assert client.get("/demo/index.html").status_code == 404

    assert client.get("/docs").status_code == 200
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p in ("/", "/demo")]


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def server() -> Iterator[CallscribeServer]:
    """`callscribe serve` in its embedded default: local mode, no key needed on loopback."""
    serve = CallscribeServer({})
    serve.start()
    try:
        yield serve
    finally:
        serve.close()


@pytest.fixture
def page(meeting_wav):
    with (
        chromium("demo page browser test", fake_microphone(meeting_wav)) as browser,
        watched_page(
            browser, viewport={"width": 1280, "height": 900}, accept_downloads=True
        ) as tab,
    ):
        yield tab


def test_live_captions_from_the_microphone_and_a_file(page, server, meeting_wav):
    from playwright.sync_api import expect

    with step(page, "open", "demo"):
        page.goto(server.url + "/")
        expect(page.get_by_test_id("link-docs")).to_have_attribute("href", "docs")
        expect(page.locator("#live-toggle")).to_have_text("Start")

    with step(page, "a bad token is refused with the close code", "demo"):
        page.fill("#credential", "not-a-token")
        page.click("#live-toggle")
        expect(page.locator("#live-error")).to_contain_text("code 4401")
        expect(page.locator("#live-toggle")).to_have_text("Start")
        page.fill("#credential", "")

    with step(page, "live captions", "demo"):
        page.select_option("#language", "en")
        page.fill("#hotwords", "tomorrow morning\n")
        page.click("#live-toggle")
        expect(page.locator("#live-toggle")).to_have_text("Stop")
        expect(page.locator("#live-status")).to_contain_text("Listening", timeout=30_000)
        expect(page.locator("#live-error")).to_be_hidden()
        final = page.get_by_test_id("final").filter(has_text=re.compile("tomorrow", re.I))
        expect(final.first).to_be_visible(timeout=CAPTION_S * 1000)
        expect(final.first).to_contain_text("en")
        page.click("#hotwords-apply")
        expect(page.locator("#live-meta")).to_contain_text("Hot-words apply from segment")
        page.click("#live-toggle")
        expect(page.locator("#live-toggle")).to_have_text("Start", timeout=60_000)
        expect(page.locator("#live-status")).to_have_text("Stopped")
        expect(page.locator("#live-error")).to_be_hidden()

    with step(page, "transcribe a file", "demo"):
        page.set_input_files("#file-input", str(meeting_wav))
        page.click("#file-submit")
        expect(page.locator("#file-text")).to_contain_text(
            re.compile("tomorrow", re.I), timeout=TRANSCRIBE_S * 1000
        )
        expect(page.get_by_test_id("file-segment").first).to_be_visible()
        expect(page.locator("#file-error")).to_be_hidden()

    with step(page, "download the transcripts", "demo"):
        srt = download(page, "live", "srt")
        assert srt.startswith("1\n00:00:") and " --> " in srt and "tomorrow" in srt.lower()
        vtt = download(page, "file", "vtt")
        assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ") and "tomorrow" in vtt.lower()
        saved = json.loads(download(page, "file", "json"))
        assert "tomorrow" in saved["text"].lower() and saved["segments"][0]["end"] > 0

    page.screenshot(path=str(artifacts_dir() / "demo-page.png"), full_page=True)


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
"""An iPhone 12-14 sized screen."""
CONTROLS = [
    "#language",
    "#transport",
    "#hotwords",
    "#credential",
    "#live-toggle",
    "#live-download",
    "#file-input",
    "#file-submit",
]


def test_the_page_fits_a_phone(server):
    with (
        chromium("demo page on a phone") as browser,
        watched_page(browser, device_scale_factor=2, **PHONE) as page,
        step(page, "phone layout", "demo-phone"),
    ):
        page.goto(server.url + "/")
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{overflow} px wider than the screen"
        for control in CONTROLS:
            page.locator(control).scroll_into_view_if_needed()
            box = page.locator(control).bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, control
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (control, box)
        toggle = page.locator("#live-toggle").bounding_box()
        assert toggle["height"] >= 32, "the Start button is too small to tap"
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(artifacts_dir() / "demo-page-phone.png"), full_page=True)


def download(page, panel: str, fmt: str) -> str:
    """Save a panel's transcript in a format through the page; the file's text."""
    page.select_option(f"#{panel}-format", fmt)
    with page.expect_download() as saving:
        page.click(f"#{panel}-download")
    saved = saving.value
    assert saved.suggested_filename.endswith(f".{fmt}")
    return Path(saved.path()).read_text()
