"""The holes of issue 18, attacked on a real `callscribe serve` (SIP on where sipp and pjsua2
are installed), one server for the module: each attack gets its refusal, `/healthz` keeps
answering within a second while it runs (measured by a separate process, so the attacker's
own work in this process does not count), the server grows by less than 200 MB, and a normal
transcription is still served afterwards."""

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.combined_server import tenant_database
from tests.conftest import ENGLISH_WORDS
from tests.helpers import espeak_wav
from tests.services import CallscribeServer, free_port
from tests.sipp import sip_missing

HEALTHZ_BOUND_S = 1.0
RSS_BOUND_BYTES = 200 * 1024 * 1024
UPLOAD_MB = 20

MONITOR = """
import sys, time, urllib.request
url, stop = sys.argv[1], sys.argv[2]
worst, count = 0.0, 0
import os
while not os.path.exists(stop):
    started = time.perf_counter()
    try:
        urllib.request.urlopen(url, timeout=10).read()
    except OSError:
        worst = max(worst, 10.0)
    worst, count = max(worst, time.perf_counter() - started), count + 1
    if count == 2:
        print("ready", flush=True)
    time.sleep(0.05)
print(worst, count)
"""


class Target:
    """The server under attack: its URL, SIP port, a tenant key and its process."""

    def __init__(self, folder: Path) -> None:
        url = f"sqlite:///{folder / 'admin.db'}"
        self.key = tenant_database(url)
        self.sip_port = free_port() if sip_missing() is None else None
        settings = {
            "CALLSCRIBE_DATABASE_URL": url,
            "CALLSCRIBE_AUTH": "keys",
            "CALLSCRIBE_MAX_UPLOAD_MB": str(UPLOAD_MB),
            "CALLSCRIBE_LOG_LEVEL": "warning",
        }
        if self.sip_port is not None:
            rtp = free_port()
            settings |= {
                "CALLSCRIBE_SIP_PORT": str(self.sip_port),
                "CALLSCRIBE_SIP_PROCESSES": "1",
                "CALLSCRIBE_RTP_PORT_MIN": str(rtp),
                "CALLSCRIBE_RTP_PORT_MAX": str(rtp + 100),
            }
        self.server = CallscribeServer(settings, "whisper-tiny.en")
        self.folder = folder

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def headers(self) -> dict:
        return {"authorization": f"Bearer {self.key}"}

    def rss(self) -> int:
        return psutil.Process(self.server.process.pid).memory_info().rss

    @contextmanager
    def attack(self):
        """Runs the block as an attack: /healthz polled from another process meanwhile, the
        server's memory sampled before and after."""
        stop = self.folder / f"stop-{time.monotonic_ns()}"
        monitor = subprocess.Popen(
            [sys.executable, "-c", MONITOR, f"{self.url}/healthz", str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert monitor.stdout.readline().strip() == "ready"  # probing before the attack
        before = self.rss()
        try:
            yield
        finally:
            after = self.rss()
            stop.touch()
            worst, probes = monitor.communicate(timeout=30)[0].split()
        assert int(probes) >= 2
        assert float(worst) < HEALTHZ_BOUND_S, f"/healthz took {float(worst):.2f} s"
        assert after - before < RSS_BOUND_BYTES, f"RSS grew by {(after - before) >> 20} MiB"


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    target = Target(tmp_path_factory.mktemp("attacks"))
    with target.server:
        yield target


def raw_request(port: int, head: str, body: bytes) -> int:
    """Send a request's head and the start of its body; the status the server answers with
    before the rest is sent (it must not wait for a body it refuses)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_a_huge_nested_body_without_a_key_is_refused_unread(target):
    port = int(target.url.rsplit(":", 1)[1])
    nested = b"[" * 500_000
    with target.attack():
        declared = raw_request(
            port,
            "POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: 40000000",
            nested,
        )
        chunked = raw_request(
            port,
            "POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked",
            f"{len(nested):x}\r\n".encode() + nested + b"\r\n",
        )
        with_key = httpx.post(
            f"{target.url}/v1/tokens",
            content=b"[" * 60_000 + b"]" * 60_000,
            headers={**target.headers, "content-type": "application/json"},
            timeout=30,
        )
    assert declared == 413 and chunked == 401 and with_key.status_code == 413


def test_a_hotword_list_body_of_empty_arrays_is_not_parsed(target):
    """2 MB of `[],[],...` (within the hot-word routes' body limit) would cost a second or
    more of `json.loads`, which holds the interpreter (a worker thread would not help): its
    values are counted as it arrives, and it is refused before it is parsed."""
    body = b'{"entries": [' + b"[]," * 680_000 + b"[]]}"
    path = "/v1/tenants/acme/hotword-lists"
    with target.attack():
        responses = [
            httpx.post(
                f"{target.url}{path}",
                content=body,
                headers={**target.headers, "content-type": "application/json"},
                timeout=60,
            )
            for _ in range(3)
        ]
    assert all(r.status_code == 413 for r in responses), [r.status_code for r in responses]
    assert "values" in responses[0].json()["error"]["message"]


def test_forged_credentials_are_refused(target):
    with target.attack():
        odd_token = httpx.get(f"{target.url}/v1/hotwords/active?token=cst_a.%C3%A9", timeout=10)
        bogus = httpx.get(
            f"{target.url}/v1/hotwords/active", headers={"authorization": "Bearer bogus"}
        )
    assert odd_token.status_code == 401 and bogus.status_code == 401


def test_a_funasr_offline_flood_is_cut_at_the_upload_limit(target):
    frame = bytes(900_000)
    url = target.url.replace("http", "ws") + "/v1/funasr"
    sent = 0
    with target.attack(), connect(url, additional_headers=target.headers) as ws:
        ws.send(json.dumps({"mode": "offline", "wav_name": "flood", "is_speaking": True}))
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(200):  # 180 MB if it were all taken
                ws.send(frame)
                sent += len(frame)
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4413
    assert sent < 3 * UPLOAD_MB * 1_000_000


def test_an_upload_with_99000_aliases_is_refused_without_a_stall(target, tmp_path):
    aliases = "Acme\t" + "\t".join(f"a{i}" for i in range(99_000))
    speech = espeak_wav("Hello.", tmp_path / "hello.wav").read_bytes()
    with target.attack():
        response = httpx.post(
            f"{target.url}/v1/audio/transcriptions",
            files={"file": ("hello.wav", speech)},
            data={"hotwords": aliases[:1_000_000]},
            headers=target.headers,
            timeout=60,
        )
    assert response.status_code == 422
    assert "CALLSCRIBE_HOTWORDS_MAX_" in response.json()["error"]["message"]  # a limit named


SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
SDP += "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"


def sip_request(
    port: int, caller_port: int, routes: int = 0, via_extra: str = "", method: str = "OPTIONS"
) -> bytes:
    body = SDP if method == "INVITE" else ""
    lines = [
        f"{method} sip:acme@127.0.0.1:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{caller_port};branch=z9hG4bK-{time.monotonic_ns()}"
        + via_extra,
        f"From: <sip:attacker@127.0.0.1:{caller_port}>;tag=a1",
        f"To: <sip:acme@127.0.0.1:{port}>",
        f"Call-ID: attack-{time.monotonic_ns()}",
        f"CSeq: 1 {method}",
        "Max-Forwards: 70",
        f"Contact: <sip:attacker@127.0.0.1:{caller_port}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    if routes:
        lines.insert(2, "Route: " + ", ".join([f"<sip:127.0.0.1:{port};lr>"] * routes))
    return ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def test_sip_datagrams_do_not_stall_or_reflect(target):
    if target.sip_port is None:
        pytest.skip(sip_missing())
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    caller.settimeout(5)
    port = caller.getsockname()[1]
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.1", 0))
    victim.settimeout(0.5)
    with target.attack():
        answers = []
        for _ in range(20):  # 13 KB of Routes naming the gateway itself, each
            request = sip_request(target.sip_port, port, routes=500)
            caller.sendto(request, ("127.0.0.1", target.sip_port))
            answers.append(caller.recvfrom(65535)[0])
    assert all(answer.startswith(b"SIP/2.0 200") for answer in answers)
    odd = sip_request(target.sip_port, port).replace(b"CSeq: 1 ", b"CSeq: \xb2 ")
    caller.sendto(odd, ("127.0.0.1", target.sip_port))
    assert caller.recvfrom(65535)[0].startswith(b"SIP/2.0 400")
    victim_port = victim.getsockname()[1]
    spoofed = sip_request(  # keyless, not on any allow-list: the user agent refuses it
        target.sip_port,
        victim_port,
        via_extra=f";received=127.0.0.1;rport={victim_port}",
        method="INVITE",
    )
    caller.sendto(spoofed, ("127.0.0.1", target.sip_port))
    statuses = set()
    while not statuses & {401, 403, 404, 488, 503}:  # the user agent's final answer
        statuses.add(int(caller.recvfrom(65535)[0].split()[1]))  # came to the real source
    with pytest.raises(TimeoutError):
        victim.recvfrom(65535)
    caller.close()
    victim.close()


def test_a_normal_transcription_is_served_after_the_attacks(target, tmp_path):
    speech = espeak_wav(
        "The quick brown fox jumps over the lazy dog.", tmp_path / "fox.wav"
    ).read_bytes()
    response = httpx.post(
        f"{target.url}/v1/audio/transcriptions",
        files={"file": ("fox.wav", speech)},
        headers=target.headers,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    text = response.json()["text"].lower()
    assert sum(word in text for word in ENGLISH_WORDS) >= 3, text
    assert target.server.running and os.path.exists(target.folder)


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    """`callscribe serve` as `make run` starts it: bound to loopback, local mode."""
    folder = tmp_path_factory.mktemp("local")
    settings = {
        "CALLSCRIBE_DATABASE_URL": f"sqlite:///{folder / 'admin.db'}",
        "CALLSCRIBE_AUTH": "auto",
        "CALLSCRIBE_LOG_LEVEL": "warning",
    }
    with CallscribeServer(settings, "whisper-tiny.en") as server:
        yield server


def test_local_mode_believes_no_forwarded_for_and_no_other_site(local_server):
    url = f"{local_server.url}/v1/hotwords/active"
    assert httpx.get(url).status_code == 200  # this machine, no key: the local tenant
    # A caller's own X-Forwarded-For changes nothing (no proxy is trusted by default).
    assert httpx.get(url, headers={"x-forwarded-for": "203.0.113.5"}).status_code == 200
    assert httpx.get(url, headers={"origin": "https://evil.example"}).status_code == 403
    assert httpx.get(url, headers={"host": "rebind.evil.example"}).status_code == 403
    assert httpx.get(url, headers={"authorization": "Bearer bogus"}).status_code == 401
    socket_url = local_server.url.replace("http", "ws") + "/v1/stream"
    with pytest.raises(Exception) as refused:  # a 403 to the upgrade: the socket never opens
        connect(socket_url, additional_headers={"origin": "https://evil.example"})
    assert "403" in str(refused.value)
