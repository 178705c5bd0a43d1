"""Opening a Deepgram socket: who is calling, what they ask for, and a stream slot, all before
the socket is accepted.

Deepgram refuses a bad request at the handshake, with an HTTP status and a JSON body
(`{"err_code": ..., "err_msg": ..., "request_id": ...}`); its SDKs raise that status. Where
the server cannot answer a handshake with HTTP (an ASGI server without the denial-response
extension), the socket is accepted and closed at once with a close code instead: 1008 for a
bad parameter, 4401 without credentials, 4429 over a limit, the same JSON as the reason.
"""

import contextlib
import json
import uuid
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from starlette.websockets import WebSocket

from asr_core.errors import AsrError
from common.errors import ApiError, TooManyRequests, Unauthorized
from service.auth import UNAUTHORIZED_CLOSE, identify
from service.deepgram.params import ListenParams, parse_listen
from service.live import RATE_LIMITED_CLOSE, REASON_BYTES, close_quietly
from service.quotas import Slot
from service.state import ServiceState

POLICY_VIOLATION = 1008
"""Deepgram's close code for a request it will not serve (bad parameters, bad audio)."""
TOKEN_SUBPROTOCOL = "token"


@dataclass
class Opened:
    slot: Slot
    params: ListenParams
    request_id: str


async def open_listen(websocket: WebSocket, state: ServiceState) -> Opened | None:
    """Authenticate, read the parameters, take a stream slot and accept; None when refused
    (the refusal has been sent)."""
    request_id = str(uuid.uuid4())
    try:
        principal = await identify(websocket, state.config.authenticate)
        params = parse_listen(websocket.query_params, state.config.rules)
        slot = state.quotas.stream(principal)
    except Unauthorized as exc:
        await _refuse(websocket, 401, "INVALID_AUTH", exc.reason, request_id, UNAUTHORIZED_CLOSE)
        return None
    except TooManyRequests as exc:
        await _refuse(websocket, 429, "TOO_MANY_REQUESTS", exc.reason, request_id)
        return None
    except ApiError as exc:
        await _refuse(websocket, exc.status, "Bad Request", exc.message, request_id)
        return None
    except AsrError as exc:
        await _refuse(websocket, 400, "Bad Request", exc.reason, request_id)
        return None
    offered = [p.strip().lower() for p in websocket.scope.get("subprotocols", [])]
    subprotocol = TOKEN_SUBPROTOCOL if offered[:1] == [TOKEN_SUBPROTOCOL] else None
    await websocket.accept(subprotocol=subprotocol)
    return Opened(slot, params, request_id)


async def _refuse(
    websocket: WebSocket,
    status: int,
    code: str,
    message: str,
    request_id: str,
    close_code: int | None = None,
) -> None:
    body = {"err_code": code, "err_msg": message, "request_id": request_id}
    try:
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
        return
    except RuntimeError:
        pass  # the server cannot deny a handshake: accept, then close with a code
    if close_code is None:
        close_code = RATE_LIMITED_CLOSE if status == 429 else POLICY_VIOLATION
    with contextlib.suppress(Exception):
        await websocket.accept()
    reason = json.dumps({"err_code": code, "err_msg": message[: REASON_BYTES // 2]})
    await close_quietly(websocket, close_code, reason[:REASON_BYTES])
