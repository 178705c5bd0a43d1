"""A SIP gateway streaming its calls to a pool of two ASR cores (`CALLSCRIBE_ASR_URLS`), all
real processes on loopback sharing one PostgreSQL database, called by real sipp callers.

Each core takes one stream at a time (`CALLSCRIBE_MAX_STREAMS=1`), so two calls at once must
spread over both cores, and a third is refused at admission with SIP 503 and Retry-After. A
core SIGKILLed mid-call: the call goes on, on the other core, and its stored live transcript has
every sentence, as the same call on a healthy pair. The killed core, restarted, takes streams
again. And the cores let in only the service key, for the tenant it names."""

import itertools
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlmodel import Session, select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from admin_api import migrate
from admin_api.auth import ADMIN, TENANT
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.models import Call, Tenant, TranscriptSegment
from tests.helpers import encode, espeak_audio
from tests.integration.test_topology import skip_or_fail
from tests.services import CallscribeServer, free_port
from tests.sipp import SCENARIOS, SPEECH, sip_missing, sipp_argv, speech_keys

TENANT_ID = "acme"
SERVICE_KEY = "pool-test-service-key"
MODEL = "whisper-tiny.en"
SENTENCES = (
    "Please call me tomorrow morning about the meeting.",
    "Send the contract to Siobhan Nakamura today.",
    "The invoice was paid on Friday afternoon.",
)
HOTWORD = "Siobhan"
WORDS = ("tomorrow", HOTWORD, "friday")
"""A word of each sentence; `Siobhan` only with the tenant's hot-word list (whisper-tiny.en
hears "Shimon Nakamura" on the phone without it)."""
HOTWORDS = "Siobhan Nakamura\nKubernetes"
BUSY = SCENARIOS / "uac_busy.xml"
CALL_S = 120


