"""Debian's headless Chromium driven by Playwright, for the pages the app serves, and the demo
page's WebRTC calls from a fake microphone.

Never run `playwright install`: the browser is the system one. Without it (or without the
playwright package) browser tests are skipped with the reason, except under `CI=true`, where
they fail. Screenshots go to `$CALLSCRIBE_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("CALLSCRIBE_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fake_microphone(wav: Path) -> list[str]:
    """Chromium flags: a microphone that plays `wav` in a loop, granted without asking, and
    loopback ICE candidates for a WebRTC server on 127.0.0.1. The file is one flag of the
    whole browser: browsers with different speech need a process each (`chromiums`)."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",  # Chrome gathers no loopback candidate otherwise
    ]


@contextmanager
def chromiums(purpose: str, arg_sets: Sequence[Sequence[str]]) -> Iterator[list]:
    """Launched browsers, one per set of extra flags (skips or, in CI, fails when there is
    none): one Playwright driver for all, as the sync API allows only one per thread."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problems.append(
            "playwright is not installed (.venv/bin/pip install -c constraints.txt playwright; "
            "never `playwright install`)"
        )
    if problems:
        reason = f"{purpose}: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright, ExitStack() as launched:
        browsers = []
        for extra_args in arg_sets:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
            )
            launched.callback(browser.close)
            browsers.append(browser)
        yield browsers


@contextmanager
def chromium(purpose: str, extra_args: Sequence[str] = ()) -> Iterator:
    """A launched browser (skips or, in CI, fails when there is none)."""
    with chromiums(purpose, [extra_args]) as [browser]:
        yield browser


@contextmanager
def watched_page(browser, **context_options) -> Iterator:
    """A fresh tab; uncaught script errors and console errors (a CSP violation is one) fail."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    yield tab
    context.close()
    assert not problems, problems


@contextmanager
def step(page, name: str, prefix: str):
    """One step of a walk-through; a failing step leaves a screenshot named after it."""
    try:
        yield
    except BaseException:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        page.screenshot(path=str(artifacts_dir() / f"{prefix}-failed-{slug}.png"), full_page=True)
        raise


# ---------------------------------------------------------------- the demo page's WebRTC calls

CALL_S = 60
"""From Start to the server's answer: ICE gathering and a busy server on two shared cores."""


def is_offer(response) -> bool:
    """The answer to a page's `POST /v1/webrtc/offer` (not a CORS preflight)."""
    return "/v1/webrtc/offer" in response.url and response.request.method == "POST"


def start_webrtc_call(page, url: str, language: str = "en", hotwords: str = "", token="") -> str:
    """Open the demo page at `url` and start a WebRTC call from its microphone; the call's id
    (from the server's answer)."""
    from playwright.sync_api import expect

    page.goto(url + "/")
    page.select_option("#transport", "webrtc")
    page.select_option("#language", language)
    page.fill("#hotwords", hotwords)
    page.fill("#credential", token)
    with page.expect_response(is_offer, timeout=CALL_S * 1000) as answered:
        page.click("#live-toggle")
    answer = answered.value
    assert answer.ok, f"{answer.status}: {answer.text()}"
    expect(page.locator("#live-toggle")).to_have_text("Stop")
    expect(page.locator("#live-error")).to_be_hidden()
    return answer.json()["call_id"]


def final_caption(page, pattern: str, timeout_s: float):
    """The first final caption matching `pattern` (case-insensitive), once it is on screen."""
    from playwright.sync_api import expect

    final = page.get_by_test_id("final").filter(has_text=re.compile(pattern, re.I)).first
    expect(final).to_be_visible(timeout=timeout_s * 1000)
    return final


def hang_up(page) -> None:
    """Stop the call from the page: the last finals, then `call_ended`, then Start again."""
    from playwright.sync_api import expect

    page.click("#live-toggle")
    expect(page.locator("#live-toggle")).to_have_text("Start", timeout=CALL_S * 1000)
    expect(page.locator("#live-status")).to_have_text("Stopped")
    expect(page.locator("#live-error")).to_be_hidden()
