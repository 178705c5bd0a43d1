"""One leg's stream to one ASR core over the native `/v1/stream` protocol: the gateway's
service key and the call's tenant in the handshake, the stream's config, then binary PCM16
frames out and JSON events back."""

import json
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

SERVICE_KEY_HEADER = "authorization"
TENANT_HEADER = "x-callscribe-tenant"
"""Names the tenant a gateway streams for; only the ASR service key may use it."""
CALL_HEADER = "x-callscribe-call"
"""The call and leg, for the core's logs."""
CLOSE_REASONS = {4429: "busy", 4401: "unauthorized", 4400: "invalid"}
"""A core's close codes when it refuses a stream."""
MAX_EVENT_BYTES = 1_000_000
"""The largest event a core sends is a final with its words: far below this."""


class CoreRefused(Exception):
    """A core did not take the stream: `reason` is `busy` (4429, HTTP 503), `unauthorized`
    (4401: a wrong service key), `invalid` (4400) or `unreachable`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class StreamRequest:
    """What every core a leg streams to is asked for."""

    tenant_id: str
    call_id: str
    leg: str
    language: str | None
    hotwords: str | None
    """The call's own phrases (the core adds the tenant's lists itself)."""

    def config(self) -> dict:
        message: dict = {"type": "start", "encoding": "pcm_s16le", "sample_rate": 16000}
        message["language"] = self.language or "auto"
        if self.hotwords:
            message["hotwords"] = self.hotwords
        return message


class CoreStream:
    """An open stream; `events()` yields the core's JSON events until the socket closes."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    @classmethod
    async def open(
        cls, url: str, service_key: str, request: StreamRequest, timeout_s: float
    ) -> "CoreStream":
        """Connected and `ready`; raises `CoreRefused`."""
        headers = {
            SERVICE_KEY_HEADER: f"Bearer {service_key}",
            TENANT_HEADER: request.tenant_id,
            CALL_HEADER: f"{request.call_id}/{request.leg}",
        }
        try:
            socket = await connect(
                f"{url}/v1/stream",
                additional_headers=headers,
                open_timeout=timeout_s,
                ping_interval=5,
                ping_timeout=10,
                close_timeout=2,
                max_size=MAX_EVENT_BYTES,
                compression=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = "busy" if status in (429, 503) else "unreachable"
            raise CoreRefused(reason, f"HTTP {status} from {url}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise CoreRefused("unreachable", f"{url}: {exc}") from None
        stream = cls(socket)
        try:
            await socket.send(json.dumps(request.config()))
            first = json.loads(await socket.recv())
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            raise CoreRefused(CLOSE_REASONS.get(code, "unreachable"), f"{url}: {exc}") from None
        except (OSError, ValueError) as exc:
            await socket.close()
            raise CoreRefused("unreachable", f"{url}: {exc}") from None
        if not isinstance(first, dict) or first.get("type") != "ready":
            await socket.close()
            raise _refusal(first, url)
        return stream

    async def send_audio(self, pcm: bytes) -> None:
        await self.socket.send(pcm)

    async def send(self, message: dict) -> None:
        await self.socket.send(json.dumps(message))

    async def events(self):
        """The core's events as dicts; ends when the socket closes (cleanly or not)."""
        try:
            async for message in self.socket:
                if isinstance(message, str):
                    event = json.loads(message)
                    if isinstance(event, dict):
                        yield event
        except ConnectionClosed:
            return

    async def close(self) -> None:
        await self.socket.close()

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        self.socket.transport.abort()


def _refusal(first: object, url: str) -> CoreRefused:
    code = first.get("code") if isinstance(first, dict) else None
    detail = f"{url}: {first.get('message') if isinstance(first, dict) else first}"
    if code == "rate_limited":
        return CoreRefused("busy", detail)
    if code == "unauthorized":
        return CoreRefused("unauthorized", detail)
    return CoreRefused("invalid", detail)
