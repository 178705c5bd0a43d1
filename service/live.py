"""Plumbing shared by the live WebSocket protocols: accepting (with authentication), one
sender per socket, and recognizers wired to the process scheduler and metrics."""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from asr_core.streaming import Event, StreamingOptions, StreamingRecognizer, to_dict
from common.errors import TooManyRequests, Unauthorized
from service.auth import UNAUTHORIZED_CLOSE, identify
from service.quotas import Slot
from service.state import ServiceState

logger = logging.getLogger(__name__)

MAX_AUDIO_FRAME_BYTES = 1_000_000
"""About 31 s of 16 kHz PCM16: far more than any client sends in one frame."""
MAX_TEXT_FRAME_CHARS = 1_000_000
"""Room for a hot-word list at its limits (5,000 phrases of 64 characters, JSON-quoted)."""

RATE_LIMITED_CLOSE = 4429
"""Close code for a caller over a per-tenant limit (the close reason says which)."""
REASON_BYTES = 120
"""WebSocket close reasons are limited to 123 bytes."""

_END = object()


class Outbox:
    """Everything a socket sends goes through one queue and one task, in order."""

    def __init__(self, websocket: WebSocket, render: Callable[[Any], dict | None]) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue = asyncio.Queue()
        self._render = render
        self._task = asyncio.create_task(self._run())

    def put(self, message: Event | dict) -> None:
        self.queue.put_nowait(message)

    async def drain(self) -> None:
        """Send what is queued, then stop."""
        self.queue.put_nowait(_END)
        with contextlib.suppress(Exception):
            await self._task

    def cancel(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        while True:
            message = await self.queue.get()
            if message is _END:
                return
            body = self._render(message)
            if body is None:
                continue
            try:
                await self.websocket.send_text(json.dumps(body, ensure_ascii=False))
            except (WebSocketDisconnect, RuntimeError):
                return  # the client is gone; the receiver notices and cleans up


def render_native(message: Event | dict) -> dict:
    return message if isinstance(message, dict) else to_dict(message)


def new_recognizer(
    state: ServiceState, options: StreamingOptions, outbox: Outbox
) -> StreamingRecognizer:
    """A recognizer on the process scheduler whose events go straight to the socket."""
    return StreamingRecognizer(state.scheduler, options, state.metrics.streams, events=outbox.queue)


async def accept(
    websocket: WebSocket, state: ServiceState, subprotocol: str | None = None
) -> Slot | None:
    """Accept the socket, authenticate the caller and take one of their tenant's stream slots.
    A refused caller gets an error event, then close code 4401 (not authenticated) or 4429
    (over a limit) with the reason: accepting first lets the client read why."""
    await websocket.accept(subprotocol=subprotocol)
    try:
        principal = await identify(websocket, state.config.authenticate)
        return state.quotas.stream(principal)
    except (Unauthorized, TooManyRequests) as exc:
        close_code = UNAUTHORIZED_CLOSE if isinstance(exc, Unauthorized) else RATE_LIMITED_CLOSE
        with contextlib.suppress(Exception):
            await websocket.send_text(
                json.dumps({"type": "error", "code": exc.code, "message": exc.reason})
            )
        await close_quietly(websocket, close_code, exc.reason[:REASON_BYTES])
        return None


async def receive_frame(websocket: WebSocket, timeout_s: float | None = None) -> dict | None:
    """The client's next message (`bytes` or `text`), or None once it has gone. Raises
    TimeoutError when `timeout_s` passes first."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout_s)
    except (WebSocketDisconnect, RuntimeError):
        return None
    return None if message["type"] == "websocket.disconnect" else message


async def close_quietly(websocket: WebSocket, code: int = 1000, reason: str = "") -> None:
    if websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason=reason)
