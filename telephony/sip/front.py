"""The SIP front: the gateway's public SIP port (UDP and TCP), in the serve process.

The pjsua2 wheel answers at most 4 calls per process, so the gateway runs several user-agent
processes (`ua_pool`), each on a loopback port, and this front is a proxy before them (RFC 3261
§16, stateless for transactions, stateful only for which process holds a dialog):

- a new INVITE goes to the process with the fewest dialogs, or is answered 503 with Retry-After
  when all are full; every later message of the dialog (ACK, CANCEL, BYE, re-INVITE, responses)
  follows its Call-ID to the same process;
- it puts its Via on every request it forwards (the branch derived from the sender's, so
  retransmissions, CANCEL and ACK match the transaction) and takes it off the responses; it
  Record-Routes twice, its loopback address for the user agent and its public one for the
  caller, so in-dialog requests of either side pass it, and pops its own Routes;
- it replaces any X-Callscribe-Source a caller sent with the caller's real address, which the
  user agents believe only from the front's loopback address (the allow-list needs it);
- when a process is lost, the front hangs up its callers (BYE) or refuses their INVITEs (503).

RTP never passes here: it flows between the caller and the process (whose SDP names
`SipConfig.host`). Bad input gets a 400 where a response can be routed, and is dropped where
not; nothing a caller sends can stop the front or touch another caller's dialog.
"""

import asyncio
import copy
import hashlib
import logging
import secrets
import time

from telephony.sip.config import PJSUA_MAX_CALLS, SipConfig
from telephony.sip.dialogs import Dialog, Dialogs, Flow
from telephony.sip.invite import SOURCE_HEADER
from telephony.sip.message import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    BadMessage,
    Message,
    Via,
    content_length,
    cseq_of,
    number,
    parse,
    reason_phrase,
    response,
    tag_of,
    uri_of,
    uri_target,
)

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_FORWARDED_BYTES = 4000
"""pjsip's PJSIP_MAX_PKT_LEN: a user agent drops anything longer unread."""
MAX_TCP_BUFFER = 1 << 20
"""A TCP peer that reads nothing while this much waits for it is cut off."""
RETRY_AFTER_S = 5
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
SDP = "application/sdp"
BRANCH_PREFIX = "z9hG4bKcs"
CONNECTION_PARAM = "cs-conn"
"""On the front's Via towards a user agent: the caller's TCP connection, for the response."""
AUTH_REFUSALS = frozenset({401, 403, 407})
"""A user agent's answers to a caller it did not admit: each counts as a failed request."""
SWEEP_S = 5.0
T1_S = 0.5
T2_S = 4.0


class FailureLimit:
    """Failed requests per source address in a fixed one-minute window: a source over the
    limit is ignored until its window ends (no parsing, no answer to reflect)."""

    WINDOW_S = 60.0
    MAX_SOURCES = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._counts: dict[str, tuple[float, int]] = {}

    def blocked(self, source: str, now: float) -> bool:
        started, count = self._counts.get(source, (now, 0))
        if now - started >= self.WINDOW_S:
            self._counts.pop(source, None)
            return False
        return count >= self.per_minute

    def failed(self, source: str, now: float) -> None:
        started, count = self._counts.get(source, (now, 0))
        if now - started >= self.WINDOW_S:
            started, count = now, 0
        if source not in self._counts and len(self._counts) >= self.MAX_SOURCES:
            self._counts.pop(next(iter(self._counts)))  # the oldest source seen
        self._counts[source] = (started, count + 1)
        if count + 1 == self.per_minute:
            logger.warning(
                "SIP front: ignoring %s for the rest of the minute: too many failed requests",
                source,
            )


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receive) -> None:
        self.receive = receive

    def datagram_received(self, data: bytes, addr) -> None:
        self.receive(data, addr[:2])

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: the peer is gone
        logger.debug("SIP front: %s", exc)


