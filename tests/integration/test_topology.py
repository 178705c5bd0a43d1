"""docker-compose.yml's topology as plain processes (tests/topology.py): PostgreSQL, Redis, two
ASR processes, the SIP and WebRTC gateways and two workers. A sipp call and a headless-Chromium
call end to end (live captions, post-call transcripts); a hot-word edit reaching both ASR
processes within 1 s; a worker killed mid-job; an ASR process killed mid-call."""

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from sqlmodel import Session, select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from admin_api.models import Call, TranscriptSegment
from bench.hotreload import wait_until_applied
from tests.browser import (
    chromium,
    fake_microphone,
    final_caption,
    hang_up,
    start_webrtc_call,
    watched_page,
)
from tests.helpers import encode, espeak_audio, to_int16, wav_bytes
from tests.integration.test_webrtc import ended_call
from tests.integration.test_worker import long_recording, post_segments, submit, wait_for_job
from tests.services import CallscribeServer
from tests.sipp import SPEECH, sip_missing, sipp_argv, speech_keys
from tests.topology import TENANT_ID, VISIBILITY_TIMEOUT_S, Topology

SENTENCE = "Please call me tomorrow morning about the meeting."
HOTWORD_RELOAD_LIMIT_S = 1.0  # the "within 1 s"
CAPTION_S = 120  # the first live final on two shared cores
POSTCALL_S = 120
RESTORE_CHECK_S = VISIBILITY_TIMEOUT_S / 4 + 2
"""Longer than the workers' period of looking for tasks to deliver again (worker.app)."""


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def topology(postgres_server, redis_server, tmp_path_factory) -> Iterator[Topology]:
    stack = Topology(
        postgres_server,
        redis_server,
        tmp_path_factory.mktemp("topology-var"),
        with_sip=sip_missing() is None,
    )
    try:
        started = time.monotonic()
        stack.start()
        print(f"topology up in {time.monotonic() - started:.0f} s")
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    return espeak_audio(SENTENCE, tmp_path_factory.mktemp("topology-speech"))


@pytest.fixture
def front(topology):
    with topology.client() as client:
        yield client


# ---------------------------------------------------------------- helpers


