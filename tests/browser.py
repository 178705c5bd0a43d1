"""Debian's headless Chromium driven by Playwright, for the pages the app serves.

Never run `playwright install`: the browser is the system one. Without it (or without the
playwright package) browser tests are skipped with the reason, except under `CI=true`, where
they fail. Screenshots go to `$CALLSCRIBE_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def chromium(purpose: str, extra_args: Sequence[str] = ()) -> Iterator:
    """A launched browser (skips or, in CI, fails when there is none)."""
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
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()


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