class SipFront:
    def __init__(self, config: SipConfig) -> None:
        self.config = config
        self.dialogs = Dialogs(config.agents, PJSUA_MAX_CALLS)
        self.draining = False
        """Set while the gateway stops: new INVITEs get 503, dialogs still route."""
        self.host = config.host
        self.udp_port = self.tcp_port = self.internal_port = 0
        self._agents: dict[int, tuple[str, int]] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._internal: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: dict[int, asyncio.StreamWriter] = {}
        self._next_connection = 0
        self._tasks: set[asyncio.Task] = set()
        self._byes: dict[str, asyncio.Task] = {}
        self.failures = FailureLimit(config.max_failures_per_minute)

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._from_public), local_addr=(self.host, self.config.port)
        )
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        self._internal, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._from_internal), local_addr=(LOOPBACK, 0)
        )
        self.internal_port = self._internal.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(
            self._accept,
            self.host,
            self.config.tcp_port or self.udp_port,
            limit=MAX_HEADER_BYTES + MAX_BODY_BYTES,
        )
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        self._spawn(self._sweep())

    async def stop(self) -> None:
        for task in [*self._tasks, *self._byes.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._byes.values(), return_exceptions=True)
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._connections.values()):
            writer.close()
        for transport in (self._udp, self._internal):
            if transport is not None:
                transport.close()

    @property
    def relay(self) -> str:
        """The address the user agents get the front's requests from (`ip:port`)."""
        return f"{LOOPBACK}:{self.internal_port}"

    def agent_up(self, agent: int, port: int) -> None:
        self._agents[agent] = (LOOPBACK, port)

    def agent_down(self, agent: int) -> None:
        """Process `agent` is gone: its callers are hung up, its pending INVITEs refused."""
        self._agents.pop(agent, None)
        for dialog in self.dialogs.lose(agent):
            if dialog.answered_to is None:
                retry = (("Retry-After", str(RETRY_AFTER_S)),)
                self._reply(dialog.invite, dialog.caller, 503, "user agent restarted", retry)
            else:
                self._hang_up(dialog)

    def dialog_ended(self, call_id: str) -> None:
        """The user agent says the dialog is over (it may not have passed here: a BYE lost)."""
        self.dialogs.end(call_id, time.monotonic())

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            self.dialogs.sweep(time.monotonic())

    # -- transports -----------------------------------------------------------------------------

    def _from_public(self, data: bytes, address: tuple[str, int]) -> None:
        self._receive(data, Flow("UDP", address))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._read(reader, writer, self._register(writer))

    def _register(self, writer: asyncio.StreamWriter) -> int:
        self._next_connection += 1
        self._connections[self._next_connection] = writer
        return self._next_connection

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> None:
        """One TCP connection's messages, framed by Content-Length (RFC 3261 §18.3)."""
        flow = Flow("TCP", writer.get_extra_info("peername")[:2], connection)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).lstrip(b"\r\n")
                if not head:  # a CRLF keep-alive ping (RFC 5626): pong
                    writer.write(b"\r\n")
                    continue
                body = await reader.readexactly(content_length(head))
                self._receive(head + body, flow)
        except BadMessage as exc:  # the stream cannot be framed any more
            logger.info("SIP front: TCP stream from %s closed: %s", flow.address, exc)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._connections.pop(connection, None)
            writer.close()

    async def _connect(self, host: str, port: int) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        connection = self._register(writer)
        self._spawn(self._read(reader, writer, connection))
        return connection

    def _send(self, message: Message, flow: Flow) -> None:
        """Over a caller's TCP connection, from the public UDP port, or (LOOP) to a user agent."""
        data = message.encode()
        if flow.transport == "LOOP":
            if self._internal is not None:
                self._internal.sendto(data, flow.address)
        elif flow.transport == "TCP":
            writer = self._connections.get(flow.connection or 0)
            if writer is None or writer.is_closing():
                logger.info("SIP front: TCP connection to %s is gone", flow.address)
            elif writer.transport.get_write_buffer_size() > MAX_TCP_BUFFER:
                writer.close()
            else:
                writer.write(data)
        elif self._udp is not None:
            self._udp.sendto(data, flow.address)

    def _to_agent(self, message: Message, address: tuple[str, int]) -> bool:
        data = message.encode()
        if len(data) > MAX_FORWARDED_BYTES or self._internal is None:
            return False
        self._internal.sendto(data, address)
        return True

    # -- messages -------------------------------------------------------------------------------

    def _receive(self, data: bytes, flow: Flow) -> None:
        """A message from a caller. Never raises: bad input is answered or dropped."""
        if not data.strip():
            return
        if self.failures.blocked(flow.address[0], time.monotonic()):
            return
        try:
            message = parse(data)
        except BadMessage as exc:
            self.failures.failed(flow.address[0], time.monotonic())
            self._bad(data, flow, str(exc))
            return
        try:
            if message.is_request:
                self._request_from_caller(message, flow)
            else:
                self._response_from_caller(message)
        except BadMessage as exc:
            self.failures.failed(flow.address[0], time.monotonic())
            if message.is_request and message.method != "ACK":
                self._reply(message, flow, 400, str(exc))
            else:
                logger.debug("SIP front: response from %s dropped: %s", flow.address, exc)
        except Exception:
            logger.exception("SIP front: a message from %s failed", flow.address)

    def _bad(self, data: bytes, flow: Flow, error: str) -> None:
        """Unparseable: answer 400 if enough of a request is readable to route a response."""
        try:
            message = parse(data, lenient=True)
            if message.is_request and message.method != "ACK":
                _check(message)
                self._reply(message, flow, 400, error)
                return
        except (BadMessage, ValueError):
            pass
        logger.debug("SIP front: unreadable message from %s dropped: %s", flow.address, error)

    def _request_from_caller(self, request: Message, flow: Flow) -> None:
        incoming = _check(request)
        _annotate(request, incoming, flow)
        call_id, method = request.get("call-id") or "", request.method
        self._pop_own_routes(request)
        request.remove(SOURCE_HEADER)  # only the front says where a caller is
        dialog = self.dialogs.find(call_id)
        if dialog is not None and _reused(dialog, request, incoming):
            dialog = None
        if dialog is None:
            if method == "ACK":
                return
            if tag_of(request.get("to")) or method == "CANCEL":
                self._reply(request, flow, 481, "Call/Transaction Does Not Exist")
            elif method == "OPTIONS":
                self._reply(request, flow, 200, "OK", (("Allow", ALLOW), ("Accept", SDP)))
            elif method != "INVITE":
                self._reply(request, flow, 405, "Method Not Allowed", (("Allow", ALLOW),))
            elif self._hop(request, flow):
                self._new_dialog(request, incoming, flow)
            return
        if self._hop(request, flow):
            request.prepend("Via", str(self._via_to_agent(incoming, request, flow)))
            if not self._to_agent(request, self._agents[dialog.agent]) and method != "ACK":
                request.pop("via")
                self._reply(request, flow, 513, "Message Too Large")

    def _new_dialog(self, invite: Message, incoming: Via, flow: Flow) -> None:
        retry = (("Retry-After", str(RETRY_AFTER_S)),)
        if self.draining:
            self._reply(invite, flow, 503, "shutting down", retry)
            return
        call_id = invite.get("call-id") or ""
        now = time.monotonic()
        dialog = self.dialogs.place(call_id, flow, copy.deepcopy(invite), list(self._agents), now)
        if dialog is None:
            self._reply(invite, flow, 503, "all lines busy", retry)
            logger.info("SIP front: every user agent is full", extra={"dialogs": len(self.dialogs)})
            return
        public = f"<sip:{_hostport(self.host, self._public_port(flow))}"
        public += ";transport=tcp;lr>" if flow.transport == "TCP" else ";lr>"
        invite.prepend("Record-Route", public)
        invite.prepend("Record-Route", f"<sip:{LOOPBACK}:{self.internal_port};lr>")
        invite.headers.append([SOURCE_HEADER, flow.address[0]])
        invite.prepend("Via", str(self._via_to_agent(incoming, invite, flow)))
        if not self._to_agent(invite, self._agents[dialog.agent]):
            self.dialogs.end(call_id, now)
            self._reply(dialog.invite, flow, 513, "Message Too Large")

    def _response_from_caller(self, message: Message) -> None:
        """A response to a request the front forwarded from a user agent, or sent itself."""
        ours = Via.parse(message.pop("via") or "")
        if not ours.branch.startswith(BRANCH_PREFIX) or ours.port not in (
            self.udp_port,
            self.tcp_port,
        ):
            raise BadMessage("a response that did not pass the front")
        bye = self._byes.pop(ours.branch, None)
        if bye is not None:  # to the front's own BYE: done
            bye.cancel()
            return
        upstream = message.get("via")
        if upstream is None:
            return
        target = Via.parse(upstream).reply_to()
        if target not in self._agents.values():
            raise BadMessage("a response for no user agent of this gateway")
        _, method = cseq_of(message)
        if method == "BYE" and message.status >= 200:
            self.dialogs.end(message.get("call-id") or "", time.monotonic())
        self._to_agent(message, target)

    def _from_internal(self, data: bytes, address: tuple[str, int]) -> None:
        """A message from a user agent (any other sender on loopback is ignored)."""
        agent = next((i for i, a in self._agents.items() if a == address), None)
        if agent is None:
            logger.debug("SIP front: internal message from a stranger %s", address)
            return
        try:
            message = parse(data)
            if message.is_request:
                self._request_from_agent(message, agent, address)
            else:
                self._response_from_agent(message, agent)
        except BadMessage as exc:
            logger.warning("SIP front: message from user agent %d dropped: %s", agent, exc)
        except Exception:
            logger.exception("SIP front: a message from user agent %d failed", agent)

    def _request_from_agent(self, request: Message, agent: int, address: tuple[str, int]) -> None:
        """BYE after an RTP timeout, a codec-locking re-INVITE: to the caller."""
        flow = Flow("LOOP", address)
        incoming = _check(request)
        _annotate(request, incoming, flow)
        dialog = self.dialogs.find(request.get("call-id") or "")
        if dialog is None or dialog.agent != agent:
            if request.method != "ACK":
                self._reply(request, flow, 481, "Call/Transaction Does Not Exist")
            return
        self._pop_own_routes(request)
        if not self._hop(request, flow):
            return
        number, method = cseq_of(request)
        if method not in ("ACK", "CANCEL"):
            dialog.agent_cseq = max(dialog.agent_cseq, number)
        hop = uri_of(request.values("route")[0]) if request.values("route") else request.uri
        host, port, transport = uri_target(hop)
        caller = dialog.caller
        if caller.transport == "TCP" and caller.connection in self._connections:
            request.prepend("Via", str(self._via_to_caller("TCP", incoming, request)))
            self._send(request, caller)
        elif transport == "TCP":
            request.prepend("Via", str(self._via_to_caller("TCP", incoming, request)))
            self._spawn(self._send_new_connection(request, host, port, flow))
        else:
            request.prepend("Via", str(self._via_to_caller("UDP", incoming, request)))
            self._send(request, Flow("UDP", (host, port)))

    async def _send_new_connection(
        self, request: Message, host: str, port: int, agent: Flow
    ) -> None:
        try:
            connection = await self._connect(host, port)
        except OSError as exc:
            request.pop("via")
            self._reply(request, agent, 503, f"caller unreachable: {exc.strerror or exc}")
            return
        self._send(request, Flow("TCP", (host, port), connection))

    def _response_from_agent(self, message: Message, agent: int) -> None:
        ours = Via.parse(message.pop("via") or "")
        if not ours.branch.startswith(BRANCH_PREFIX) or ours.port != self.internal_port:
            raise BadMessage("a response that did not pass the front")
        upstream = message.get("via")
        if upstream is None:
            return
        call_id = message.get("call-id") or ""
        _, method = cseq_of(message)
        status = message.status
        dialog = self.dialogs.find(call_id)
        if dialog is not None and status in AUTH_REFUSALS:
            self.failures.failed(dialog.caller.address[0], time.monotonic())
        if dialog is not None and dialog.agent == agent:
            if method == "INVITE" and dialog.answered_to is None and status >= 200:
                if status < 300:
                    dialog.answered_to = message.get("to")
                else:  # the initial INVITE refused: no dialog
                    self.dialogs.end(call_id, time.monotonic())
            elif method == "BYE" and status >= 200:
                self.dialogs.end(call_id, time.monotonic())
        connection = ours.params.get(CONNECTION_PARAM)
        if number(connection) is not None:
            self._send(message, Flow("TCP", ("", 0), number(connection)))
        else:
            self._send(message, Flow("UDP", Via.parse(upstream).reply_to()))

    # -- the front's own requests and responses -------------------------------------------------

    def _reply(
        self,
        request: Message,
        flow: Flow,
        status: int,
        reason: str,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """The front's own answer, back where the request came from (symmetric, as RFC 3581
        has it: never to an address a Via merely claims)."""
        if status >= 300:
            logger.debug("SIP front: %d %s to %s", status, reason_phrase(reason), request.method)
        self._send(response(request, status, reason, extra), flow)

    def _hang_up(self, dialog: Dialog) -> None:
        """BYE to the caller of a dialog whose user agent is gone (RFC 3261 §15)."""
        invite = dialog.invite
        routes = invite.values("record-route")  # the caller side's own proxies, in order
        contact = invite.get("contact")
        target = uri_of(contact) if contact else invite.get("from") or ""
        hop = uri_of(routes[0]) if routes else uri_of(target)
        branch = f"{BRANCH_PREFIX}{secrets.token_hex(10)}"
        flow = dialog.caller
        if flow.transport != "TCP" or flow.connection not in self._connections:
            host, port, _ = uri_target(hop)
            flow = Flow("UDP", (host, port))
        via = Via(flow.transport, self.host, self._public_port(flow), {"branch": branch})
        bye = Message(
            f"BYE {uri_of(target)} SIP/2.0",
            [
                ["Via", str(via)],
                ["Max-Forwards", "70"],
                *(["Route", route] for route in routes),
                ["From", dialog.answered_to or ""],
                ["To", invite.get("from") or ""],
                ["Call-ID", dialog.call_id],
                ["CSeq", f"{dialog.agent_cseq + 1} BYE"],
                ["Reason", 'SIP;cause=503;text="callscribe user agent restarted"'],
            ],
        )
        logger.warning(
            "SIP front: hanging up a lost user agent's call", extra={"sip": dialog.call_id}
        )
        if flow.transport == "TCP":
            self._send(bye, flow)
            return
        task = asyncio.create_task(self._retransmit(bye, flow, branch))
        self._byes[branch] = task

    async def _retransmit(self, request: Message, flow: Flow, branch: str) -> None:
        """Timer E of a non-INVITE client transaction over UDP, until any response."""
        interval, waited = T1_S, 0.0
        try:
            while waited < 64 * T1_S:
                self._send(request, flow)
                await asyncio.sleep(interval)
                waited += interval
                interval = min(interval * 2, T2_S)
        finally:
            self._byes.pop(branch, None)

    # -- helpers --------------------------------------------------------------------------------

    def _public_port(self, flow: Flow) -> int:
        return self.tcp_port if flow.transport == "TCP" else self.udp_port

    def _via_to_agent(self, incoming: Via, request: Message, flow: Flow) -> Via:
        via = Via("UDP", LOOPBACK, self.internal_port, {"branch": _branch(incoming, request)})
        if flow.connection is not None:
            via.params[CONNECTION_PARAM] = str(flow.connection)
        via.params["rport"] = None
        return via

    def _via_to_caller(self, transport: str, incoming: Via, request: Message) -> Via:
        port = self.tcp_port if transport == "TCP" else self.udp_port
        params: dict[str, str | None] = {"branch": _branch(incoming, request), "rport": None}
        return Via(transport, self.host, port, params)

    def _pop_own_routes(self, request: Message) -> None:
        ours = {
            (self.host, self.udp_port),
            (self.host, self.tcp_port),
            (LOOPBACK, self.internal_port),
        }
        routes = request.values("route")  # once: a message may carry hundreds
        count = 0
        for route in routes:
            host, port, _ = uri_target(uri_of(route))
            if (host, port) not in ours:
                break
            count += 1
        request.drop_first("route", count)

    def _hop(self, request: Message, flow: Flow) -> bool:
        """Max-Forwards (RFC 3261 §16.3, §16.6): False when the request goes no further."""
        value = request.get("max-forwards")
        if value is None:
            request.headers.append(["Max-Forwards", "70"])
            return True
        hops = number(value, 255)
        if hops is None:
            raise BadMessage("bad Max-Forwards")
        if hops == 0:
            if request.method != "ACK":
                self._reply(request, flow, 483, "Too Many Hops")
            return False
        request.replace("max-forwards", str(hops - 1))
        return True


def _check(request: Message) -> Via:
    """What every request needs to be routed and answered; its top Via."""
    for name in ("via", "from", "to", "call-id", "cseq"):
        if not request.get(name):
            raise BadMessage(f"no {name} header")
    _, method = cseq_of(request)
    if method != request.method:
        raise BadMessage("the CSeq method is not the request's")
    return Via.parse(request.get("via") or "")


def _reused(dialog: Dialog, request: Message, incoming: Via) -> bool:
    """A new INVITE with the Call-ID of an ended dialog (not a retransmission of its own)."""
    if dialog.ended_at is None or request.method != "INVITE" or tag_of(request.get("to")):
        return False
    return Via.parse(dialog.invite.get("via") or "").branch != incoming.branch


def _annotate(request: Message, via: Via, flow: Flow) -> None:
    """received= and rport= on the sender's Via (RFC 3261 §18.2.1, RFC 3581): the packet's
    real source, whatever the caller wrote there (its own `received` is dropped, `rport` is
    always set), so responses go back where the request came from and never to an address
    a caller names (reflection, amplification). `received` is added only where the sent-by
    host differs, as §18.2.1 has it (added always, concurrent sipp calls in
    tests/integration/test_sip.py lost their media; the cause is not pinned down)."""
    host, port = flow.address
    via.params.pop("received", None)
    if via.host.strip("[]") != host:
        via.params["received"] = host
    via.params["rport"] = str(port)
    request.replace("via", str(via))


def _branch(incoming: Via, request: Message) -> str:
    """The same for a request's retransmissions, its CANCEL and a non-2xx ACK (RFC 3261
    §16.11): derived from the sender's branch, or from the transaction's fields without one."""
    key = incoming.branch
    if not key.startswith("z9hG4bK"):
        cseq = (request.get("cseq") or "").split(" ")[0]
        key = "|".join(
            [str(incoming), request.get("call-id") or "", cseq, tag_of(request.get("from"))]
        )
    return BRANCH_PREFIX + hashlib.blake2s(key.encode("latin-1"), digest_size=10).hexdigest()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