class PoolStack:
    def __init__(self, postgres, folder: Path, clip_ms: int) -> None:
        self.postgres = postgres
        self.clip_ms = clip_ms
        self.folder = folder
        self.database_url = postgres.new_database()
        migrate.upgrade(self.database_url)
        self.database = make_engine(self.database_url)
        with Session(self.database) as session:
            session.add(Tenant(id=TENANT_ID, name="Acme"))
            session.flush()
            self.admin_key = keys.create(session, ADMIN, None, "pool")[1].secret
            self.tenant_key = keys.create(session, TENANT, TENANT_ID, "pool")[1].secret
            session.commit()
        common = {
            "CALLSCRIBE_DATABASE_URL": self.database_url,
            "CALLSCRIBE_AUTH": "keys",
            "CALLSCRIBE_MODEL": MODEL,
            "CALLSCRIBE_LANGUAGES": "en",
            "CALLSCRIBE_ASR_SERVICE_KEY": SERVICE_KEY,
            "CALLSCRIBE_POSTCALL": "false",
            "CALLSCRIBE_LOG_LEVEL": "info",
        }
        self.cores = [CallscribeServer({**common, "CALLSCRIBE_MAX_STREAMS": "1"}) for _ in range(2)]
        self.sip_port, rtp = free_port(), free_port()
        urls = ",".join(core.url.replace("http://", "ws://") for core in self.cores)
        self.gateway = CallscribeServer(
            {
                **common,
                "CALLSCRIBE_ASR_URLS": urls,
                "CALLSCRIBE_SIP_PORT": str(self.sip_port),
                "CALLSCRIBE_RTP_PORT_MIN": str(rtp),
                "CALLSCRIBE_RTP_PORT_MAX": str(rtp + 100),
                "CALLSCRIBE_SIP_RTP_TIMEOUT_S": "10",
            }
        )

    def start(self) -> None:
        for process in (*self.cores, self.gateway):
            process.start()
        response = httpx.post(
            f"{self.gateway.url}/v1/tenants/{TENANT_ID}/hotword-lists",
            json={"name": "names", "content": HOTWORDS},
            headers={"authorization": f"Bearer {self.admin_key}"},
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text

    def close(self) -> None:
        for process in (self.gateway, *self.cores):
            process.close()
        self.database.dispose()
        self.postgres.drop_database(self.database_url)

    # -- calls -------------------------------------------------------------------------------

    def sipp(self, scenario: Path, *args: str) -> subprocess.Popen:
        argv = sipp_argv(self.sip_port, scenario, TENANT_ID, self.tenant_key, *args)
        return subprocess.Popen(
            argv, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def calls(self, count: int, linger_ms: int = 2000) -> subprocess.Popen:
        """`count` calls at once streaming the clip, each staying `linger_ms` after it."""
        pause_ms = self.clip_ms + linger_ms  # the pause starts with the audio
        return self.sipp(SPEECH, *speech_keys(pause_ms), "-m", str(count), "-l", str(count))

    def finished(self, sipp: subprocess.Popen, timeout_s: float = CALL_S) -> None:
        try:
            output, _ = sipp.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            sipp.kill()
            output, _ = sipp.communicate()
        assert sipp.returncode == 0, f"sipp failed:\n{output[-3000:]}\n{self.logs()}"

    def call_ids(self) -> set[str]:
        with Session(self.database) as session:
            return set(session.exec(select(Call.id)).all())

    def wait(self, what: str, done, timeout_s: float = CALL_S):
        deadline = time.monotonic() + timeout_s
        while not (result := done()):
            assert time.monotonic() < deadline, f"{what}\n{self.logs()}"
            time.sleep(0.2)
        return result

    def active(self, calls: set[str]) -> set[str]:
        with Session(self.database) as session:
            rows = session.exec(select(Call).where(Call.id.in_(calls))).all()  # type: ignore[attr-defined]
            return {row.id for row in rows if row.status == "active"}

    def segments(self, call_id: str) -> list[TranscriptSegment]:
        with Session(self.database) as session:
            query = select(TranscriptSegment).where(TranscriptSegment.call_id == call_id)
            return sorted(session.exec(query).all(), key=lambda s: s.start_ms)

    def metrics(self, server: CallscribeServer) -> str:
        return httpx.get(f"{server.url}/metrics", timeout=10).text

    def logs(self) -> str:
        names = ("core-1", "core-2", "gateway")
        return "\n".join(
            f"--- {name} ({'running' if p.running else 'NOT RUNNING'})\n{p.log_tail(40)}"
            for name, p in zip(names, (*self.cores, self.gateway), strict=True)
        )


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def core_name(core: CallscribeServer) -> str:
    return f"127.0.0.1:{core.port}"


def finals_decoded(stack: PoolStack, core: CallscribeServer) -> float:
    return metric(stack.metrics(core), "callscribe_end_of_speech_to_final_seconds_count")


def assert_every_sentence(stack: PoolStack, call_id: str) -> list[TranscriptSegment]:
    rows = stack.segments(call_id)
    text = " ".join(row.text for row in rows)
    missing = [w for w in WORDS if w.lower() not in text.lower()]
    assert not missing, f"{missing} not in {text!r}\n{stack.logs()}"
    assert HOTWORD in text, f"the tenant's hot-word is not in {text!r}"
    assert all(row.hotword_version == 1 for row in rows), "the tenant's list was not applied"
    starts = [row.start_ms for row in rows]
    assert len(set(starts)) == len(starts), f"a final stored twice: {[r.text for r in rows]}"
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(rows)), [
        (r.start_ms, r.end_ms, r.text) for r in rows
    ]
    return rows


@pytest.fixture(scope="module")
def stack(postgres_server, tmp_path_factory) -> Iterator[PoolStack]:
    if (reason := sip_missing()) is not None:
        skip_or_fail(reason)
    folder = tmp_path_factory.mktemp("asr-pool")
    pause = np.zeros(24_000, np.float32)  # 1.5 s between sentences: a final each
    parts = [np.zeros(4000, np.float32)]
    for sentence in SENTENCES:
        parts += [espeak_audio(sentence, folder), pause]
    clip = np.concatenate(parts)
    (folder / "speech.wav").write_bytes(encode(clip, 16_000, "pcm_mulaw", "wav", out_rate=8000))
    stack = PoolStack(postgres_server, folder, int(len(clip) / 16))
    try:
        started = time.monotonic()
        stack.start()
        print(f"gateway and two ASR cores up in {time.monotonic() - started:.0f} s")
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def healthy(stack) -> dict[str, list[TranscriptSegment]]:
    """Two calls at once on the healthy pair (one per core: each takes one stream); while
    they run, a third is refused at admission."""
    before = stack.call_ids()
    calls = stack.calls(2)
    try:
        running = stack.wait("two calls active", lambda: len(stack.call_ids() - before) == 2)
        new = stack.call_ids() - before
        assert stack.active(new) == new and running
        busy = stack.sipp(BUSY, "-m", "1")
        stack.finished(busy, 60)
    finally:
        stack.finished(calls)
    stack.wait("the calls ended", lambda: not stack.active(new), 60)
    return {call_id: assert_every_sentence(stack, call_id) for call_id in sorted(new)}


def test_calls_spread_over_both_cores_with_the_words_and_the_tenants_hotwords(stack, healthy):
    assert len(healthy) == 2
    decoded = [finals_decoded(stack, core) for core in stack.cores]
    assert all(count >= len(SENTENCES) for count in decoded), decoded
    gateway = stack.metrics(stack.gateway)
    assert metric(gateway, "callscribe_asr_pool_end_of_speech_to_final_seconds_count") >= 6


def test_a_core_killed_mid_call_loses_no_sentence_and_a_restarted_core_takes_streams(
    stack, healthy
):
    before = stack.call_ids()
    call = stack.calls(1)
    victim = None
    try:
        new = stack.wait("the call is active", lambda: stack.call_ids() - before)
        [call_id] = new
        stack.wait("the first final", lambda: stack.segments(call_id))
        gateway = stack.metrics(stack.gateway)
        carrying = [
            core
            for core in stack.cores
            if metric(gateway, "callscribe_asr_pool_streams", core=core_name(core)) >= 1
        ]
        assert len(carrying) == 1, gateway
        victim = carrying[0]
        victim.kill()  # SIGKILL: the socket drops mid-sentence
    finally:
        stack.finished(call)
    stack.wait("the call ended", lambda: not stack.active({call_id}), 60)
    rows = assert_every_sentence(stack, call_id)
    baseline = next(iter(healthy.values()))
    print(
        "killed core:",
        [(r.start_ms, r.text) for r in rows],
        "healthy:",
        [(r.start_ms, r.text) for r in baseline],
    )
    gateway = stack.metrics(stack.gateway)
    assert metric(gateway, "callscribe_asr_pool_reconnects_total") >= 1
    assert metric(gateway, "callscribe_asr_pool_replayed_audio_seconds_total") > 0
    with Session(stack.database) as session:
        assert session.get(Call, call_id).status == "ended"

    victim.start()  # as the compose restart policy would; it keeps its port
    stack.wait(
        "the restarted core is back in the pool",
        lambda: (
            metric(
                stack.metrics(stack.gateway), "callscribe_asr_pool_core_up", core=core_name(victim)
            )
            == 1
        ),
        60,
    )
    before = stack.call_ids()
    stack.finished(stack.calls(2))
    new = stack.call_ids() - before
    stack.wait("the calls ended", lambda: not stack.active(new), 60)
    for call_id in new:
        assert_every_sentence(stack, call_id)
    assert finals_decoded(stack, victim) >= len(SENTENCES)


def test_only_the_service_key_streams_for_a_tenant(stack):
    core = stack.cores[0].url.replace("http://", "ws://") + "/v1/stream"

    def refused(headers: dict) -> tuple[int, str]:
        with connect(core, additional_headers=headers) as socket:
            error = json.loads(socket.recv(30))  # refused before any config or audio
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(30)
        return closed.value.rcvd.code, error["message"]

    tenant = {"x-callscribe-tenant": TENANT_ID}
    code, message = refused({"authorization": "Bearer wrong-service-key", **tenant})
    assert code == 4401 and "service key is not valid" in message
    code, message = refused({"authorization": f"Bearer {stack.tenant_key}", **tenant})
    assert code == 4401 and "service key is not valid" in message
    code, message = refused({"authorization": f"Bearer {SERVICE_KEY}"})
    assert code == 4401 and "names its tenant" in message
    code, message = refused({"authorization": f"Bearer {SERVICE_KEY}", "x-callscribe-tenant": "x"})
    assert code == 4401 and "no tenant" in message
    with connect(
        core, additional_headers={"authorization": f"Bearer {SERVICE_KEY}", **tenant}
    ) as ok:
        ok.send(json.dumps({"language": "en"}))
        assert json.loads(ok.recv(30))["type"] == "ready"
