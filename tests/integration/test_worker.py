"""The post-call worker for real: a Redis broker, `callscribe worker` processes, the server
in-process. Batch jobs from uploads and URLs, the post-call pass of a two-leg call, a worker
killed mid-task, signed webhooks retried after a 500, bad inputs, and tenant isolation."""

import contextlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.auth import ADMIN
from admin_api.models import TranscriptSegment
from asr_core.audio import RawFormat
from asr_core.transcribe import Transcriber
from tests.combined_server import bearer, make_server, new_key, open_call, services
from tests.helpers import espeak_audio, to_int16, wav_bytes
from tests.services import CeleryWorker
from worker.tasks.webhooks import SIGNATURE_HEADER, verify

SENTENCE = "Please call me tomorrow morning about the meeting."
AGENT_SENTENCE = "Thank you for calling, how can I help you today?"


@pytest.fixture(scope="module")
def tiny() -> Transcriber:
    from asr_core.engines import load_engine

    return Transcriber(load_engine("whisper-tiny.en"))


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    return espeak_audio(SENTENCE, tmp_path_factory.mktemp("worker-speech"))


_BROKER_DATABASES = itertools.count(1)
"""Redis databases 1, 2, ...: one per stack (a Redis server has 16)."""


@contextlib.contextmanager
def running_stack(transcriber, model: str, redis_server, tmp_path: Path):
    """The server and one worker (`model`) on a Redis database of their own (a stack's worker
    must never take another stack's tasks), sharing a database and var dir; a visibility
    timeout of 3 s, so a killed worker's task comes back within seconds.
    Yields (client, database, keys by tenant and "admin", worker, tmp_path)."""
    redis_server.start()
    broker = redis_server.url.rsplit("/", 1)[0] + f"/{next(_BROKER_DATABASES)}"
    settings = {
        "broker_url": broker,
        "worker_visibility_timeout_s": 3.0,
        "worker_retry_base_s": 0.5,
        "outbound_allow_private": True,  # the file server and webhook receivers are on loopback
        "model": model,
        "languages": "en",
    }
    app, database = make_server(transcriber, tmp_path, **settings)
    env = {f"CALLSCRIBE_{k.upper()}": str(v) for k, v in settings.items()}
    env |= {
        "CALLSCRIBE_LANGUAGES": "en",
        "CALLSCRIBE_DATABASE_URL": f"sqlite:///{tmp_path}/admin.db",
        "CALLSCRIBE_VAR_DIR": str(tmp_path),
        "CALLSCRIBE_CPU_THREADS": "2",
    }
    worker = CeleryWorker(env)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        for tenant in ("acme", "globex"):
            client.post("/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin)
        keys = {t: bearer(new_key(database, "tenant", t)) for t in ("acme", "globex")}
        keys["admin"] = admin
        try:
            worker.start()
            yield client, database, keys, worker, tmp_path
        finally:
            worker.close()
    database.dispose()


@pytest.fixture(scope="module")
def stack(tiny, redis_server, tmp_path_factory):
    with running_stack(tiny, "whisper-tiny.en", redis_server, tmp_path_factory.mktemp("w")) as s:
        yield s


def wait_for_job(client, key, job_id: str, timeout: float = 180.0, until=None) -> dict:
    """Poll the job until it is completed or failed (or `until(job)` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=key).json()
        if (until or (lambda j: j["status"] in ("completed", "failed")))(job):
            return job
        assert time.monotonic() < deadline, f"job still {job}"
        time.sleep(0.2)


def submit(client, key, data: bytes, name: str = "speech.wav", **form) -> dict:
    response = client.post("/v1/jobs", files={"file": (name, data)}, data=form, headers=key)
    assert response.status_code == 202, response.text
    return response.json()


def post_segments(database, **owner) -> list[TranscriptSegment]:
    with Session(database) as db:
        query = select(TranscriptSegment).where(TranscriptSegment.kind == "post")
        for name, value in owner.items():
            query = query.where(getattr(TranscriptSegment, name) == value)
        return list(db.exec(query))


def test_an_uploaded_job_is_transcribed_in_every_format(stack, speech):
    client, _, keys, _, _ = stack
    audio = np.concatenate([speech, np.zeros(8000, np.float32), speech])
    job = submit(client, keys["acme"], wav_bytes(audio, 16_000), language="en")
    assert job["status"] == "queued" and job["kind"] == "batch"
    done = wait_for_job(client, keys["acme"], job["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 1.0
    assert done["duration_s"] == pytest.approx(len(audio) / 16_000, abs=0.01)
    base = f"/v1/jobs/{job['id']}/transcript"
    body = client.get(base, headers=keys["acme"]).json()
    assert "tomorrow" in body["text"].lower() and body["status"] == "completed"
    assert body["segments"][0]["leg"] == "mixed" and body["segments"][0]["words"]
    srt = client.get(f"{base}?format=srt", headers=keys["acme"])
    assert srt.text.startswith("1\n00:00:0") and "-->" in srt.text
    assert client.get(f"{base}?format=vtt", headers=keys["acme"]).text.startswith("WEBVTT")
    assert "tomorrow" in client.get(f"{base}?format=txt", headers=keys["acme"]).text.lower()
    listed = client.get("/v1/jobs", headers=keys["acme"]).json()
    assert job["id"] in [j["id"] for j in listed]
    assert input_removed(stack, job["id"]), "the upload is still kept after its job completed"


def input_removed(stack, job_id: str, timeout_s: float = 30.0) -> bool:
    """Whether the job's input folder goes away (right after the job's final status)."""
    folder = stack[4] / "jobs" / job_id
    deadline = time.monotonic() + timeout_s
    while folder.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_tenants_never_see_each_others_jobs_calls_or_transcripts(stack, speech):
    client, _, keys, _, _ = stack
    job = submit(client, keys["acme"], wav_bytes(speech, 16_000))
    wait_for_job(client, keys["acme"], job["id"])
    other = keys["globex"]
    for path in ("", "/transcript", "/deliveries"):
        response = client.get(f"/v1/jobs/{job['id']}{path}", headers=other)
        assert response.status_code == 404, path
    assert job["id"] not in [j["id"] for j in client.get("/v1/jobs", headers=other).json()]
    assert client.get(f"/v1/jobs/{job['id']}", headers=keys["admin"]).status_code == 200
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 401
    assert client.get("/v1/tenants/acme/settings", headers=other).status_code == 404


def test_a_call_is_transcribed_again_after_hang_up(stack, speech, tmp_path):
    client, database, keys, _, _ = stack
    agent = espeak_audio(AGENT_SENTENCE, tmp_path)
    pcm = RawFormat("pcm_s16le", 16000)
    session = open_call(client, "acme", {"agent": pcm, "customer": pcm}, language="en")
    silence = np.zeros(16_000, np.float32)
    session.feed("agent", to_int16(np.concatenate([agent, silence, silence])).tobytes())
    session.feed("customer", to_int16(np.concatenate([silence, speech, silence])).tobytes())
    client.portal.call(session.end)
    job_id = f"postcall-{session.id}"
    done = wait_for_job(client, keys["acme"], job_id)
    assert done["status"] == "completed" and done["call_id"] == session.id, done

    url = f"/v1/calls/{session.id}/transcript"
    post = client.get(url, headers=keys["acme"]).json()
    assert post["pass"] == "post"
    assert post["engine"] == "whisper" and post["model"] == "whisper-tiny.en", post
    assert [s["leg"] for s in post["segments"]] == ["agent", "customer"]  # one timeline
    assert "help" in post["segments"][0]["text"] and "tomorrow" in post["segments"][1]["text"]
    live = client.get(f"{url}?pass=live", headers=keys["acme"]).json()
    assert {s["leg"] for s in live["segments"]} == {"agent", "customer"}
    txt = client.get(f"{url}?format=txt", headers=keys["acme"]).text.splitlines()
    assert txt[0].startswith("agent: ") and txt[1].startswith("customer: ")
    assert client.get(url, headers=keys["globex"]).status_code == 404
    calls = client.get("/v1/calls?since=2000-01-01T00:00:00Z", headers=keys["acme"]).json()
    assert session.id in [c["id"] for c in calls]

    # Queued again, it replaces the transcript: never two copies.
    first = sorted((s.leg, s.start_ms, s.text) for s in post_segments(database, call_id=session.id))
    services(client).hub.after_call(session.id)
    again = wait_for_job(
        client,
        keys["acme"],
        job_id,
        until=lambda j: j["status"] == "completed" and j["attempts"] == 2,
    )
    assert again["attempts"] == 2
    rows = sorted((s.leg, s.start_ms, s.text) for s in post_segments(database, call_id=session.id))
    assert rows == first


def long_recording(speech: np.ndarray, seconds: float) -> np.ndarray:
    """`speech` with 2 s pauses, repeated to `seconds`."""
    unit = np.concatenate([speech, np.zeros(32_000, np.float32)])
    return np.tile(unit, int(seconds * 16_000 / len(unit)) + 1)[: int(seconds * 16_000)]


def test_a_worker_killed_mid_task_leaves_one_transcript(stack, speech):
    client, database, keys, worker, _ = stack
    audio = long_recording(speech, 240)
    job = submit(client, keys["acme"], wav_bytes(audio, 16_000), language="en")
    running = wait_for_job(
        client,
        keys["acme"],
        job["id"],
        until=lambda j: j["progress"] > 0 or j["status"] != "queued",
    )
    assert running["status"] == "running", running
    worker.kill()  # SIGKILL: no acknowledgement, no shutdown code
    assert client.get(f"/v1/jobs/{job['id']}", headers=keys["acme"]).json()["status"] == "running"
    worker.start()
    done = wait_for_job(client, keys["acme"], job["id"])
    assert done["status"] == "completed" and done["attempts"] == 2, done
    rows = post_segments(database, job_id=job["id"])
    assert len(rows) == len({(r.start_ms, r.text) for r in rows}) > 10
    time.sleep(5)  # past the visibility timeout: nothing is delivered a third time
    assert client.get(f"/v1/jobs/{job['id']}", headers=keys["acme"]).json()["attempts"] == 2
    assert len(post_segments(database, job_id=job["id"])) == len(rows)


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: answers 500 to the first attempt, 200 after."""

    received: ClassVar[list] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(500 if len(self.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Receiver.received
    server.shutdown()
    server.server_close()


def test_the_signed_webhook_is_retried_after_a_500(stack, speech, receiver):
    client, _, keys, _, _ = stack
    url, received = receiver
    settings = client.patch(
        "/v1/tenants/acme/settings", json={"webhook_url": url}, headers=keys["acme"]
    ).json()
    secret = settings["webhook_secret"]
    assert secret.startswith("whsec_")
    try:
        job = submit(client, keys["acme"], wav_bytes(speech, 16_000))
        deadline = time.monotonic() + 120
        while len(received) < 2:
            assert time.monotonic() < deadline, received
            time.sleep(0.2)
        for headers, body in received:
            assert verify(
                secret, headers["X-Callscribe-Timestamp"], body, headers[SIGNATURE_HEADER]
            )
            assert json.loads(body)["job"]["id"] == job["id"]
            assert json.loads(body)["event"] == "job.completed"
        assert received[0][0]["X-Callscribe-Delivery"] == received[1][0]["X-Callscribe-Delivery"]
        assert not verify(
            "wrong",
            received[0][0]["X-Callscribe-Timestamp"],
            received[0][1],
            received[0][0][SIGNATURE_HEADER],
        )
        log = client.get(f"/v1/jobs/{job['id']}/deliveries", headers=keys["acme"]).json()
        assert [(d["attempt"], d["status_code"], d["delivered"]) for d in log] == [
            (1, 500, False),
            (2, 200, True),
        ]
    finally:
        client.patch("/v1/tenants/acme/settings", json={"webhook_url": None}, headers=keys["acme"])


@pytest.fixture
def file_server(tmp_path):
    """Serves `tmp_path` on loopback (URL jobs)."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # a download refused half-way (over the size limit) breaks the pipe

    server = Server(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_bad_inputs_fail_their_job_with_a_reason_and_the_worker_goes_on(stack, speech, file_server):
    client, _, keys, _, _ = stack
    acme = keys["acme"]
    garbage = submit(client, acme, b"RIFF\x00\x00\x00\x00WAVEfmt definitely not audio" * 50)
    failed = wait_for_job(client, acme, garbage["id"])
    assert failed["status"] == "failed" and "not a readable audio file" in failed["error"], failed
    assert input_removed(stack, garbage["id"])

    folder, base = file_server
    (folder / "speech.wav").write_bytes(wav_bytes(speech, 16_000))
    missing = client.post("/v1/jobs", data={"url": f"{base}/nothing.wav"}, headers=acme).json()
    assert "404" in wait_for_job(client, acme, missing["id"])["error"]

    admin = keys["admin"]
    limited = client.patch("/v1/tenants/acme/settings", json={"job_max_mb": 0.01}, headers=admin)
    assert limited.status_code == 200
    try:
        too_big = client.post("/v1/jobs", data={"url": f"{base}/speech.wav"}, headers=acme).json()
        reason = wait_for_job(client, acme, too_big["id"])["error"]
        assert "larger than" in reason and "0.01 MB" in reason
        upload = client.post(
            "/v1/jobs", files={"file": ("a.wav", wav_bytes(speech, 16_000))}, headers=acme
        )
        assert upload.status_code == 413
    finally:
        client.patch("/v1/tenants/acme/settings", json={"job_max_mb": None}, headers=admin)
    assert (
        client.patch("/v1/tenants/acme/settings", json={"job_max_mb": 1}, headers=acme).status_code
        == 403
    )
    assert client.post("/v1/jobs", headers=acme).status_code == 422  # neither file nor url
    assert (
        client.post("/v1/jobs", data={"url": "file:///etc/passwd"}, headers=acme).status_code == 422
    )

    good = client.post("/v1/jobs", data={"url": f"{base}/speech.wav"}, headers=acme).json()
    done = wait_for_job(client, acme, good["id"])
    assert done["status"] == "completed" and done["file_name"] == "speech.wav"


def test_a_tenant_has_a_limit_on_jobs_at_once(stack, speech):
    client, _, keys, worker, _ = stack
    admin = keys["admin"]
    client.patch("/v1/tenants/globex/settings", json={"max_active_jobs": 1}, headers=admin)
    worker.stop()  # nothing runs: the first job stays queued
    try:
        first = submit(client, keys["globex"], wav_bytes(speech, 16_000))
        second = client.post(
            "/v1/jobs", files={"file": ("b.wav", wav_bytes(speech, 16_000))}, headers=keys["globex"]
        )
        assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_jobs"
    finally:
        worker.start()
    assert wait_for_job(client, keys["globex"], first["id"])["status"] == "completed"
    assert submit(client, keys["globex"], wav_bytes(speech, 16_000))["status"] == "queued"


def test_redaction_masks_numbers_and_keeps_the_original_when_asked(stack, tmp_path):
    client, _, keys, _, _ = stack
    acme = keys["acme"]
    spoken = espeak_audio("My phone number is 6 1 7, 5 5 5, 0 1 9 9, 4 2.", tmp_path)
    settings = {"redact": True, "redact_kinds": ["phone", "card"], "keep_original": True}
    assert client.patch("/v1/tenants/acme/settings", json=settings, headers=acme).status_code == 200
    try:
        job = submit(client, acme, wav_bytes(spoken, 16_000), language="en")
        assert wait_for_job(client, acme, job["id"])["status"] == "completed"
        segment = client.get(f"/v1/jobs/{job['id']}/transcript", headers=acme).json()["segments"][0]
    finally:
        client.patch("/v1/tenants/acme/settings", json={"redact": False}, headers=acme)
    assert "[PHONE]" in segment["text"], segment
    assert not any(ch.isdigit() for ch in segment["text"])
    assert "[PHONE]" not in segment["original_text"]  # digits or digit words, as decoded
    assert "[PHONE]" in [w["word"] for w in segment["words"]]


def word_error_rate(reference: str, hypothesis: str) -> float:
    from rapidfuzz.distance import Levenshtein

    from asr_core.evaluation import normalize

    expected = normalize(reference, "en").split()
    return Levenshtein.distance(expected, normalize(hypothesis, "en").split()) / len(expected)


def feed_in_real_time(session, leg: str, audio: np.ndarray, chunk_s: float = 0.5) -> None:
    """As a gateway would: about real time (a leg may run at most 10 s ahead)."""
    step = int(chunk_s * 16_000)
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(audio), step)):
        ahead = index * chunk_s - (time.monotonic() - started)
        if ahead > 5:
            time.sleep(ahead - 5)
        session.feed(leg, to_int16(audio[offset : offset + step]).tobytes())


@pytest.mark.model
@pytest.mark.testdata
def test_the_post_call_pass_is_at_least_as_accurate_as_the_live_finals(
    transcriber, redis_server, testdata, tmp_path
):
    """Real recordings (the shared test data) as one call leg, live with whisper-base, then
    the post-call pass with whisper-base: scored against the references."""
    from asr_core.audio import decode_audio
    from asr_core.evaluation import read_manifest

    clips = [u for u in read_manifest(testdata / "manifest.tsv") if u.language == "en"][:10]
    pause = np.zeros(24_000, np.float32)
    audio = np.concatenate([part for u in clips for part in (decode_audio(u.path), pause)])
    reference = " ".join(u.reference for u in clips)
    with running_stack(transcriber, "whisper-base", redis_server, tmp_path) as stack:
        client, _, keys, _, _ = stack
        pcm = RawFormat("pcm_s16le", 16000)
        session = open_call(client, "acme", {"customer": pcm}, language="en")
        feed_in_real_time(session, "customer", audio)
        client.portal.call(session.end)
        done = wait_for_job(client, keys["acme"], f"postcall-{session.id}", timeout=600)
        assert done["status"] == "completed", done
        url = f"/v1/calls/{session.id}/transcript"
        live = client.get(f"{url}?pass=live", headers=keys["acme"]).json()["text"]
        post = client.get(url, headers=keys["acme"]).json()["text"]
    live_wer, post_wer = word_error_rate(reference, live), word_error_rate(reference, post)
    print(f"WER live {live_wer:.3f}, post {post_wer:.3f} ({len(clips)} clips)")
    assert post_wer <= live_wer


def write_hour(path: Path, speech: np.ndarray, minutes: int = 60) -> float:
    """A long call, written a minute at a time: speech, then silence, to 30 s, repeated."""
    import wave

    unit = np.zeros(30 * 16_000, np.float32)
    unit[: len(speech)] = speech
    minute = to_int16(np.tile(unit, 2)).tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        for _ in range(minutes):
            out.writeframes(minute)
    return minutes * 60.0


def run_watched(client, key, url: str, process) -> tuple[dict, list[float], int]:
    """Run a URL job to its end, sampling its progress and the worker's peak RSS."""
    job = client.post("/v1/jobs", data={"url": url}, headers=key).json()
    progress, peak = [], process.memory_info().rss
    deadline = time.monotonic() + 900
    while (state := client.get(f"/v1/jobs/{job['id']}", headers=key).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, state
        progress.append(state["progress"])
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.5)
    return state, progress, peak


def test_a_60_minute_recording_completes_in_bounded_memory_with_progress(
    stack, speech, file_server
):
    """The hour needs no more memory than a few minutes of the same call: audio streams
    through in windows (the hour as float32 alone would be 230 MB)."""
    import psutil

    client, _, keys, worker, _ = stack
    acme, admin = keys["acme"], keys["admin"]
    process = psutil.Process(worker.process.pid)
    folder, base = file_server
    write_hour(folder / "minutes.wav", speech, minutes=3)
    seconds = write_hour(folder / "hour.wav", speech)
    client.patch("/v1/tenants/acme/settings", json={"job_max_mb": 200}, headers=admin)
    try:
        short, _, short_peak = run_watched(client, acme, f"{base}/minutes.wav", process)
        state, progress, peak = run_watched(client, acme, f"{base}/hour.wav", process)
    finally:
        client.patch("/v1/tenants/acme/settings", json={"job_max_mb": None}, headers=admin)
    assert short["status"] == state["status"] == "completed", state
    assert state["duration_s"] == pytest.approx(seconds, abs=1)
    steps = sorted(set(p for p in progress if 0 < p < 1))
    assert len(steps) >= 5 and progress == sorted(progress), progress
    print(f"worker peak RSS: 3 min {short_peak / 1e6:.0f} MB, 60 min {peak / 1e6:.0f} MB")
    assert peak - short_peak < 128e6
    text = client.get(f"/v1/jobs/{state['id']}/transcript?format=txt", headers=acme).text
    assert text.lower().count("tomorrow") >= 100


def test_by_default_jobs_and_webhooks_may_not_reach_private_addresses(tiny, tmp_path):
    """A tenant must not make the workers fetch from, or post to, the server's own network."""
    app, database = make_server(tiny, tmp_path)
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "acme"}, headers=admin)
        acme = bearer(new_key(database, "tenant", "acme"))
        for form in (
            {"url": "http://127.0.0.1:6379/a.wav"},
            {"url": "http://169.254.169.254/latest/meta-data/"},
        ):
            response = client.post("/v1/jobs", data=form, headers=acme)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "forbidden_address"
        upload = {"file": ("a.wav", b"RIFF", "audio/wav")}
        hook = {"webhook_url": "http://10.0.0.5/hook"}
        response = client.post("/v1/jobs", data=hook, files=upload, headers=acme)
        assert response.status_code == 422, response.text
        response = client.patch("/v1/tenants/acme/settings", json=hook, headers=acme)
        assert response.status_code == 422, response.text
        assert client.get("/v1/jobs", headers=acme).json() == []
    database.dispose()
