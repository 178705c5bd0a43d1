"""Plumbing shared by the live WebSocket protocols: accepting (with authentication), one
sender per socket, and recognizers wired to the process scheduler and metrics."""

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from asr_core.streaming import Event, Partial, StreamingOptions, StreamingRecognizer, to_dict
from common.errors import TooManyRequests, Unauthorized
from service.auth import UNAUTHORIZED_CLOSE, identify
from service.quotas import Slot
from service.state import ServiceState

logger = logging.getLogger(__name__)

MAX_AUDIO_FRAME_BYTES = 1_000_000
"""About 31 s of 16 kHz PCM16: far more than any client sends in one frame."""
MAX_TEXT_FRAME_CHARS = 1_000_000
"""Room for a hot-word list at its limits (5,000 phrases of 64 characters, JSON-quoted)."""

MAX_MESSAGE_JSON_VALUES = 100_000
"""JSON values (counted as commas, arrays and objects) a text message may hold: room for a
hot-word list at its limits. `json.loads` holds the interpreter for as long as it runs and its
time grows with the values (1 MB of `[],` is half a second), so they are counted first."""

MAX_BACKLOG_BYTES = 4_000_000
"""Frames a stream may have read ahead of its recognizer: 2 minutes of 16 kHz PCM16."""

RATE_LIMITED_CLOSE = 4429
"""Close code for a caller over a per-tenant limit (the close reason says which)."""
REASON_BYTES = 120
"""WebSocket close reasons are limited to 123 bytes."""

MAX_OUTBOX_EVENTS = 256
"""Events a socket may have waiting for a client that reads slowly: past this, partials (and
pongs) are dropped; at twice this, when finals pile up too, the socket is closed."""
SLOW_READER_CLOSE = 4408
"""Close code for a client that does not read its events in time."""
ECHO_CHARS = 40
"""Most characters of a client's own text (an unknown message type) quoted back to it."""

_END = object()


def echo(value: object) -> str:
    """A client's value quoted in a reply, cut short: a client never gets its megabyte back."""
    return repr(value)[:ECHO_CHARS]


@dataclass(frozen=True)
class Owned:
    """An event of one of the things a socket carries in turn (FunASR: the files of a
    connection), tagged with it when queued. The outbox renders events when it gets to send
    them, which can be after their owner has ended (its end was handled in the same turn of
    the event loop as its last final, or the socket's writes were waiting): rendered as
    whatever is current by then, that final was lost."""

    owner: Any
    event: Event


class OwnedEvents:
    """A recognizer's event queue that tags each event with `owner` on its way to the outbox
    (the recognizer only ever calls `put_nowait`)."""

    def __init__(self, outbox: "Outbox", owner: Any) -> None:
        self._outbox = outbox
        self._owner = owner

    def put_nowait(self, event: Event) -> None:
        self._outbox.put(Owned(self._owner, event))


def droppable(message: object) -> bool:
    """What a slow reader may miss: the next partial or pong supersedes it."""
    if isinstance(message, Owned):
        message = message.event
    if isinstance(message, Partial):
        return True
    return isinstance(message, dict) and message.get("type") in ("partial", "pong")


class OutboxQueue(asyncio.Queue):
    """A socket's outgoing events, bounded without ever making their producer (a
    recognizer) wait: over `limit` droppable events are dropped, and over twice `limit`
    `overflow` is called and nothing more is taken."""

    def __init__(self, limit: int, overflow: Callable[[], None]) -> None:
        super().__init__()
        self.limit = limit
        self.overflow = overflow
        self.dropped = 0
        self.overflowed = False

    def put_nowait(self, item: object) -> None:
        if item is not _END:
            if self.overflowed:
                return
            backlog = self.qsize()
            if backlog >= self.limit and droppable(item):
                self.dropped += 1
                return
            if backlog >= 2 * self.limit:
                self.overflowed = True
                self.overflow()
                return
        super().put_nowait(item)


class Outbox:
    """Everything a socket sends goes through one queue and one task, in order. The queue is
    bounded (`OutboxQueue`): a client that stops reading loses partials first, then the
    connection, with close code 4408 and the reason."""

    def __init__(
        self,
        websocket: WebSocket,
        render: Callable[[Any], dict | None],
        limit: int = MAX_OUTBOX_EVENTS,
    ) -> None:
        self.websocket = websocket
        self.queue: OutboxQueue = OutboxQueue(limit, self._slow_reader)
        self._render = render
        self._task = asyncio.create_task(self._run())
        self._closing: asyncio.Task | None = None

    def put(self, message: Event | Owned | dict) -> None:
        self.queue.put_nowait(message)

    def _slow_reader(self) -> None:
        logger.warning(
            "closing a socket whose client does not read its events",
            extra={"dropped_partials": self.queue.dropped},
        )
        self._task.cancel()
        reason = "events were not read in time (the client reads too slowly)"
        self._closing = asyncio.get_running_loop().create_task(
            close_quietly(self.websocket, SLOW_READER_CLOSE, reason)
        )

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


