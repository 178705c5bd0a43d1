"""The link between the serve process and one user-agent process: a socket pair carrying
messages of kind (1 byte), handle (u32), payload length (u32), payload. A handle names one
dialog's admission and, once admitted, its call; control payloads are JSON, frames raw PCM."""

import asyncio
import json
import socket
import struct

HEADER = struct.Struct("!cII")
MAX_PAYLOAD = 1 << 20

# user agent -> serve process
READY = b"R"
"""Started: {"port": its loopback SIP port}."""
ADMIT = b"A"
"""An INVITE to admit: the `Invite`'s fields."""
FRAME = b"F"
"""20 ms of the call's audio, 16 kHz s16le mono."""
RELEASE = b"E"
"""The dialog ended: the reason, UTF-8."""
CANCEL = b"X"
"""The user agent stopped waiting for an admission (it answered 503 or the caller left)."""

# serve process -> user agent
ADMITTED = b"a"
"""{"id": the call's id}."""
REFUSED = b"r"
"""{"status", "reason", "retry_after_s"}."""
STOP = b"s"
"""Hang up every call and exit."""


class LinkError(ConnectionError):
    """The other side sent something that is not a message: the link is closed."""


def pack(kind: bytes, handle: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, handle, len(payload)) + payload


def pack_json(kind: bytes, handle: int, value: dict) -> bytes:
    return pack(kind, handle, json.dumps(value).encode())


def _header(data: bytes) -> tuple[bytes, int, int]:
    kind, handle, length = HEADER.unpack(data)
    if length > MAX_PAYLOAD:
        raise LinkError(f"a {length}-byte message")
    return kind, handle, length


def read(sock: socket.socket) -> tuple[bytes, int, bytes] | None:
    """The next message (blocking), or None once the other side has closed."""
    head = _read_exactly(sock, HEADER.size)
    if head is None:
        return None
    kind, handle, length = _header(head)
    payload = _read_exactly(sock, length) if length else b""
    return None if payload is None else (kind, handle, payload)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


async def receive(reader: asyncio.StreamReader) -> tuple[bytes, int, bytes] | None:
    """The next message, or None once the other side has closed."""
    try:
        kind, handle, length = _header(await reader.readexactly(HEADER.size))
        return kind, handle, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
