"""Job URLs and webhooks reach public addresses only, redirects included, unless allowed."""

import http.server
import threading
import urllib.request

import pytest

from admin_api.outbound import ForbiddenAddress, _PublicRedirects, check_public, open_url


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


def test_a_redirect_to_a_private_address_is_refused():
    request = urllib.request.Request("https://93.184.216.34/a.wav")
    with pytest.raises(ForbiddenAddress):
        _PublicRedirects().redirect_request(
            request, None, 302, "Found", {}, "http://127.0.0.1:6379/"
        )


@pytest.fixture
def loopback_server():
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_open_url_reaches_loopback_only_when_allowed(loopback_server):
    with pytest.raises(ForbiddenAddress):
        open_url(loopback_server, 5, allow_private=False)
    with open_url(loopback_server, 5, allow_private=True) as response:
        assert response.read() == b"ok"
