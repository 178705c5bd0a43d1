"""The SIP gateway end to end: `callscribe serve` with CALLSCRIBE_SIP_PORT, real sipp callers
(scenarios in tests/data/sipp), speech in, stored transcripts out."""

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from sqlmodel import Session

from admin_api import migrate
from admin_api.auth import TENANT
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.models import Tenant
from tests.helpers import encode, espeak_audio
from tests.services import CallscribeServer, free_port
from tests.sipp import SCENARIOS, SPEECH, sip_missing, sipp_argv, speech_keys

SENTENCE = "Please call me tomorrow morning about the meeting."
WORDS = ("tomorrow", "morning")
RTP_TIMEOUT_S = 3
PJSUA_MAX_CALLS = 4  # the pjsua2-python wheel's compile-time limit (see telephony/sip)
PROCESSES = 2  # user-agent processes behind the one SIP port: 8 calls at once


if (reason := sip_missing()) is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


class Gateway:
    """The server, its SQLite file and the callers' credentials."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "admin.db"
        url = f"sqlite:///{self.db}"
        migrate.upgrade(url)
        engine = make_engine(url)
        with Session(engine) as session:
            for tenant in ("acme", "globex", "trusted"):
                session.add(Tenant(id=tenant, name=tenant))
            session.flush()
            self.keys = {
                tenant: keys.create(session, TENANT, tenant, "sip")[1].secret
                for tenant in ("acme", "globex")
            }
            session.commit()
        engine.dispose()
        self.sip_port = free_port()
        rtp = free_port()
        self.server = CallscribeServer(
            {
                "CALLSCRIBE_DATABASE_URL": url,
                "CALLSCRIBE_AUTH": "keys",
                "CALLSCRIBE_SIP_PORT": str(self.sip_port),
                "CALLSCRIBE_RTP_PORT_MIN": str(rtp),
                "CALLSCRIBE_RTP_PORT_MAX": str(rtp + 100),
                "CALLSCRIBE_SIP_ALLOW": "trusted=127.0.0.1/32;globex=10.0.0.0/8",
                "CALLSCRIBE_SIP_RTP_TIMEOUT_S": str(RTP_TIMEOUT_S),
                "CALLSCRIBE_SIP_PROCESSES": str(PROCESSES),
                "CALLSCRIBE_LOG_LEVEL": "info",
            },
            "whisper-tiny.en",
        )

    def sipp(
        self, scenario: Path, tenant: str, key: str = "", *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                sipp_argv(self.sip_port, scenario, tenant, key, *args),
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"sipp did not finish in {timeout:.0f} s; gateway log:\n{self.log()}")

    def assert_ok(self, result: subprocess.CompletedProcess, *context) -> None:
        """sipp's scenario ran to its end; else its output and the gateway's log."""
        if result.returncode != 0:
            output = result.stdout[-3000:] + result.stderr[-2000:]
            pytest.fail(f"{context} sipp failed:\n{output}\ngateway log:\n{self.log()}")

    def log(self) -> str:
        running = "running" if self.server.running else "NOT RUNNING"
        return f"({running})\n{self.server.log_tail(200)}"

    def calls(self) -> list[dict]:
        response = httpx.get(
            f"{self.server.url}/v1/calls",
            headers={"authorization": f"Bearer {self.keys['acme']}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def wait_ended(self, call_ids: set[str], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with sqlite3.connect(self.db) as conn:
                rows = conn.execute("select id, status from call").fetchall()
            active = {cid for cid, status in rows if status == "active"} & call_ids
            if not active:
                return
            assert time.monotonic() < deadline, f"calls still active: {active}"
            time.sleep(0.2)

    def call_ids(self) -> set[str]:
        with sqlite3.connect(self.db) as conn:
            return {row[0] for row in conn.execute("select id from call")}

    def transcript(self, call_id: str, leg: str | None = None) -> str:
        query = "select text from transcript_segment where call_id = ?"
        params: tuple = (call_id,)
        if leg is not None:
            query += " and leg = ?"
            params += (leg,)
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(query + " order by start_ms", params).fetchall()
        return " ".join(row[0] for row in rows).lower()

    def new_calls(self, before: set[str], count: int) -> list[str]:
        """The calls placed since `before`, once they have all ended."""
        deadline = time.monotonic() + 30
        while len(new := self.call_ids() - before) < count:
            assert time.monotonic() < deadline, f"{len(new)} of {count} calls arrived"
            time.sleep(0.1)
        self.wait_ended(new)
        return sorted(new)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sip")
    speech = espeak_audio(SENTENCE, folder)
    lead = np.zeros(4000, np.float32)  # 0.25 s before the first word
    (folder / "speech.wav").write_bytes(
        encode(np.concatenate([lead, speech]), 16_000, "pcm_mulaw", "wav", out_rate=8000)
    )
    gateway = Gateway(folder)
    gateway.speech_s = (len(speech) + len(lead)) / 16_000
    with gateway.server:
        yield gateway


@pytest.fixture(autouse=True)
def gateway_survives(request):
    """Every test leaves the gateway running: a crash is reported with the gateway's log."""
    yield
    gateway = request.getfixturevalue("gateway")
    if not gateway.server.running:
        pytest.fail(f"the gateway process died:\n{gateway.log()}")


