"""Asterisk AudioSocket: a TCP server on `CALLSCRIBE_AUDIOSOCKET_PORT` (off when unset), bound
to `CALLSCRIBE_AUDIOSOCKET_HOST` (127.0.0.1).

Each message is 1 byte kind, 2 bytes big-endian payload length, then the payload: `0x01` the
call's UUID (16 bytes, the first message), `0x10` audio (signed linear 16-bit little-endian,
8 kHz mono), `0x03` a DTMF digit, `0x00` hang-up, `0xff` an error. AudioSocket carries no
credentials, so the tenant first reserves the UUID (`POST
/v1/media-streams/audiosocket/reservations`, see `reservations.py`); a connection whose UUID
matches a live reservation becomes that tenant's call (source `audiosocket`, leg `mixed`).
Any other UUID is answered with a hang-up and the socket is closed. A peer that vanishes,
goes silent or breaks the framing ends the call, whose last final is still stored.
"""

import asyncio
import contextlib
import logging
import uuid

from asr_core.audio import RawFormat
from common.errors import TooManyRequests
from telephony.adapters.common import end_call
from telephony.adapters.reservations import Reservations
from telephony.hub import CallHub
from telephony.refusal import CallRefused
from telephony.session import CallSession

logger = logging.getLogger(__name__)

SOURCE = "audiosocket"
LEG = "mixed"
KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
MAX_PAYLOAD_BYTES = 16_000
"""One second of 8 kHz audio; Asterisk sends 320 bytes (20 ms) a message."""
UUID_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0
"""A call whose peer sends nothing this long is over (Asterisk sends audio every 20 ms)."""
ERROR_PROTOCOL = b"\x02"
"""The payload of the error message sent before closing a connection that broke the framing."""


class ProtocolError(Exception):
    pass


def message(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


async def read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One message, however the bytes are split on the wire."""
    header = await reader.readexactly(3)
    length = int.from_bytes(header[1:3], "big")
    if length > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"message of {length} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return header[0], await reader.readexactly(length)


class AudioSocketServer:
    """The app's background service (`start`/`stop` with the app) feeding calls to the hub."""

    def __init__(
        self, hub: CallHub, reservations: Reservations, host: str, port: int | None
    ) -> None:
        self.hub = hub
        self.reservations = reservations
        self.host = host
        self.port = port
        """The configured port; after `start`, the bound one (0 picks a free port)."""
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task, CallSession | None] = {}

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self.port is None:
            return
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("AudioSocket server listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task, session in list(self._connections.items()):
            if session is not None:
                await session.abort("the gateway is shutting down")
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections[task] = None
        peer = writer.get_extra_info("peername")
        session: CallSession | None = None
        reason = "hangup"
        try:
            session = await self._open(reader, writer, peer)
            if session is None:
                return
            self._connections[task] = session
            reason = await self._relay(reader, session)
        except ProtocolError as exc:
            logger.warning("AudioSocket protocol error", extra={"peer": peer, "reason": str(exc)})
            reason = "protocol_error"
            with contextlib.suppress(Exception):
                writer.write(message(KIND_ERROR, ERROR_PROTOCOL))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            reason = "disconnected"
        except TimeoutError:
            logger.warning("AudioSocket peer went silent", extra={"peer": peer})
            reason = "timeout"
        finally:
            try:
                if session is not None:
                    await end_call(session, reason)
            finally:
                self._connections.pop(task, None)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _open(self, reader, writer, peer) -> CallSession | None:
        """The call the first message's UUID was reserved for, or None (hung up)."""
        kind, payload = await asyncio.wait_for(read_message(reader), UUID_TIMEOUT_S)
        if kind != KIND_UUID or len(payload) != 16:
            raise ProtocolError(f"the first message must be a 16-byte UUID, not kind {kind:#x}")
        call_id = str(uuid.UUID(bytes=payload))
        reservation = self.reservations.take(call_id)
        if reservation is None:
            logger.warning(
                "AudioSocket call refused: unknown or expired UUID",
                extra={"call": call_id, "peer": peer},
            )
            await _hang_up(writer)
            return None
        try:
            session = await self.hub.open_call(
                reservation.tenant_id, SOURCE, call_id=call_id, language=reservation.language
            )
        except (CallRefused, TooManyRequests) as exc:
            logger.warning("AudioSocket call refused", extra={"call": call_id, "reason": str(exc)})
            await _hang_up(writer)
            return None
        session.add_leg(LEG, RawFormat("pcm_s16le", 8000))
        return session

    async def _relay(self, reader: asyncio.StreamReader, session: CallSession) -> str:
        """Feed audio until the peer hangs up (or reports an error): the end's reason."""
        while True:
            kind, payload = await asyncio.wait_for(read_message(reader), IDLE_TIMEOUT_S)
            if kind == KIND_AUDIO:
                session.feed(LEG, payload)
            elif kind == KIND_HANGUP:
                return "hangup"
            elif kind == KIND_DTMF:
                digit = payload[:1].decode("ascii", "replace")
                self.hub.listeners.publish(session.id, {"type": "dtmf", "leg": LEG, "digit": digit})
            elif kind == KIND_ERROR:
                logger.warning(
                    "AudioSocket peer reported an error",
                    extra={"call": session.id, "code": payload.hex()},
                )
                return "peer_error"
            else:
                logger.debug("AudioSocket message ignored", extra={"kind": kind})


async def _hang_up(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.write(message(KIND_HANGUP))
        await writer.drain()
