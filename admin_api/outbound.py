"""Addresses the server reaches on a tenant's behalf: batch-job URLs and webhooks.

A tenant must not be able to make the server fetch from, or post to, the machines around it
(loopback services, the private network, a cloud's metadata address), so such URLs must
resolve to public addresses only, redirects included, unless the operator allows private ones
(`CALLSCRIBE_OUTBOUND_ALLOW_PRIVATE`, for on-premises receivers and tests).
"""

import ipaddress
import socket
import urllib.request
from urllib.parse import urlparse


class ForbiddenAddress(ValueError):
    """The URL leads somewhere the server must not go for a tenant."""


def check_public(url: str) -> None:
    """Raise `ForbiddenAddress` unless every address `url`'s host resolves to is public."""
    host = urlparse(url).hostname
    if not host:
        raise ForbiddenAddress(f"{url!r} names no host")
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ForbiddenAddress(f"{host} does not resolve ({exc.strerror})") from exc
    for address in resolved:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise ForbiddenAddress(
                f"{host} is a private address ({address}); the operator can allow those with "
                "CALLSCRIBE_OUTBOUND_ALLOW_PRIVATE=true"
            )


class _PublicRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_public(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(request: urllib.request.Request | str, timeout_s: float, allow_private: bool):
    """`urllib.request.urlopen`, refusing private addresses (also behind a redirect)."""
    if allow_private:
        return urllib.request.urlopen(request, timeout=timeout_s)
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    check_public(url)
    return urllib.request.build_opener(_PublicRedirects).open(request, timeout=timeout_s)
