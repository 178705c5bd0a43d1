"""The JSON control messages of Deepgram's sockets (`KeepAlive`, `Finalize`, `CloseStream`,
`Configure`, ...), bounded before they are parsed; each socket renders a refusal in its own
error shape and goes on."""

import json

IDLE_TIMEOUT_S = 10.0
"""Deepgram closes a stream that sent neither audio nor `KeepAlive` for 10 s (`NET-0001`)."""
MAX_CONTROL_CHARS = 4096
"""Control messages are a few dozen bytes (a `Configure` with keyterms a few KB at most)."""


class BadControl(ValueError):
    """A control message that is too large, not JSON, or of an unknown type."""


def read_control(text: str, known: tuple[str, ...]) -> dict:
    """The message as a dict with a known `type`; raises `BadControl` with the reason."""
    if len(text) > MAX_CONTROL_CHARS:
        raise BadControl(f"control message over {MAX_CONTROL_CHARS} characters; ignored")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadControl(f"not JSON: {exc.msg}") from None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in known:
        raise BadControl(f"unknown message type {str(kind)[:40]!r}; expected {', '.join(known)}")
    return message
