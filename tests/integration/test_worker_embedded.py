"""The embedded default: `callscribe serve` runs its own worker on the SQLite broker, with no
external service; a worker killed mid-task is started again and the task completes once, and a
server killed outright leaves no worker behind."""

import time

import httpx
import numpy as np
import psutil
import pytest

from tests.combined_server import bearer, tenant_database
from tests.helpers import espeak_audio, wav_bytes
from tests.services import CallscribeServer

SENTENCE = "Please call me tomorrow morning about the meeting."


@pytest.fixture
def server(tmp_path):
    url = f"sqlite:///{tmp_path}/admin.db"
    key = tenant_database(url)
    settings = {
        "CALLSCRIBE_DATABASE_URL": url,
        "CALLSCRIBE_MODEL": "whisper-tiny.en",
        "CALLSCRIBE_LANGUAGES": "en",
        "CALLSCRIBE_WORKER_EMBEDDED": "true",
    }
    with CallscribeServer(settings) as running:
        yield running, bearer(key)


def worker_process(server: CallscribeServer, other_than: int | None = None) -> psutil.Process:
    """The server's worker process (a live one, other than `other_than`)."""
    deadline = time.monotonic() + 60
    while True:
        children = [
            child
            for child in psutil.Process(server.process.pid).children()
            if child.pid != other_than
            and child.status() != psutil.STATUS_ZOMBIE
            and "worker" in child.cmdline()
        ]
        if children:
            return children[0]
        assert time.monotonic() < deadline, "no worker process"
        time.sleep(0.2)


def test_serve_runs_a_worker_that_survives_being_killed(server, tmp_path):
    running, key = server
    speech = espeak_audio(SENTENCE, tmp_path)
    unit = np.concatenate([speech, np.zeros(32_000, np.float32)])
    audio = np.tile(unit, 20)  # about 90 s
    first = worker_process(running)
    with httpx.Client(base_url=running.url, headers=key, timeout=30) as client:
        created = client.post("/v1/jobs", files={"file": ("long.wav", wav_bytes(audio, 16_000))})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        deadline = time.monotonic() + 180
        while (job := client.get(f"/v1/jobs/{job_id}").json())["progress"] == 0:
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        first.kill()
        worker_process(running, other_than=first.pid)  # the server starts another
        deadline = time.monotonic() + 300
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["status"] == "completed" and job["attempts"] == 2, job
        segments = client.get(f"/v1/jobs/{job_id}/transcript").json()["segments"]
        assert len(segments) == len({(s["start"], s["text"]) for s in segments}) > 5

    # A server killed outright takes its worker with it.
    worker = worker_process(running)
    running.kill()
    worker.wait(30)
