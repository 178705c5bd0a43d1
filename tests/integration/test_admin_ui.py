"""The admin web UI (`/admin/`) end to end: the real `callscribe serve` process, driven through
Debian's headless Chromium with Playwright; plus `/v1/me` and the static files, browser-free.

Never run `playwright install`: the browser is the system one (`/usr/bin/chromium`). Without it
(or without the playwright package) the browser test is skipped, except under `CI=true`.
A full-page screenshot lands in `$CALLSCRIBE_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from websockets.sync.client import connect

from admin_api import migrate
from admin_api.auth import ADMIN, TENANT
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.main import create_admin_app
from asr_core.audio import decode_audio
from tests.browser import artifacts_dir, chromium, step, watched_page
from tests.helpers import espeak_wav, to_int16
from tests.services import CallscribeServer

TRANSCRIBE_S = 240  # two transcriptions of a few seconds of speech, on two shared cores
SPEECH = "Please call Xiaomeng Zhao about the CRISPR assay."
FIXED_TSV = "Xiaomeng Zhao\tShiaomeng Zhao\nCRISPR\tcrisper\nOzempic\n"
BROKEN_TSV = "Xiaomeng Zhao\tShiaomeng Zhao\nCRISPR\tcrisper\n" + "x" * 70 + "\nOzempic\n"


def key_prefix(secret: str) -> str:
    return "_".join(secret.split("_")[:2])


# ---------------------------------------------------------------- browser-free checks


@pytest.fixture
def admin_app(tmp_path):
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with TestClient(create_admin_app(engine)) as client:
        yield client, engine


def _key(engine, scope: str, tenant_id: str | None = None) -> str:
    with Session(engine) as session:
        _, new = keys.create(session, scope, tenant_id, "test")
        session.commit()
    return new.secret


def test_me_names_the_calling_key(admin_app):
    client, engine = admin_app
    admin = _key(engine, ADMIN)
    me = client.get("/v1/me", headers={"authorization": f"Bearer {admin}"})
    assert me.json() == {"key_prefix": key_prefix(admin), "scope": "admin", "tenant_id": None}
    client.post(
        "/v1/tenants",
        json={"id": "acme", "name": "Acme"},
        headers={"authorization": f"Bearer {admin}"},
    )
    tenant = _key(engine, TENANT, "acme")
    me = client.get("/v1/me", headers={"x-api-key": tenant})
    assert me.json() == {"key_prefix": key_prefix(tenant), "scope": "tenant", "tenant_id": "acme"}
    assert client.get("/v1/me").status_code == 401
    refused = client.get("/v1/me", headers={"authorization": "Bearer cs_00000000_guess"})
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "the API key is not valid"


def test_the_ui_is_served_at_admin_without_a_key(admin_app):
    client, _ = admin_app
    redirect = client.get("/admin", follow_redirects=False)
    assert redirect.status_code in (302, 307) and redirect.headers["location"] == "admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    script = client.get("/admin/app.js")
    assert "javascript" in script.headers["content-type"]
    assert "/v1/me" in script.text
    assert "text/css" in client.get("/admin/app.css").headers["content-type"]
    assert client.get("/admin/missing.js").status_code == 404
    # No route of the UI enters the OpenAPI spec (the isolation tests walk it).
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/admin")]


# ---------------------------------------------------------------- the real server


@dataclass(frozen=True)
class AdminServer:
    """A running `callscribe serve` with an admin key and one tenant (`acme`) with its key."""

    url: str
    admin_key: str
    tenant_id: str
    tenant_key: str

    def client(self, key: str | None = None) -> httpx.Client:
        key = key or self.admin_key
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {key}"}, timeout=60
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[AdminServer]:
    """`callscribe serve` on a free port and a fresh SQLite database; always terminated."""
    home = tmp_path_factory.mktemp("admin-ui-server")
    settings = {"CALLSCRIBE_DATABASE_URL": f"sqlite:///{home / 'admin.db'}"}
    created = subprocess.run(
        [sys.executable, "-m", "callscribe", "keys", "create-admin", "--name", "e2e"],
        env={**os.environ, **settings},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    admin_key = created.stdout.strip()
    serve = CallscribeServer(settings)
    serve.start()
    try:
        with httpx.Client(
            base_url=serve.url, headers={"authorization": f"Bearer {admin_key}"}, timeout=60
        ) as admin:
            tenant = admin.post("/v1/tenants", json={"id": "acme", "name": "Acme Support"})
            assert tenant.status_code == 201, tenant.text
            key = admin.post("/v1/tenants/acme/keys", json={"name": "e2e agents"})
            assert key.status_code == 201, key.text
        yield AdminServer(serve.url, admin_key, "acme", key.json()["key"])
    finally:
        serve.close()


class LiveCall:
    """A live stream of the tenant's, held open across UI steps: each utterance spoken into it
    is a new segment, decoded with whatever list the tenant has when the segment starts."""

    def __init__(self, server: AdminServer, audio) -> None:
        url = server.url.replace("http", "ws", 1) + "/v1/stream"
        headers = {"authorization": f"Bearer {server.tenant_key}"}
        self._stack = ExitStack()
        self.socket = self._stack.enter_context(connect(url, additional_headers=headers))
        self.socket.send(json.dumps({"language": "en"}))
        assert json.loads(self.socket.recv(timeout=60))["type"] == "ready"
        silence = np.zeros(16_000, dtype=np.float32)
        self.utterance = to_int16(np.concatenate([audio, silence])).tobytes()

    def speak(self) -> dict:
        """Say the sentence once; the segment's final."""
        for offset in range(0, len(self.utterance), 3200):
            self.socket.send(self.utterance[offset : offset + 3200])
        final = None
        while (event := json.loads(self.socket.recv(timeout=TRANSCRIBE_S)))["type"] != "endpoint":
            final = event if event["type"] == "final" else final
        assert final is not None
        return final

    def close(self) -> None:
        self._stack.close()


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser():
    with chromium("admin UI browser test") as launched:
        yield launched


