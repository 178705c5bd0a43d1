"""SIP messages as the front needs them (RFC 3261 §7): parsed only as far as routing goes,
headers kept in order and byte for byte (latin-1 both ways), so what the front forwards is what
it received plus its own changes."""

import re
import secrets
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 16_384

COMPACT = {
    "i": "call-id",
    "v": "via",
    "f": "from",
    "t": "to",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
}
LIST_HEADERS = frozenset({"via", "route", "record-route"})
"""Headers whose comma-separated values the front takes apart."""

_REQUEST = re.compile(r"([A-Za-z]+) (\S+) SIP/2\.0")
_STATUS = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?")
_SENT_BY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:;\[\]]+)(?::([0-9]{1,5}))?")
_URI_HOST = re.compile(
    r"^sips?:(?:[^@;?>]*@)?(\[[0-9A-Fa-f:.]+\]|[^:;?>]+)(?::([0-9]{1,5}))?", re.I
)


class BadMessage(ValueError):
    """Input that is not a SIP message the front can route (answered 400 where it can be)."""


def number(value: str | None, limit: int | None = None) -> int | None:
    """An ASCII decimal number (`str.isdigit` also takes other scripts' digits, and `int` then
    raises), at most `limit`; None for anything else."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 10 or not (value.isascii() and value.isdigit()):
        return None
    parsed = int(value)
    return parsed if limit is None or parsed <= limit else None


def port_number(value: str | None) -> int | None:
    port = number(value, 65535)
    return port if port else None


def canonical(name: str) -> str:
    name = name.strip().lower()
    return COMPACT.get(name, name)


def split_list(value: str) -> list[str]:
    """`<sip:a>, <sip:b;lr>` -> two values: commas inside quotes or <...> do not split."""
    parts, start, quoted, angle = [], 0, False, False
    for i, char in enumerate(value):
        if char == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char in "<>":
            angle = char == "<"
        elif char == "," and not quoted and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [part for part in parts if part]


def split_first(value: str) -> tuple[str, str]:
    """The first value of a list and the rest of it, unsplit: one pass over the first value
    only, so popping values one by one stays linear in the header's length."""
    start, quoted, angle = 0, False, False
    for i, char in enumerate(value):
        if char == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char in "<>":
            angle = char == "<"
        elif char == "," and not quoted and not angle:
            head = value[start:i].strip()
            if head:
                return head, value[i + 1 :].strip()
            start = i + 1
    return value[start:].strip(), ""


