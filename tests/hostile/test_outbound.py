"""What the server fetches or posts to for a tenant: http and https only (no ftp or file, even
by a redirect), no address that leads to a private IPv4 one through a transition prefix, and
nothing the other end said (banners, reason phrases) in what the tenant reads."""

import http.server
import socket
import threading

import pytest

from admin_api.outbound import ForbiddenAddress, describe_failure, is_public, open_url
from worker.runs import JobInputError
from worker.tasks.jobs import fetch


@pytest.mark.parametrize(
    "address, public",
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::c0a8:1", False),  # local-use NAT64 of 192.168.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("::ffff:10.1.2.3", False),  # IPv4-mapped
        ("::127.0.0.1", False),  # IPv4-compatible
    ],
)
def test_transition_prefixes_are_as_private_as_what_they_embed(address, public):
    assert is_public(address) is public


@pytest.fixture
def redirector():
    """An HTTP server on loopback that redirects every request to `Location` of the path."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", self.path.lstrip("/").replace("%3A", ":"))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("target", ["ftp://127.0.0.1:21/x", "file:///etc/passwd"])
def test_only_http_and_https_are_followed(redirector, target):
    for allow_private in (True, False):
        with pytest.raises(ForbiddenAddress):
            open_url(target, 2, allow_private)
    with pytest.raises(ForbiddenAddress, match="redirect"):
        open_url(f"{redirector}/{target}", 2, allow_private=True)


@pytest.fixture
def banner_service():
    """A non-HTTP service on loopback that greets with a banner naming itself."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.sendall(b"220 secret-db.internal ESMTP Postfix 3.4.13 ready\r\n")
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/audio.wav"
    listener.close()


def test_banners_of_internal_services_never_reach_the_tenant(banner_service, tmp_path):
    with pytest.raises(JobInputError) as failed:
        fetch(banner_service, tmp_path / "in.wav", 1_000_000, 2, allow_private=True)
    reason = str(failed.value)
    assert "secret-db" not in reason and "Postfix" not in reason
    assert "did not answer with HTTP" in reason


def test_failures_are_described_in_our_words():
    assert describe_failure(ConnectionRefusedError(111, "refused by 10.0.0.7")) == (
        "the connection was refused"
    )
    assert "10.0.0.7" not in describe_failure(OSError("no route to 10.0.0.7"))