@pytest.fixture
def page(browser):
    with watched_page(
        browser, viewport={"width": 1360, "height": 900}, accept_downloads=True
    ) as tab:
        yield tab


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    return espeak_wav(SPEECH, tmp_path_factory.mktemp("admin-ui-speech") / "call.wav")


# ---------------------------------------------------------------- the walk-through, step by step


def log_in(page, server: AdminServer) -> None:
    """A wrong key is refused with the API's reason; the admin key shows who is logged in and
    stays logged in across a reload."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/admin")  # redirects to /admin/
    assert page.url.endswith("/admin/")
    page.fill("#login-key", "cs_00000000_wrong")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("the API key is not valid")
    page.fill("#login-key", server.admin_key)
    page.click("#login-submit")
    expect(page.locator("#whoami")).to_contain_text(f"Admin key {key_prefix(server.admin_key)}")
    expect(page.locator("#login-view")).to_be_hidden()
    expect(page.get_by_test_id("tenant-acme")).to_be_visible()
    page.reload()  # the key stays for the tab's session
    expect(page.locator("#whoami")).to_contain_text(key_prefix(server.admin_key))


def create_tenant_and_keys(page, server: AdminServer) -> None:
    """An admin creates a tenant (a bad id shows the API's reason), creates a key, sees the
    secret once, and revokes it; also an admin key."""
    from playwright.sync_api import expect

    page.fill("#tenant-new-id", "Not A Slug")
    page.fill("#tenant-new-name", "Globex")
    page.click("#tenant-create")
    expect(page.locator("#tenant-create-error")).to_contain_text("lower-case letters")
    page.fill("#tenant-new-id", "globex")
    page.fill("#tenant-new-name", "Globex Corp")
    page.click("#tenant-create")
    expect(page.locator("#tenant-title")).to_have_text("Globex Corp")
    expect(page.get_by_test_id("tenant-globex")).to_have_attribute("aria-current", "page")

    page.fill("#tenant-key-name", "agent desk")
    page.click("#tenant-key-create")
    secret_box = page.locator("#tenant-key-secret")
    expect(secret_box).to_contain_text("shown this once")
    secret = secret_box.get_by_test_id("new-secret").inner_text().strip()
    with server.client(secret) as tenant:
        assert tenant.get("/v1/me").json()["tenant_id"] == "globex"
    revoke = page.get_by_test_id(f"revoke-{key_prefix(secret)}")
    revoke.click()
    expect(revoke).to_have_text("Revoke now?")
    revoke.click()
    expect(page.get_by_test_id(f"key-row-{key_prefix(secret)}")).to_contain_text("revoked")
    with server.client(secret) as tenant:
        assert tenant.get("/v1/me").status_code == 401

    page.click("#show-admin-keys")
    page.fill("#admin-key-name", "second admin")
    page.click("#admin-key-create")
    expect(page.locator("#admin-key-secret")).to_contain_text("New admin key")
    expect(page.locator("#admin-keys-table tbody tr")).to_have_count(2)


def open_tenant(page, server: AdminServer) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id(f"tenant-{server.tenant_id}").click()
    expect(page.locator("#tenant-title")).to_have_text("Acme Support")
    expect(page.locator("#lists-empty")).to_be_visible()


def create_list(page) -> None:
    from playwright.sync_api import expect

    page.fill("#list-new-name", "products")
    page.fill("#list-new-content", "Ozempic\n")
    page.click("#list-create")
    expect(page.locator("#list-title")).to_have_text("products")
    expect(page.locator("#list-version")).to_have_attribute("data-version", "1")
    expect(page.get_by_test_id("entry-phrase")).to_have_count(1)
    expect(page.get_by_test_id("entry-phrase")).to_have_value("Ozempic")


def import_with_an_error(page) -> None:
    """A TSV file with a too-long phrase on line 3: the error names the line, nothing applies."""
    from playwright.sync_api import expect

    page.set_input_files(
        "#import-file",
        files=[{"name": "names.tsv", "mimeType": "text/plain", "buffer": BROKEN_TSV.encode()}],
    )
    page.click("#import-submit")
    errors = page.locator("#import-errors")
    expect(errors).to_contain_text("names.tsv was not imported; the list is unchanged")
    line = errors.locator('[data-testid=import-error-line][data-line="3"]')
    expect(line).to_contain_text("Line 3")
    expect(line).to_contain_text("phrase is 70 characters, the limit is 64")
    expect(line.locator(".source-line")).to_have_text("x" * 70)
    expect(page.locator("#list-version")).to_have_attribute("data-version", "1")
    expect(page.get_by_test_id("entry-phrase")).to_have_count(1)
    expect(page.locator("#versions-table tbody tr")).to_have_count(1)


def import_the_fix(page) -> None:
    """The corrected list, pasted: a new version with every phrase and alias."""
    from playwright.sync_api import expect

    page.set_input_files("#import-file", files=[])
    page.fill("#import-text", FIXED_TSV)
    page.click("#import-submit")
    expect(page.locator("#import-result")).to_contain_text("3 phrases, now version 2")
    expect(page.locator("#import-errors")).to_be_hidden()
    expect(page.locator("#list-version")).to_have_attribute("data-version", "2")
    phrases = page.get_by_test_id("entry-phrase")
    expect(phrases).to_have_count(3)
    expect(phrases.nth(0)).to_have_value("Xiaomeng Zhao")
    expect(page.get_by_test_id("entry-aliases").nth(0)).to_have_value("Shiaomeng Zhao")
    expect(page.locator("#versions-table tbody tr")).to_have_count(2)


def edit_rows_and_save(page, server: AdminServer) -> None:
    """Table edits (a weight, an alias, a new row, a removed row) saved as the next version."""
    from playwright.sync_api import expect

    page.get_by_label("Weight, row 2").fill("5")
    page.get_by_label("Aliases, row 3").fill("oh zempic")
    page.click("#entry-add")
    page.get_by_label("Phrase, row 4").fill("Wegovy")
    page.get_by_label("Remove row 4").click()
    expect(page.locator("#editor-status")).to_contain_text("Unsaved changes")
    page.fill("#save-note", "CRISPR weighted up")
    page.click("#list-save")
    expect(page.locator("#editor-status")).to_have_text("Saved as version 3")
    with server.client() as admin:
        saved = admin.get("/v1/tenants/acme/hotword-lists/products").json()
    assert saved["version"] == 3
    assert saved["entries"] == [
        {"phrase": "Xiaomeng Zhao", "weight": 1.0, "aliases": ["Shiaomeng Zhao"]},
        {"phrase": "CRISPR", "weight": 5.0, "aliases": ["crisper"]},
        {"phrase": "Ozempic", "weight": 1.0, "aliases": ["oh zempic"]},
    ]


def save_after_someone_else(page, server: AdminServer) -> None:
    """The list changes behind the page's back: saving says so (409), reloading shows it."""
    from playwright.sync_api import expect

    with server.client(server.tenant_key) as tenant:
        changed = tenant.patch(
            "/v1/tenants/acme/hotword-lists/products",
            json={"add": [{"phrase": "Wegovy"}], "base_version": 3, "note": "from the API"},
        )
        assert changed.status_code == 200, changed.text
    page.get_by_label("Weight, row 1").fill("2")
    page.click("#list-save")
    conflict = page.locator("#save-error")
    expect(conflict).to_contain_text("Changed meanwhile, reload")
    expect(conflict).to_contain_text("version 4")
    conflict.get_by_test_id("conflict-reload").click()
    expect(page.locator("#list-version")).to_have_attribute("data-version", "4")
    expect(page.get_by_test_id("entry-phrase").nth(3)).to_have_value("Wegovy")
    expect(page.get_by_test_id("entry-weight").nth(0)).to_have_value("1")


def version_history(page, server: AdminServer) -> None:
    from playwright.sync_api import expect

    rows = page.locator("#versions-table tbody tr")
    expect(rows).to_have_count(4)
    newest = page.get_by_test_id("version-row-4")
    expect(newest).to_contain_text("current")
    expect(newest).to_contain_text(key_prefix(server.tenant_key))
    expect(newest).to_contain_text("from the API")
    edited = page.get_by_test_id("version-row-3")
    expect(edited).to_contain_text("CRISPR weighted up")
    expect(edited).to_contain_text(key_prefix(server.admin_key))
    expect(page.get_by_test_id("version-row-2")).to_contain_text("import pasted.tsv")
    expect(page.get_by_test_id("version-row-1")).to_contain_text("created in the admin UI")
    expect(page.get_by_test_id("rollback-1")).to_be_visible()


def try_it(page, speech_wav: Path) -> None:
    """One recording, transcribed without hot-words and with the list, side by side."""
    from playwright.sync_api import expect

    page.set_input_files("#tryit-file", str(speech_wav))
    page.select_option("#tryit-language", "en")
    page.click("#tryit-run")
    expect(page.locator("#tryit-status")).to_contain_text("Done", timeout=TRANSCRIBE_S * 1000)
    expect(page.locator("#tryit-error")).to_be_hidden()
    plain = page.locator("#tryit-plain-text").inner_text().strip()
    hot = page.locator("#tryit-hot-text").inner_text().strip()
    print(f"try it: without hot-words {plain!r}; with the list {hot!r}")
    assert plain and not plain.startswith("Failed"), plain
    assert hot and not hot.startswith("Failed"), hot
    assert "call" in plain.lower() and "call" in hot.lower()  # both heard the recording
    expect(page.locator("#tryit-hot-found")).to_contain_text("List phrases heard:")
    marks = page.locator("#tryit-hot-text mark")
    assert [m.lower() for m in marks.all_inner_texts()] == [
        m.lower() for m in re.findall(r"\bXiaomeng\s+Zhao\b|\bCRISPR\b", hot, flags=re.IGNORECASE)
    ]
    page.screenshot(path=str(artifacts_dir() / "admin-ui-try-it.png"), full_page=True)


def live_call_picks_up(call: LiveCall, server: AdminServer, phrase: str | None) -> None:
    """The next segment of the call in progress is decoded with the tenant's current version
    (`phrase` heard, or with None: "Xiaomeng Zhao" no longer heard)."""
    with server.client(server.tenant_key) as tenant:
        active = tenant.get("/v1/hotwords/active").json()
    final = call.speak()
    assert final["hotword_version"] == active["version"]
    if phrase is None:
        assert "Xiaomeng Zhao" not in final["text"]
    else:
        assert phrase in active["phrases"]
        assert phrase in final["text"]


def roll_back(page) -> None:
    """Back to version 1 (as version 5): the table shows the old content again."""
    from playwright.sync_api import expect

    page.get_by_test_id("rollback-1").click()
    expect(page.locator("#list-version")).to_have_attribute("data-version", "5")
    expect(page.locator("#editor-status")).to_contain_text("Rolled back to version 1")
    phrases = page.get_by_test_id("entry-phrase")
    expect(phrases).to_have_count(1)
    expect(phrases).to_have_value("Ozempic")
    expect(page.get_by_test_id("version-row-5")).to_contain_text("rollback to version 1")


def export(page) -> None:
    with page.expect_download() as download_info:
        page.click("#export-download")
    download = download_info.value
    assert download.suggested_filename == "products.tsv"
    assert Path(download.path()).read_text() == "Ozempic\n"


def tenant_key_sees_its_own_tenant(page, server: AdminServer) -> None:
    """After logging out, a tenant key sees its own lists and no tenant or key admin."""
    from playwright.sync_api import expect

    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#global-notice")).to_contain_text("Logged out")
    page.fill("#login-key", server.tenant_key)
    page.click("#login-submit")
    expect(page.locator("#whoami")).to_contain_text("Acme Support")
    expect(page.locator("#tenant-title")).to_have_text("Acme Support")
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("#tenant-keys-card")).to_be_hidden()
    expect(page.locator("#tenant-delete")).to_be_hidden()
    expect(page.get_by_test_id("list-row-products")).to_contain_text("v5")


