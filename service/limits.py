"""Limits before work: every request body is capped by its route, and its sender checked,
before a byte of it is read.

A JSON body is parsed whole on the event loop that every live call shares, and FastAPI reads a
route's body before its dependencies (the key check) run. So a body meant to be a few hundred
bytes (a token request, tenant settings) may not be the size of an audio upload, and a caller
the service's authenticator refuses gets its 401 without its body being read at all."""

import json
import re
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import Unauthorized
from service.config import Authenticator, BodyLimit


@dataclass(frozen=True)
class BodyLimits:
    default: BodyLimit
    """Any other route: a few KB of JSON."""
    routes: tuple[BodyLimit, ...] = ()
    """The first match wins (audio uploads, hot-word lists)."""

    def __post_init__(self) -> None:
        compiled = tuple((re.compile(limit.pattern), limit) for limit in self.routes)
        object.__setattr__(self, "_compiled", compiled)

    def for_path(self, path: str) -> BodyLimit:
        for pattern, limit in self._compiled:  # type: ignore[attr-defined]
            if pattern.match(path):
                return limit
        return self.default


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number, None when absent or not plain ASCII digits."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and value.isascii() else None
    return None


def is_json(scope: Scope) -> bool:
    """A body FastAPI would parse as JSON (or any body that does not say it is a form)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return not value.lower().startswith((b"multipart/", b"application/x-www-form"))
    return True


def carries_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return (declared_length(scope) or 0) > 0 or b"transfer-encoding" in headers


def error_body(message: str, code: str) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    ).encode()


async def answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Answer 413 as soon as a request body exceeds its route's limit (declared or actually
    sent), and 401 before reading the body of a caller `authenticate` refuses.

    A body sent without Content-Length is counted as it arrives; past the limit the app is told
    the client went away (so it stops reading) and whatever it answers is replaced by the 413.
    """

    def __init__(
        self, app: ASGIApp, limits: BodyLimits, authenticate: Authenticator | None = None
    ) -> None:
        self.app = app
        self.limits = limits
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await self._reject(send, limit)
            return
        if self.authenticate is not None and carries_body(scope):
            try:
                await self.authenticate(HTTPConnection(scope))
            except Unauthorized as refused:
                await answer(send, 401, error_body(refused.reason, refused.code))
                return
        received = values = 0
        too_large = too_many_values = False
        response_started = False
        counts_values = is_json(scope)

        async def counting_receive() -> Message:
            nonlocal received, values, too_large, too_many_values
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if counts_values:
                    values += chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{")
                    too_many_values = values > limit.max_json_values
                if received > limit.max_bytes or too_many_values:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if not too_large or response_started:
                response_started = response_started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not response_started:
            await self._reject(send, limit, too_many_values)

    async def _reject(self, send: Send, limit: BodyLimit, values: bool = False) -> None:
        if values:
            message = (
                f"the JSON body holds more than {limit.max_json_values} values, this route's "
                f"limit ({limit.setting})"
            )
            await answer(send, 413, error_body(message, "payload_too_large"))
            return
        size = (
            f"{limit.max_bytes / 1_000_000:g} MB"
            if limit.max_bytes >= 1_000_000
            else f"{limit.max_bytes / 1000:g} KB"
        )
        message = f"request body exceeds this route's limit of {size} ({limit.setting})"
        await answer(send, 413, error_body(message, "payload_too_large"))
