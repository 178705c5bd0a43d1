"""Addresses the server reaches on a tenant's behalf: batch-job URLs and webhooks.

A tenant must not be able to make the server fetch from, or post to, the machines around it
(loopback services, the private network, a cloud's metadata address), so such URLs must lead
to public addresses only, unless the operator allows private ones
(`CALLSCRIBE_OUTBOUND_ALLOW_PRIVATE`, for on-premises receivers and tests).

The check is made on the address each connection actually goes to, not only on the URL: a
redirect is a new connection, and a host whose DNS answers a public address at the check and
a private one at the connection (DNS rebinding) is caught there too.
"""

import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlparse


class ForbiddenAddress(ValueError):
    """The URL leads somewhere the server must not go for a tenant."""


def check_public(url: str) -> None:
    """Raise `ForbiddenAddress` unless every address `url`'s host resolves to is public (an
    early, clear refusal; the connection is checked again by `open_url`)."""
    host = urlparse(url).hostname
    if not host:
        raise ForbiddenAddress(f"{url!r} names no host")
    for *_, address in _resolve(host, None):
        _require_public(host, address[0])


def _resolve(host: str, port: int | None) -> list[tuple]:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ForbiddenAddress(f"{host} does not resolve ({exc.strerror})") from exc


def _require_public(host: str, address: str) -> None:
    if not ipaddress.ip_address(address.split("%")[0]).is_global:
        raise ForbiddenAddress(
            f"{host} is a private address ({address}); the operator can allow those with "
            "CALLSCRIBE_OUTBOUND_ALLOW_PRIVATE=true"
        )


def _connect_public(address: tuple[str, int], timeout=None, source_address=None) -> socket.socket:
    """`socket.create_connection`, resolving once and connecting only to the addresses that
    resolution vetted, so a second lookup cannot swap in another one."""
    host, port = address
    candidates = _resolve(host, port)
    for *_, sockaddr in candidates:
        _require_public(host, sockaddr[0])
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in candidates:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"cannot connect to {host}")


class _VettedConnect:
    """Makes an `http.client` connection connect through `_connect_public`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPConnection(_VettedConnect, http.client.HTTPConnection):
    pass


class _PublicHTTPSConnection(_VettedConnect, http.client.HTTPSConnection):
    pass


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


def open_url(request: urllib.request.Request | str, timeout_s: float, allow_private: bool):
    """`urllib.request.urlopen`, refusing private addresses (redirects included). No proxy
    from the environment is used then: the server itself must make the connection it vets."""
    if allow_private:
        return urllib.request.urlopen(request, timeout=timeout_s)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), _PublicHTTPHandler, _PublicHTTPSHandler
    )
    return opener.open(request, timeout=timeout_s)


def read_url(url: str, timeout_s: float, allow_private: bool, max_bytes: int) -> bytes:
    """The body at `url` (http or https), at most `max_bytes`, refused as `open_url` refuses;
    raises `ValueError` with a readable reason (forbidden address, too large, unreachable)."""
    if urlparse(url).scheme not in ("http", "https"):
        raise ValueError(f"{url[:200]!r}: use an http or https URL")
    if not allow_private:
        check_public(url)
    body = bytearray()
    try:
        with open_url(url, timeout_s, allow_private) as response:
            while chunk := response.read(1 << 16):
                body += chunk
                if len(body) > max_bytes:
                    raise ValueError(f"{url[:200]}: larger than {max_bytes} bytes")
    except OSError as exc:  # URLError, HTTPError and timeouts
        raise ValueError(f"could not fetch {url[:200]}: {exc}") from exc
    return bytes(body)
