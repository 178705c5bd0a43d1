"""Job URLs and webhooks reach public addresses only, redirects and DNS rebinding included,
unless allowed. Real HTTP servers on loopback stand in for the tenant's targets."""

import http.server
import socket
import threading

import pytest

from admin_api import outbound
from admin_api.outbound import ForbiddenAddress, check_public, open_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/a.wav",
        "http://localhost/a.wav",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata address
        "http://[::1]/hook",
        "http:///no-host",
    ],
)
def test_private_and_hostless_urls_are_refused(url):
    with pytest.raises(ForbiddenAddress):
        check_public(url)


def test_a_public_address_passes():
    check_public("https://93.184.216.34/a.wav")  # a literal: no DNS needed


class _Server:
    """A loopback HTTP server that answers `ok`, or redirects to `redirect_to`."""

    def __init__(
        self, host: str = "127.0.0.1", redirect_to: str | None = None, port: int = 0
    ) -> None:
        self.requests = 0
        owner = self

        class Answer(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests += 1
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.end_headers()
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Answer)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback_server():
    server = _Server()
    yield server
    server.close()


def test_open_url_reaches_loopback_only_when_allowed(loopback_server):
    with pytest.raises(ForbiddenAddress):
        open_url(loopback_server.url, 5, allow_private=False)
    with open_url(loopback_server.url, 5, allow_private=True) as response:
        assert response.read() == b"ok"
    assert loopback_server.requests == 1


def _public_127_0_0_2(monkeypatch) -> None:
    """Let 127.0.0.2 play a public host (a loopback server the test can run)."""
    require_public = outbound._require_public

    def public_but_127_0_0_2(host: str, address: str) -> None:
        if address != "127.0.0.2":
            require_public(host, address)

    monkeypatch.setattr(outbound, "_require_public", public_but_127_0_0_2)


def test_a_redirect_to_a_private_address_is_refused(loopback_server, monkeypatch):
    _public_127_0_0_2(monkeypatch)
    hop = _Server("127.0.0.2", redirect_to=loopback_server.url)
    try:
        with pytest.raises(ForbiddenAddress):
            open_url(hop.url, 5, allow_private=False)
    finally:
        hop.close()
    assert hop.requests == 1 and loopback_server.requests == 0


def test_dns_rebinding_cannot_swap_in_a_private_address(loopback_server, monkeypatch):
    """The name's DNS answers alternate between a public address and loopback (an attacker's
    zero-TTL records). The connection goes to the address that was vetted: never loopback."""
    _public_127_0_0_2(monkeypatch)
    public = _Server("127.0.0.2", port=loopback_server.port)
    answers = iter(["127.0.0.2", "127.0.0.1"] * 4)
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            host = next(answers)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        url = f"http://rebind.example:{loopback_server.port}/"
        with open_url(url, 5, allow_private=False) as response:
            assert response.read() == b"ok"
    finally:
        public.close()
    assert public.requests == 1 and loopback_server.requests == 0