def check_message(text: str) -> None:
    """Raise `json.JSONDecodeError` for a client's text message that is too long, or holds
    too many JSON values, to be parsed on the event loop."""
    if len(text) > MAX_TEXT_FRAME_CHARS:
        raise json.JSONDecodeError(f"longer than {MAX_TEXT_FRAME_CHARS} characters", "", 0)
    if text.count(",") + text.count("[") + text.count("{") > MAX_MESSAGE_JSON_VALUES:
        raise json.JSONDecodeError(f"more than {MAX_MESSAGE_JSON_VALUES} JSON values", "", 0)


def load_message(text: str) -> Any:
    """`json.loads` of a client's text message, within `check_message`'s bounds."""
    check_message(text)
    return json.loads(text)


def render_native(message: Event | dict) -> dict:
    return message if isinstance(message, dict) else to_dict(message)


def new_recognizer(
    state: ServiceState, options: StreamingOptions, outbox: Outbox, owner: Any = None
) -> StreamingRecognizer:
    """A recognizer on the process scheduler whose events go straight to the socket (as
    `Owned` by `owner`, when given)."""
    events = outbox.queue if owner is None else OwnedEvents(outbox, owner)
    return StreamingRecognizer(state.scheduler, options, state.metrics.streams, events=events)


async def accept(
    websocket: WebSocket, state: ServiceState, subprotocol: str | None = None
) -> Slot | None:
    """Accept the socket, authenticate the caller and take one of this process's stream slots
    and one of their tenant's. A refused caller gets an error event, then close code 4401 (not
    authenticated) or 4429 (over a limit) with the reason: accepting first lets the client read
    why."""
    await websocket.accept(subprotocol=subprotocol)
    try:
        principal = await identify(websocket, state.config.authenticate)
        here = state.streams.take()
        try:
            tenant = state.quotas.stream(principal)
        except TooManyRequests:
            here.release()
            raise
        return Slot(tenant.release, here.release)
    except (Unauthorized, TooManyRequests) as exc:
        close_code = UNAUTHORIZED_CLOSE if isinstance(exc, Unauthorized) else RATE_LIMITED_CLOSE
        with contextlib.suppress(Exception):
            await websocket.send_text(
                json.dumps({"type": "error", "code": exc.code, "message": exc.reason})
            )
        await close_quietly(websocket, close_code, exc.reason[:REASON_BYTES])
        return None


class FrameReader:
    """Reads a socket's messages on a task of its own, ahead of the stream's handler.

    A recognizer's `push` waits while its stream's finals pile up (backpressure). If the
    handler read the socket itself, the server would stop reading it meanwhile, and with it
    the client's answers to keepalive pings: after 20 s uvicorn closes the connection as dead
    and every final still pending is lost. Read ahead instead, up to `max_bytes` of
    messages; only beyond that does the socket wait (TCP carries the backpressure on).
    `answer(text)` may handle a text message at once (True) instead of queueing it.
    """

    def __init__(
        self,
        websocket: WebSocket,
        answer: Callable[[str], bool] | None = None,
        max_bytes: int = MAX_BACKLOG_BYTES,
    ) -> None:
        self._websocket = websocket
        self._answer = answer
        self._max_bytes = max_bytes
        self._queue: deque[tuple[dict | None, int]] = deque()
        self._bytes = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def next(self) -> dict | None:
        """The next message (`bytes` or `text`), or None once the client has gone."""
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        message, size = self._queue[0]
        if message is not None:  # the end stays in the queue for later calls
            self._queue.popleft()
            self._bytes -= size
            self._room.set()
        return message

    def cancel(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        try:
            while (message := await receive_frame(self._websocket)) is not None:
                text = message.get("text")
                if text is not None and self._answer is not None and self._answer(text):
                    continue
                while self._bytes >= self._max_bytes:
                    self._room.clear()
                    await self._room.wait()
                size = len(message.get("bytes") or text or "")
                self._queue.append((message, size))
                self._bytes += size
                self._arrived.set()
        finally:
            self._queue.append((None, 0))
            self._arrived.set()


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
