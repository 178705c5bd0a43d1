"""Browsers on a server that trusts this machine's callers (local mode).

In local mode a keyless caller on loopback acts as the local tenant, and a web browser on
this machine is such a caller, whatever page it shows. So any site the user visits could post
audio or open a socket, directly (a cross-origin request carries the page's `Origin`) or by
DNS rebinding (its own host name pointed at 127.0.0.1: the request is then "same-origin" for
the browser, but its `Host` names the attacker's domain). `LocalBrowserGuard` lets through
only requests whose `Host` names this machine (or an allowed origin's host) and whose
`Origin`, when a browser sent one, is the server's own or an allowed one: others get 403, and
a WebSocket is closed with 4403 before it is accepted.
"""

import ipaddress
import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

FORBIDDEN_CLOSE = 4403
LOCAL_NAMES = frozenset({"localhost"})


def host_name(netloc: str) -> str:
    """`[::1]:7860` -> `::1`, `Example.COM:80` -> `example.com`."""
    try:
        return (urlsplit(f"//{netloc}").hostname or "").lower()
    except ValueError:
        return ""


def is_local_name(name: str) -> bool:
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LocalBrowserGuard:
    """ASGI middleware: `Host` and `Origin` checks of local mode (see the module)."""

    def __init__(self, app: ASGIApp, allowed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.origins = frozenset(origin.lower() for origin in allowed_origins)
        self.hosts = frozenset(host_name(urlsplit(origin).netloc) for origin in self.origins)

    def refusal(self, scope: Scope) -> str | None:
        """Why the request may not reach the app, or None."""
        headers = {name: value for name, value in scope.get("headers", ())}
        host = headers.get(b"host", b"").decode("latin-1")
        if host and not (is_local_name(host_name(host)) or host_name(host) in self.hosts):
            return f"host {host[:80]!r} is not this server (a local server answers localhost)"
        origin = headers.get(b"origin")
        if origin is None:
            return None  # not a browser's cross-site request
        origin_text = origin.decode("latin-1").lower()
        if origin_text in self.origins or urlsplit(origin_text).netloc == host.lower():
            return None
        return (
            f"pages from {origin_text[:80]!r} may not use this server "
            "(allow their origin with CALLSCRIBE_ALLOWED_ORIGINS)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": FORBIDDEN_CLOSE, "reason": reason})
        else:
            body = json.dumps(
                {"error": {"message": reason, "type": "invalid_request_error", "code": "forbidden"}}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
