"""Live listeners: `WS /v1/calls/{call_id}/events` streams a call's partials and finals, each
labelled with its leg (agent / customer), to supervisors' and agents' screens."""

import asyncio
import json

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from common.errors import Unauthorized
from service.auth import UNAUTHORIZED_CLOSE, identify
from service.live import close_quietly
from service.quotas import tenant_of
from telephony.state import TelephonyDep

router = APIRouter()

NOT_FOUND_CLOSE = 4404


@router.websocket("/v1/calls/{call_id}/events")
async def call_events(websocket: WebSocket, call_id: str, state: TelephonyDep) -> None:
    await websocket.accept()
    hub = state.hub
    try:
        principal = await identify(websocket, state.authenticate)
    except Unauthorized as exc:
        await _refuse(websocket, exc.code, exc.reason, UNAUTHORIZED_CLOSE)
        return
    session = hub.calls.get(call_id)
    tenant = tenant_of(principal)
    if session is None or not (
        getattr(principal, "is_admin", False) or tenant == session.tenant_id
    ):
        # Another tenant's call is simply not found.
        await _refuse(websocket, "call_not_found", f"no active call {call_id!r}", NOT_FOUND_CLOSE)
        return
    queue = hub.listeners.listen(call_id)
    closer = asyncio.create_task(_until_disconnect(websocket))
    try:
        await websocket.send_text(
            json.dumps({"type": "listening", "call_id": call_id, "legs": list(session.legs)})
        )
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            if closer in done:
                getter.cancel()
                return
            event = getter.result()
            if event is None:
                break
            await websocket.send_text(json.dumps(event, ensure_ascii=False))
        await close_quietly(websocket)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closer.cancel()
        hub.listeners.unlisten(call_id, queue)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Listeners only listen: anything they send is ignored until they go away."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _refuse(websocket: WebSocket, code: str, reason: str, close_code: int) -> None:
    await websocket.send_text(json.dumps({"type": "error", "code": code, "message": reason}))
    await close_quietly(websocket, close_code, reason[:120])