@dataclass
class Message:
    first: str
    headers: list[list[str]]
    """[name as written, value] pairs, in order."""
    body: bytes = b""

    @property
    def method(self) -> str:
        """The request's method ('' for a response)."""
        match = _REQUEST.fullmatch(self.first)
        return match.group(1).upper() if match else ""

    @property
    def uri(self) -> str:
        match = _REQUEST.fullmatch(self.first)
        return match.group(2) if match else ""

    @property
    def status(self) -> int:
        """The response's status code (0 for a request)."""
        match = _STATUS.fullmatch(self.first)
        return int(match.group(1)) if match else 0

    @property
    def is_request(self) -> bool:
        return self.status == 0

    def get(self, name: str) -> str | None:
        """The first value of a header (the whole line for a single-valued one)."""
        name = canonical(name)
        for header, value in self.headers:
            if canonical(header) == name:
                return split_first(value)[0] if name in LIST_HEADERS and value else value
        return None

    def values(self, name: str) -> list[str]:
        """Every value of a header, over all its lines."""
        name = canonical(name)
        found: list[str] = []
        for header, value in self.headers:
            if canonical(header) == name:
                found.extend(split_list(value) if name in LIST_HEADERS else [value])
        return found

    def remove(self, name: str) -> None:
        name = canonical(name)
        self.headers = [h for h in self.headers if canonical(h[0]) != name]

    def prepend(self, name: str, value: str) -> None:
        """Put a header value on top of that header's values (or of all headers)."""
        key = canonical(name)
        at = next((i for i, h in enumerate(self.headers) if canonical(h[0]) == key), 0)
        self.headers.insert(at, [name, value])

    def pop(self, name: str) -> str | None:
        """Take the first value of a list header (Via, Route) away."""
        key = canonical(name)
        for i, (header, value) in enumerate(self.headers):
            if canonical(header) == key:
                first, rest = split_first(value)
                if rest:
                    self.headers[i][1] = rest
                else:
                    del self.headers[i]
                return first
        return None

    def drop_first(self, name: str, count: int) -> None:
        """Take the first `count` values of a list header away, in one pass."""
        if count <= 0:
            return
        key = canonical(name)
        kept: list[list[str]] = []
        for header, value in self.headers:
            if count > 0 and canonical(header) == key:
                values = split_list(value)
                dropped, count = min(count, len(values)), count - min(count, len(values))
                if values[dropped:]:
                    kept.append([header, ", ".join(values[dropped:])])
                continue
            kept.append([header, value])
        self.headers = kept

    def replace(self, name: str, value: str) -> None:
        """Change the first value of a header, keeping its place."""
        key = canonical(name)
        for i, (header, old) in enumerate(self.headers):
            if canonical(header) == key:
                rest = split_first(old)[1] if key in LIST_HEADERS else ""
                self.headers[i][1] = f"{value}, {rest}" if rest else value
                return
        self.headers.append([name, value])

    def encode(self) -> bytes:
        lines = [self.first]
        for name, value in self.headers:
            if canonical(name) != "content-length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def parse(data: bytes, lenient: bool = False) -> Message:
    """One whole message (a UDP datagram, or a head and body cut from a TCP stream).
    `lenient`: skip what is malformed, to find enough of a bad request to answer it."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if len(head) > MAX_HEADER_BYTES:
        raise BadMessage("headers too long")
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    first = lines[0].strip()
    if not (_REQUEST.fullmatch(first) or _STATUS.fullmatch(first)):
        raise BadMessage(f"not a SIP request or status line: {first[:60]!r}")
    headers: list[list[str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded onto the previous line
            headers[-1][1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[\w.!%*+`'~-]+", name.strip()):
            if lenient:
                continue
            raise BadMessage(f"malformed header line: {line[:60]!r}")
        headers.append([name.strip(), value.strip()])
    message = Message(first, headers)
    length = message.get("content-length")
    if length is not None and not lenient:
        size = number(length, MAX_BODY_BYTES)
        if size is None:
            raise BadMessage("bad Content-Length")
        if len(body) < size:
            raise BadMessage("body shorter than its Content-Length")
        body = body[:size]
    message.body = body
    return message


def content_length(head: bytes) -> int:
    """The body length a stream message's head announces (required on TCP, RFC 3261 §18.3)."""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if canonical(name) == "content-length":
            size = number(value, MAX_BODY_BYTES)
            if size is None:
                raise BadMessage("bad Content-Length")
            return size
    raise BadMessage("no Content-Length on a stream transport")


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "Via":
        protocol, _, rest = value.strip().partition(" ")
        parts = protocol.replace(" ", "").split("/")
        if len(parts) != 3 or parts[0].upper() != "SIP":
            raise BadMessage(f"bad Via: {value[:60]!r}")
        sent_by, *params = rest.strip().split(";")
        match = _SENT_BY.fullmatch(sent_by.strip())
        if not match:
            raise BadMessage(f"bad Via sent-by: {value[:60]!r}")
        port = port_number(match.group(2)) if match.group(2) else None
        if match.group(2) and port is None:
            raise BadMessage(f"bad Via port: {value[:60]!r}")
        via = cls(parts[2].upper(), match.group(1), port)
        for param in params:
            name, eq, val = param.strip().partition("=")
            if name:
                via.params[name.lower()] = val if eq else None
        return via

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"SIP/2.0/{self.transport} {self.host}{port}{params}"

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""

    def reply_to(self) -> tuple[str, int]:
        """Where a response to this hop goes over UDP (RFC 3261 §18.2.2, RFC 3581). Only for
        a Via the front has annotated itself (`received`, `rport`: the packet's real source):
        what a caller wrote there is replaced on arrival."""
        host = self.params.get("received") or self.host.strip("[]")
        rport = port_number(self.params.get("rport"))
        return host, rport or self.port or 5060


def uri_of(value: str) -> str:
    """The URI of a name-addr (`"Bob" <sip:b@h>;tag=1`) or an addr-spec (`sip:b@h;tag=1`)."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0].strip()
    return value.split(";", 1)[0].strip()


def uri_target(uri: str) -> tuple[str, int, str]:
    """host, port and transport a request to `uri` goes to (no DNS: hosts are addresses)."""
    match = _URI_HOST.match(uri)
    if not match:
        raise BadMessage(f"unroutable URI: {uri[:60]!r}")
    transport = re.search(r";transport=(\w+)", uri, re.I)
    kind = transport.group(1).upper() if transport else "UDP"
    port = port_number(match.group(2)) if match.group(2) else 5060
    if port is None:
        raise BadMessage(f"bad port in URI: {uri[:60]!r}")
    return match.group(1).strip("[]"), port, kind


def tag_of(value: str | None) -> str:
    match = re.search(r";\s*tag=([^;>\s]+)", value or "", re.I)
    return match.group(1) if match else ""


def cseq_of(message: Message) -> tuple[int, str]:
    sequence, _, method = (message.get("cseq") or "").partition(" ")
    parsed = number(sequence, 2**31 - 1)
    if parsed is None or not method.strip():
        raise BadMessage("bad CSeq")
    return parsed, method.strip().upper()


def new_tag() -> str:
    return secrets.token_hex(6)


def response(
    request: Message, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()
) -> Message:
    """A response made by the front itself (RFC 3261 §8.2.6)."""
    headers = [[name, value] for name, value in request.headers if canonical(name) == "via"]
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.get(name)
        if value is not None:
            if name == "To" and status > 100 and not tag_of(value):
                value += f";tag={new_tag()}"
            headers.append([name, value])
    headers += [[name, value] for name, value in extra]
    return Message(f"SIP/2.0 {status} {reason_phrase(reason)}", headers)


def reason_phrase(text: str) -> str:
    """Printable ASCII on one line, short: safe in a status line or a quoted string."""
    return re.sub(r"[^\x20-\x7e]|\"", "?", text)[:120]