def ws_url(server: CallscribeServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


class Listener:
    """A supervisor's screen: `WS /v1/calls/{id}/events` on the process that holds the call,
    read in a thread until the call ends or the connection drops."""

    def __init__(self, server: CallscribeServer, call_id: str, headers: dict) -> None:
        self.events: list[dict] = []
        self.dropped = False
        self._url = ws_url(server, f"/v1/calls/{call_id}/events")
        self._headers = headers
        self._socket = None
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._opened.wait(30) and self._socket is not None, "the listener did not connect"

    def _read(self) -> None:
        try:
            with connect(self._url, additional_headers=self._headers) as socket:
                self._socket = socket
                self._opened.set()
                for message in socket:
                    self.events.append(json.loads(message))
        except (ConnectionClosed, OSError):
            self.dropped = True
        finally:
            self._opened.set()

    def finals(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "final"]

    def wait_closed(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"the listener is still open: {self.events}"

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._thread.join(10)


def new_active_call(front, headers: dict, known: set[str], timeout_s: float = 60) -> str:
    """The id of a call that became active since `known` (the calls list reads the database,
    so any process can tell)."""
    deadline = time.monotonic() + timeout_s
    while True:
        active = front.get("/v1/calls?active=true", headers=headers).json()
        new = [c["id"] for c in active if c["id"] not in known]
        if new:
            return new[0]
        assert time.monotonic() < deadline, "no new call became active"
        time.sleep(0.1)


def call_ids(front, headers: dict) -> set[str]:
    return {c["id"] for c in front.get("/v1/calls?limit=1000", headers=headers).json()}


def assert_post_call_transcript(topology: Topology, front, call_id: str) -> None:
    """The worker's post-call pass of the call completed, once, and is served."""
    headers = topology.headers()
    try:
        done = wait_for_job(
            front,
            headers,
            f"postcall-{call_id}",
            timeout=POSTCALL_S,
            # The job is queued just after the call row ends: until then it is not found.
            until=lambda job: job.get("status") in ("completed", "failed"),
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{topology.logs()}") from None
    assert done["status"] == "completed", f"{done}\n{topology.logs()}"
    post = front.get(f"/v1/calls/{call_id}/transcript", headers=headers).json()
    assert post["pass"] == "post" and "tomorrow" in post["text"].lower(), post
    rows = post_segments(topology.database, call_id=call_id)
    assert len(rows) == len({(r.leg, r.start_ms, r.text) for r in rows}) > 0


def busiest(workers) -> object:
    """The worker decoding now: the one using CPU over a second (the other one idles)."""
    import psutil

    processes = [psutil.Process(w.process.pid) for w in workers]
    before = [sum(p.cpu_times()[:2]) for p in processes]
    time.sleep(1.0)
    used = [sum(p.cpu_times()[:2]) - b for p, b in zip(processes, before, strict=True)]
    assert max(used) > 0.2, f"no worker is decoding (CPU s in 1 s: {used})"
    return workers[used.index(max(used))]


def frames(audio: np.ndarray, frame_s: float = 0.1) -> Iterator[bytes]:
    """PCM16 frames of `audio`, forever (a caller who keeps talking)."""
    pcm = to_int16(audio).tobytes()
    step = int(16_000 * frame_s) * 2
    while True:
        for offset in range(0, len(pcm), step):
            yield pcm[offset : offset + step]


# ---------------------------------------------------------------- hot-words over the bus


def test_a_hotword_edit_reaches_both_asr_processes_within_1s(topology, front):
    admin, tenant = topology.headers(admin=True), topology.headers()
    asr = [topology.client(server) for server in topology.asr]
    path = f"/v1/tenants/{TENANT_ID}/hotword-lists"
    try:
        first = {"name": "names", "content": "Xiaomeng Zhao"}
        created = front.post(path, json=first, headers=admin)
        assert created.status_code in (200, 201), created.text
        wait_until_applied(asr, tenant, created.json()["version"], timeout_s=30)  # from the DB
        timings = []
        for edit in range(3):
            started = time.perf_counter()
            response = front.put(
                f"{path}/names", json={"content": f"Xiaomeng Zhao\nProduct {edit}"}, headers=admin
            )
            response.raise_for_status()
            put_s = time.perf_counter() - started
            applied_s = wait_until_applied(asr, tenant, response.json()["version"], timeout_s=30)
            timings.append(put_s + applied_s)
    finally:
        for client in asr:
            client.close()
    shown = ", ".join(f"{t * 1000:.0f} ms" for t in timings)
    print(f"hot-word edit -> both ASR processes: {shown}")
    assert max(timings) <= HOTWORD_RELOAD_LIMIT_S, (
        f"a hot-word edit took {max(timings):.2f} s to reach both ASR processes (edits: "
        f"{[round(t, 3) for t in timings]} s; the issue asks for at most "
        f"{HOTWORD_RELOAD_LIMIT_S:.0f} s from sending the edit)"
    )


# ---------------------------------------------------------------- calls end to end


def test_a_sipp_call_has_live_captions_and_a_post_call_transcript(
    topology, front, speech, tmp_path
):
    if topology.sip is None:
        skip_or_fail(sip_missing() or "no SIP gateway")
    headers = topology.headers()
    lead, tail = np.zeros(4000, np.float32), np.zeros(32_000, np.float32)  # 2 s: an endpoint
    audio = np.concatenate([lead, speech, tail])
    (tmp_path / "speech.wav").write_bytes(encode(audio, 16_000, "pcm_mulaw", "wav", out_rate=8000))
    pause_ms = int(len(audio) / 16_000 * 1000) + 1000
    argv = sipp_argv(
        topology.sip_port, SPEECH, TENANT_ID, topology.tenant_key, *speech_keys(pause_ms), "-m", "1"
    )
    known = call_ids(front, headers)
    sipp = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        call_id = new_active_call(front, headers, known)
        listener = Listener(topology.sip, call_id, headers)
        listener.wait_closed(CAPTION_S)
        output, _ = sipp.communicate(timeout=60)
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()
    assert sipp.returncode == 0, f"sipp failed:\n{output[-3000:]}\n{topology.logs()}"
    live = [e for e in listener.finals() if "tomorrow" in e["text"].lower()]
    assert live and live[0]["leg"] == "mixed", listener.events
    assert listener.events[-1]["type"] == "call_ended", listener.events
    row, transcript = ended_call(topology.database, call_id, 30)
    assert row.status == "ended" and row.source == "sip" and "tomorrow" in transcript.lower()
    assert_post_call_transcript(topology, front, call_id)


def test_a_browser_call_has_live_captions_and_a_post_call_transcript(topology, front, meeting_wav):
    token = front.post("/v1/tokens", json={}, headers=topology.headers()).json()["token"]
    with (
        chromium("topology WebRTC call", fake_microphone(meeting_wav)) as browser,
        watched_page(browser) as page,
    ):
        call_id = start_webrtc_call(page, topology.webrtc.url, token=token)
        final_caption(page, "tomorrow", CAPTION_S)
        hang_up(page)
    row, transcript = ended_call(topology.database, call_id, 60)
    assert row.status == "ended" and row.source == "webrtc" and "tomorrow" in transcript.lower()
    assert_post_call_transcript(topology, front, call_id)


# ---------------------------------------------------------------- failures


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(topology, front, speech):
    headers = topology.headers()
    audio = long_recording(speech, 60)
    job = submit(front, headers, wav_bytes(audio, 16_000), language="en")
    running = wait_for_job(
        front,
        headers,
        job["id"],
        until=lambda j: j["progress"] > 0 or j["status"] != "queued",
    )
    assert running["status"] == "running", running
    victim = busiest(topology.workers)
    victim.kill()  # SIGKILL: no acknowledgement, no shutdown code
    victim.start()  # as the compose restart policy would
    done = wait_for_job(front, headers, job["id"], timeout=600)
    assert done["status"] == "completed" and done["attempts"] >= 2, f"{done}\n{topology.logs()}"
    print(f"worker killed mid-job: completed after {done['attempts']} runs")
    rows = post_segments(topology.database, job_id=job["id"])
    assert len(rows) == len({(r.start_ms, r.text) for r in rows}) > 5
    assert "tomorrow" in " ".join(r.text for r in rows).lower()
    time.sleep(RESTORE_CHECK_S)  # a late redelivery would find the job completed
    again = post_segments(topology.database, job_id=job["id"])
    assert sorted((r.start_ms, r.text) for r in again) == sorted((r.start_ms, r.text) for r in rows)


def test_an_asr_process_killed_mid_call_fails_over_and_stores_nothing_half_written(
    topology, front, speech
):
    """A PBX forks a call's audio to one ASR process; that process is killed (SIGKILL) after
    its first final. The fork sees the connection drop and carries on with a new call on the
    other process. The killed call keeps exactly the finals it had sent (each a whole row),
    gets no post-call pass from a half-written recording, and is marked interrupted when its
    process is back; the failed-over call is complete."""
    headers = topology.headers()
    survivor, victim = topology.asr
    unit = np.concatenate([speech, np.zeros(24_000, np.float32)])
    killed_call = f"killed-{uuid.uuid4().hex[:12]}"
    metadata = {"sampleRate": 16000, "channels": 1, "language": "en"}
    fork_url = "/v1/media-streams/audio-fork"

    listener = None
    try:
        with connect(ws_url(victim, fork_url), additional_headers=headers) as fork:
            fork.send(json.dumps({**metadata, "callId": killed_call}))
            assert json.loads(fork.recv(30))["type"] == "started"
            listener = Listener(victim, killed_call, headers)
            started, killed, dropped = time.monotonic(), None, False
            for index, frame in enumerate(frames(unit)):
                assert time.monotonic() - started < CAPTION_S, f"no final\n{topology.logs()}"
                if killed is None and listener.finals():
                    victim.kill()
                    killed = time.monotonic()
                try:
                    fork.send(frame)
                except (ConnectionClosed, OSError):
                    dropped = True
                    break
                assert killed is None or time.monotonic() - killed < 30, "the fork never dropped"
                time.sleep(max(0.0, started + (index + 1) * 0.1 - time.monotonic()))
        assert dropped
        listener.wait_closed(30)
        seen = [(e["start_ms"], e["text"]) for e in listener.finals()]

        # The PBX fails over: the rest of the call on the other process.
        with connect(ws_url(survivor, fork_url), additional_headers=headers) as fork:
            failover_call = f"{killed_call}-failover"
            fork.send(json.dumps({**metadata, "callId": failover_call}))
            assert json.loads(fork.recv(30))["type"] == "started"
            for frame, _ in zip(frames(unit), range(len(unit) // 1600 + 20), strict=False):
                fork.send(frame)
                time.sleep(0.1)
            fork.send(json.dumps({"type": "end"}))
            while json.loads(fork.recv(60))["type"] != "ended":
                pass
    finally:
        if listener is not None:
            listener.close()
        victim.start()  # back, as the compose restart policy would bring it
    # At its start the process closes the calls it left active.
    with Session(topology.database) as db:
        row = db.get(Call, killed_call)
        stored = list(
            db.exec(select(TranscriptSegment).where(TranscriptSegment.call_id == killed_call))
        )
    assert row.status == "interrupted" and row.ended_at is not None, row
    assert all(s.kind == "live" and s.text.strip() and s.end_ms > s.start_ms for s in stored)
    assert set(seen) <= {(s.start_ms, s.text) for s in stored}, (seen, stored)
    assert front.get(f"/v1/jobs/postcall-{killed_call}", headers=headers).status_code == 404
    failover, transcript = ended_call(topology.database, failover_call, 30)
    assert failover.status == "ended" and "tomorrow" in transcript.lower()
    assert_post_call_transcript(topology, front, failover_call)
