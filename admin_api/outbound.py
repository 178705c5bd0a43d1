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
import ssl
import urllib.error
import urllib.request
from http import HTTPStatus
from urllib.parse import urljoin, urlparse

SCHEMES = ("http", "https")

TRANSITION_PREFIXES = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
    ipaddress.ip_network("64:ff9b:1::/48"),  # NAT64, local use (RFC 8215)
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated)
)
"""IPv6 prefixes whose last 32 bits are an IPv4 address a translator reaches: the address
is only as public as that IPv4 address (6to4 and Teredo are handled by `ipaddress`)."""


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


def embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 addresses an IPv6 address leads to (IPv4-mapped, 6to4, Teredo, NAT64)."""
    if address.version == 4:
        return []
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if any(address in prefix for prefix in TRANSITION_PREFIXES):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ipv4 for ipv4 in found if ipv4 is not None]


def is_public(address: str) -> bool:
    """A global address, that embeds no IPv4 address that is not global."""
    parsed = ipaddress.ip_address(address.split("%")[0])
    return parsed.is_global and all(ipv4.is_global for ipv4 in embedded_ipv4(parsed))


def _require_public(host: str, address: str) -> None:
    if not is_public(address):
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


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http and https only (urllib would also follow one to ftp)."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri") or ""
        scheme = urlparse(urljoin(req.full_url, location)).scheme.lower()
        if scheme not in SCHEMES:
            raise ForbiddenAddress(f"a redirect to a {scheme or 'scheme-less'} URL")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener(allow_private: bool) -> urllib.request.OpenerDirector:
    """http and https handlers only: no ftp, file or data URLs, first or by a redirect."""
    opener = urllib.request.OpenerDirector()
    handlers = (
        (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler())
        if allow_private
        else (_PublicHTTPHandler(), _PublicHTTPSHandler())
    )
    for handler in (
        urllib.request.ProxyHandler({}),  # the server makes the connection it vets
        *handlers,
        _HttpRedirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def open_url(request: urllib.request.Request | str, timeout_s: float, allow_private: bool):
    """`urllib.request.urlopen` for http and https only, refusing private addresses
    (redirects included) unless `allow_private`. No proxy from the environment is used: the
    server itself must make the connection it vets."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    if urlparse(url).scheme.lower() not in SCHEMES:
        raise ForbiddenAddress(f"only http and https URLs are fetched, not {url[:60]!r}")
    return _opener(allow_private).open(request, timeout=timeout_s)


def describe_failure(exc: BaseException) -> str:
    """Why a fetch or a delivery failed, in words of our own: what the other end sent (an
    HTTP reason phrase, a non-HTTP service's banner, an error page) never reaches the tenant,
    who may have pointed the URL at a machine it must not learn about."""
    if isinstance(exc, urllib.error.HTTPError):
        try:
            return f"HTTP {exc.code} {HTTPStatus(exc.code).phrase}"
        except ValueError:
            return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return describe_failure(exc.reason)
    if isinstance(exc, ForbiddenAddress):
        return str(exc)
    if isinstance(exc, TimeoutError | socket.timeout):
        return "the connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, ConnectionError):
        return "the connection was lost"
    if isinstance(exc, socket.gaierror):
        return "the host does not resolve"
    if isinstance(exc, http.client.HTTPException):
        return "the server did not answer with HTTP"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed"
    return "the request failed"


def read_url(url: str, timeout_s: float, allow_private: bool, max_bytes: int) -> bytes:
    """The body at `url` (http or https), at most `max_bytes`, refused as `open_url` refuses;
    raises `ValueError` with a readable reason (forbidden address, too large, unreachable)."""
    if urlparse(url).scheme.lower() not in SCHEMES:
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
    except (OSError, http.client.HTTPException, ForbiddenAddress) as exc:
        raise ValueError(f"could not fetch {url[:200]}: {describe_failure(exc)}") from exc
    return bytes(body)