def refused(sipp_status: str, body: str) -> str:
    """uac_refused.xml expecting `sipp_status`, offering `body` (lines of SDP)."""
    text = (SCENARIOS / "uac_refused.xml").read_text()
    indented = "\n".join(f"      {line}" for line in body.strip().splitlines())
    return text.replace("STATUS", sipp_status).replace("SDP_BODY", indented)


GOOD_SDP = """
v=0
o=user1 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""


def speech_call(gateway: Gateway, tenant: str, key: str, *args: str, pause_ms: int | None = None):
    pause = pause_ms if pause_ms is not None else int(gateway.speech_s * 1000) + 1500
    return gateway.sipp(SPEECH, tenant, key, *speech_keys(pause), *args)


def test_a_call_is_transcribed_and_stored(gateway):
    before = gateway.call_ids()
    gateway.assert_ok(speech_call(gateway, "acme", gateway.keys["acme"], "-m", "1"))
    [call_id] = gateway.new_calls(before, 1)
    listed = {call["id"]: call for call in gateway.calls()}
    assert listed[call_id]["status"] == "ended"
    assert listed[call_id]["source"] == "sip"
    text = gateway.transcript(call_id, "mixed")
    assert all(word in text for word in WORDS), text


def test_concurrent_calls(gateway):
    """8 calls at once on the one SIP port, twice what one pjsua2 process takes: the front
    spreads them over the user-agent processes; each gets its own transcript."""
    calls_at_once = PROCESSES * PJSUA_MAX_CALLS
    before = gateway.call_ids()
    started = time.monotonic()
    result = speech_call(gateway, "acme", gateway.keys["acme"], "-m", "8", "-l", "8", "-r", "20")
    gateway.assert_ok(result)
    calls = gateway.new_calls(before, 8)
    elapsed = time.monotonic() - started
    with sqlite3.connect(gateway.db) as conn:
        spans = conn.execute(
            f"select started_at, ended_at from call where id in ({','.join('?' * 8)})", calls
        ).fetchall()
    assert max(start for start, _ in spans) < min(end for _, end in spans), "not all at once"
    for call_id in calls:
        text = gateway.transcript(call_id)
        assert all(word in text for word in WORDS), (call_id, text)
    print(f"8 SIP calls ({calls_at_once} at once) transcribed and ended in {elapsed:.1f} s")


def test_a_call_over_tcp(gateway):
    before = gateway.call_ids()
    gateway.assert_ok(speech_call(gateway, "acme", gateway.keys["acme"], "-m", "1", "-t", "t1"))
    [call_id] = gateway.new_calls(before, 1)
    text = gateway.transcript(call_id)
    assert all(word in text for word in WORDS), text


def test_trusted_address_needs_no_key(gateway):
    before = gateway.call_ids()
    gateway.assert_ok(speech_call(gateway, "trusted", "", "-m", "1"))
    [call_id] = gateway.new_calls(before, 1)
    assert "tomorrow" in gateway.transcript(call_id)


def test_unknown_tenant_and_bad_keys_are_refused(gateway, tmp_path):
    cases = [
        ("404", "nobody", gateway.keys["acme"]),  # no such tenant
        ("403", "acme", "cs_00000000_forged"),  # not a key
        ("403", "acme", gateway.keys["globex"]),  # another tenant's key
        ("403", "acme", ""),  # no key, and loopback is not on acme's allow-list
        ("403", "globex", ""),  # globex trusts 10/8 only
    ]
    for status, tenant, key in cases:
        scenario = tmp_path / f"refused-{status}.xml"
        scenario.write_text(refused(status, GOOD_SDP))
        result = gateway.sipp(scenario, tenant, key, "-m", "1")
        gateway.assert_ok(result, status, tenant)


def test_malformed_sdp_is_rejected_and_the_next_call_works(gateway, tmp_path):
    scenario = tmp_path / "malformed.xml"
    scenario.write_text(refused("400", "v=0\nthis is not sdp\nm=audio port RTP/AVP 0"))
    result = gateway.sipp(scenario, "acme", gateway.keys["acme"], "-m", "1")
    gateway.assert_ok(result)
    before = gateway.call_ids()
    gateway.assert_ok(speech_call(gateway, "acme", gateway.keys["acme"], "-m", "1"))
    [call_id] = gateway.new_calls(before, 1)
    assert "tomorrow" in gateway.transcript(call_id)


def test_hangup_mid_utterance_keeps_the_final(gateway):
    before = gateway.call_ids()
    # BYE just before the audio ends: no trailing silence, no endpoint; the end flushes it.
    result = speech_call(
        gateway, "acme", gateway.keys["acme"], "-m", "1", pause_ms=int(gateway.speech_s * 900)
    )
    gateway.assert_ok(result)
    [call_id] = gateway.new_calls(before, 1)
    assert "tomorrow" in gateway.transcript(call_id)


def test_silent_caller_times_out(gateway):
    before = gateway.call_ids()
    started = time.monotonic()
    result = gateway.sipp(SCENARIOS / "uac_silent.xml", "acme", gateway.keys["acme"], "-m", "1")
    gateway.assert_ok(result)  # the gateway sent the BYE
    assert time.monotonic() - started < gateway.speech_s + RTP_TIMEOUT_S + 5
    [call_id] = gateway.new_calls(before, 1)
    assert "tomorrow" in gateway.transcript(call_id)


def test_two_legs_share_one_call(gateway):
    before = gateway.call_ids()
    shared = f"two-legs-{time.monotonic_ns()}"
    legs = {}
    for leg in ("agent", "customer"):
        pause_ms = int(gateway.speech_s * 1000) + 1500
        keys = speech_keys(pause_ms, leg, shared)
        argv = sipp_argv(gateway.sip_port, SPEECH, "acme", gateway.keys["acme"], *keys, "-m", "1")
        legs[leg] = subprocess.Popen(
            argv, cwd=gateway.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for leg, process in legs.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, (leg, output[-2000:])
    assert gateway.new_calls(before, 1) == [shared]
    for leg in ("agent", "customer"):
        assert "tomorrow" in gateway.transcript(shared, leg), leg


def user_agents(gateway: Gateway) -> dict[int, int]:
    """The gateway's user-agent processes: index -> pid."""
    found = {}
    for child in psutil.Process(gateway.server.process.pid).children():
        argv = child.cmdline()
        if "telephony.sip.ua_process" in argv:
            found[json.loads(argv[-1])["agent"]["index"]] = child.pid
    return found