def test_admin_ui_end_to_end(browser, server, page, speech_wav):
    """The walk-through; `browser` first so a missing Chromium skips before the server starts."""
    with step(page, "log in", "admin-ui"):
        log_in(page, server)
    with step(page, "create tenant and keys", "admin-ui"):
        create_tenant_and_keys(page, server)
    with step(page, "open tenant", "admin-ui"):
        open_tenant(page, server)
    with step(page, "create list", "admin-ui"):
        create_list(page)
    call = LiveCall(server, decode_audio(speech_wav))
    with step(page, "a live call before the fix", "admin-ui"):
        assert "Xiaomeng Zhao" not in call.speak()["text"]
    with step(page, "import with an error", "admin-ui"):
        import_with_an_error(page)
    with step(page, "import the fix", "admin-ui"):
        import_the_fix(page)
    with step(page, "the live call picks up the new phrase", "admin-ui"):
        live_call_picks_up(call, server, "Xiaomeng Zhao")
    with step(page, "edit rows and save", "admin-ui"):
        edit_rows_and_save(page, server)
    with step(page, "save after someone else", "admin-ui"):
        save_after_someone_else(page, server)
    with step(page, "version history", "admin-ui"):
        version_history(page, server)
    with step(page, "try it", "admin-ui"):
        try_it(page, speech_wav)
    with step(page, "roll back", "admin-ui"):
        roll_back(page)
    with step(page, "the live call drops the phrase again", "admin-ui"):
        live_call_picks_up(call, server, None)
    call.close()
    with step(page, "export", "admin-ui"):
        export(page)
    page.screenshot(path=str(artifacts_dir() / "admin-ui.png"), full_page=True)
    with step(page, "tenant key", "admin-ui"):
        tenant_key_sees_its_own_tenant(page, server)
