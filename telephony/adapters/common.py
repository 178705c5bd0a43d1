"""What the WebSocket media-stream adapters share: who the caller is (a key in a header, a
`?token=` in the URL, or a token the first message carries, for senders that can set neither
headers nor query strings), the call's id and language, and opening the call with a refusal
the sender can read."""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from common.errors import TooManyRequests, Unauthorized
from common.rules import InvalidRequest
from service.auth import UNAUTHORIZED_CLOSE, identify
from service.live import RATE_LIMITED_CLOSE, REASON_BYTES, close_quietly
from service.quotas import tenant_of
from telephony.refusal import CallRefused
from telephony.session import CallSession
from telephony.state import TelephonyState

logger = logging.getLogger(__name__)

BAD_REQUEST_CLOSE = 4400
"""The stream's setup message is unusable (format, leg names, call id)."""
FORBIDDEN_CLOSE = 4403
"""The caller is known but acts for no tenant (an admin key)."""

ErrorRender = Callable[[str, str], dict]
T = TypeVar("T")
_ending: set[asyncio.Task] = set()


class StreamRefused(Exception):
    """The stream cannot go on: `code`/`message` for the sender, `close_code` for the socket."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def presents_credentials(connection: HTTPConnection) -> bool:
    """A key in a header or a token in the query (checked at once, before any message)."""
    return bool(
        connection.headers.get("authorization")
        or connection.headers.get("x-api-key")
        or connection.query_params.get("token")
    )


async def tenant_for(websocket: WebSocket, state: TelephonyState, token: str | None = None) -> str:
    """The tenant the socket's caller acts for; `token` (from the first message) stands in
    for `?token=` when the URL carries no credentials. Raises `StreamRefused`."""
    connection: HTTPConnection = websocket
    if token and not presents_credentials(websocket):
        scope = dict(websocket.scope)
        scope["query_string"] = f"token={token}".encode()
        connection = HTTPConnection(scope)
    try:
        principal = await identify(connection, state.authenticate)
    except Unauthorized as exc:
        raise StreamRefused(exc.code, exc.reason, UNAUTHORIZED_CLOSE) from None
    tenant = tenant_of(principal)
    if tenant is None:
        raise StreamRefused(
            "tenant_required",
            "media streams belong to a tenant: use a tenant key or token, not an admin key",
            FORBIDDEN_CLOSE,
        )
    return tenant


def checked(rule: Callable[[object], T], value: object) -> T:
    """`rule(value)` (one of `common.rules`); a broken rule refuses the stream with the rule's
    code and message, and close code 4000 + its status."""
    try:
        return rule(value)
    except InvalidRequest as broken:
        raise StreamRefused(broken.code, broken.message, 4000 + broken.status) from None


async def open_call(
    state: TelephonyState, tenant: str, source: str, call_id: str | None, language: str | None
) -> CallSession:
    """The hub's new call, or `StreamRefused` with the reason (close code 4000 + the call's
    SIP-style status: 4404 unknown tenant, 4486 duplicate id, 4503 busy; 4429 over a limit)."""
    try:
        return await state.hub.open_call(tenant, source, call_id=call_id, language=language)
    except CallRefused as exc:
        raise StreamRefused("call_refused", exc.reason, 4000 + exc.status) from None
    except TooManyRequests as exc:
        raise StreamRefused(exc.code, exc.reason, RATE_LIMITED_CLOSE) from None
    except Exception as exc:  # e.g. an id already used by an earlier call
        logger.exception("a media stream's call could not be opened")
        raise StreamRefused(
            "call_refused", f"the call could not be opened ({exc.__class__.__name__})", 1011
        ) from None


async def send_json(websocket: WebSocket, message: dict) -> None:
    """Send, ignoring a sender that has gone away (its receive loop notices)."""
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(message, ensure_ascii=False))


async def refuse(websocket: WebSocket, refused: StreamRefused, render: ErrorRender) -> None:
    logger.warning("media stream refused", extra={"code": refused.code, "reason": refused.message})
    await send_json(websocket, render(refused.code, refused.message))
    await close_quietly(websocket, refused.close_code, refused.message[:REASON_BYTES])


async def end_call(session: CallSession, reason: str) -> None:
    """`session.end(reason)` in a task of its own: a handler cancelled as its sender goes
    away (some servers cancel it on disconnect) must not leave the call half-ended, its last
    final unstored and its slot held."""
    task = asyncio.create_task(session.end(reason))
    _ending.add(task)
    task.add_done_callback(_ending.discard)
    await asyncio.shield(task)