def wait_for(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def test_a_lost_user_agent_ends_its_calls_only(gateway):
    """Killing the process of one call ends that call (its finals kept, its caller hung up by
    the front) and is started again; a call on the other process carries on."""
    agents = wait_for(lambda: len(a := user_agents(gateway)) == PROCESSES and a, "agents up")
    before = gateway.call_ids()
    key = gateway.keys["acme"]
    endless = subprocess.Popen(  # the first call goes to user agent 0, the least busy
        sipp_argv(gateway.sip_port, SCENARIOS / "uac_until_bye.xml", "acme", key, "-m", "1"),
        cwd=gateway.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    [lost] = wait_for(lambda: gateway.call_ids() - before, "the first call is up")
    first_up = time.monotonic()
    pause_ms = int(gateway.speech_s * 1000) + 1500  # hangs up well after the kill below
    other = subprocess.Popen(  # the second one to user agent 1
        sipp_argv(gateway.sip_port, SPEECH, "acme", key, *speech_keys(pause_ms), "-m", "1"),
        cwd=gateway.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: len(gateway.call_ids() - before) == 2, "the second call is up")
    time.sleep(max(0.0, first_up + gateway.speech_s + 0.3 - time.monotonic()))
    os.kill(agents[0], signal.SIGKILL)  # the first call has streamed its sentence once

    output, _ = endless.communicate(timeout=60)
    assert endless.returncode == 0, f"no BYE from the front:\n{output[-2000:]}\n{gateway.log()}"
    gateway.wait_ended({lost}, timeout=30)
    assert "tomorrow" in gateway.transcript(lost)
    output, _ = other.communicate(timeout=120)
    assert other.returncode == 0, f"the other call broke:\n{output[-2000:]}\n{gateway.log()}"
    [carried_on] = gateway.new_calls(before | {lost}, 1)
    assert all(word in gateway.transcript(carried_on) for word in WORDS)

    restarted = wait_for(lambda: len(a := user_agents(gateway)) == PROCESSES and a, "restart")
    assert restarted[0] != agents[0] and restarted[1] == agents[1]
    before = gateway.call_ids()
    gateway.assert_ok(speech_call(gateway, "acme", key, "-m", "1"))
    [call_id] = gateway.new_calls(before, 1)
    assert "tomorrow" in gateway.transcript(call_id)
