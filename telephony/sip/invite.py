"""What an INVITE asks for: tenant, credentials, leg and shared call id, read from the raw
request text (pjsua2 hands over the whole message; its header API needs pjsip pointers), and
who placed it, as the SIP front says."""

import re
from dataclasses import dataclass

TENANT_HEADER = "x-callscribe-tenant"
KEY_HEADER = "x-callscribe-key"
LEG_HEADER = "x-callscribe-leg"
CALL_ID_HEADER = "x-callscribe-call-id"
SOURCE_HEADER = "X-Callscribe-Source"
"""The caller's IP address, put in by the SIP front (which strips any a caller sends)."""

LEGS = ("mixed", "agent", "customer")

_REQUEST_LINE = re.compile(r"^INVITE\s+(\S+)\s+SIP/2\.0", re.IGNORECASE)
_USER = re.compile(r"^(?:sips?|tel):([^@;?>]+)@", re.IGNORECASE)


@dataclass(frozen=True)
class Invite:
    tenant_id: str | None
    key: str | None
    leg: str
    call_id: str | None
    """The caller's X-Callscribe-Call-Id: INVITEs sharing it are legs of one call (checked by
    the call hub, in the serve process: a bad one is answered 400)."""
    source_ip: str
    dialog: str = ""
    """The SIP Call-ID: the front forgets the dialog when its call is released."""


class BadInvite(ValueError):
    """An INVITE that names an unknown leg (answered 400)."""


def parse_invite(message: str) -> Invite:
    """`message` is `SipRxData.wholeMsg` of an INVITE that came through the SIP front."""
    head = message.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    lines = head.split("\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    tenant = headers.get(TENANT_HEADER)
    request = _REQUEST_LINE.match(lines[0] if lines else "")
    if not tenant and request and (user := _USER.match(request.group(1))):
        tenant = user.group(1)
    leg = (headers.get(LEG_HEADER) or "mixed").lower()
    if leg not in LEGS:
        raise BadInvite(f"X-Callscribe-Leg {leg!r}: use one of {', '.join(LEGS)}")
    return Invite(
        tenant or None,
        headers.get(KEY_HEADER) or None,
        leg,
        headers.get(CALL_ID_HEADER) or None,
        headers.get(SOURCE_HEADER.lower(), ""),
        headers.get("call-id") or headers.get("i") or "",
    )
