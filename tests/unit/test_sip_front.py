"""The SIP front's routing, on real sockets on loopback: plain UDP and TCP sockets play the
callers and the user agents (pjsua2 itself answers through the front in
tests/integration/test_sip.py)."""

import asyncio
import itertools
import socket
import threading
import time

import pytest

from telephony.sip.config import SipConfig
from telephony.sip.dialogs import LINGER_S
from telephony.sip.front import SipFront
from telephony.sip.message import Message, Via, content_length, parse, response, uri_of

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
_numbers = itertools.count(1)


class Peer:
    """A caller or a user agent: a UDP socket on loopback."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)
        self.port = self.sock.getsockname()[1]

    def send(self, message: Message | bytes, port: int) -> None:
        data = message.encode() if isinstance(message, Message) else message
        self.sock.sendto(data, ("127.0.0.1", port))

    def receive(self, timeout: float = 3) -> Message:
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65535)
        return parse(data)

    def silent(self, seconds: float = 0.3) -> bool:
        self.sock.settimeout(seconds)
        try:
            self.sock.recvfrom(65535)
        except TimeoutError:
            return True
        return False


class Harness:
    def __init__(self, **config) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.front = SipFront(SipConfig(port=0, processes=2, **config))
        self.run(self.front.start())
        self.agents = [Peer(), Peer()]
        for i, agent in enumerate(self.agents):
            self.call(self.front.agent_up, i, agent.port)
        self.port = self.front.udp_port

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def call(self, function, *args):
        """`function(*args)` on the front's loop."""

        async def inside():
            return function(*args)

        return self.run(inside())

    def close(self) -> None:
        self.run(self.front.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def invite(self, caller: Peer, call_id: str | None = None, **headers: str) -> Message:
        n = next(_numbers)
        fields = {
            "Via": f"SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK-{n};rport",
            "From": f"<sip:caller@127.0.0.1:{caller.port}>;tag=c{n}",
            "To": f"<sip:acme@127.0.0.1:{self.port}>",
            "Call-ID": call_id or f"call-{n}",
            "CSeq": "1 INVITE",
            "Contact": f"<sip:caller@127.0.0.1:{caller.port}>",
            "Max-Forwards": "70",
            "Content-Type": "application/sdp",
            **{name.replace("_", "-"): value for name, value in headers.items()},
        }
        return Message(
            f"INVITE sip:acme@127.0.0.1:{self.port} SIP/2.0",
            [[name, value] for name, value in fields.items()],
            SDP.encode(),
        )

    def load(self) -> list[int]:
        return self.call(lambda: list(self.front.dialogs.load))


@pytest.fixture
def sip():
    harness = Harness()
    yield harness
    harness.close()


def answer(request: Message, status: int, agent: Peer, tag: str = "ua1") -> Message:
    """What a user agent answers: Vias and Record-Routes copied back, its tag and Contact."""
    extra = [("Record-Route", rr) for rr in request.values("record-route")]
    extra.append(("Contact", f"<sip:callscribe@127.0.0.1:{agent.port}>"))
    reply = response(request, status, "OK" if status < 300 else "Busy Here", tuple(extra))
    to = reply.get("to") or ""
    reply.replace("to", to.split(";tag=")[0] + f";tag={tag}")
    return reply


def in_dialog(method: str, ok: Message, caller: Peer, cseq: int) -> Message:
    """The caller's ACK or BYE after a 2xx (no Route: sipp sends its in-dialog requests
    straight to the address it called, as here)."""
    n = next(_numbers)
    headers = [
        ["Via", f"SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK-{n}"],
        ["From", ok.get("from") or ""],
        ["To", ok.get("to") or ""],
        ["Call-ID", ok.get("call-id") or ""],
        ["CSeq", f"{cseq} {method}"],
        ["Max-Forwards", "70"],
    ]
    return Message(f"{method} sip:callscribe@127.0.0.1 SIP/2.0", headers)


def establish(sip: Harness, caller: Peer) -> tuple[Message, Message, Peer]:
    """An answered, acknowledged call: (what the agent got, the 200 the caller got, agent)."""
    caller.send(sip.invite(caller), sip.port)
    agent, got = receive_any(sip.agents)
    agent.send(answer(got, 200, agent), sip.front.internal_port)
    ok = caller.receive()
    assert ok.status == 200
    caller.send(in_dialog("ACK", ok, caller, 1), sip.port)
    assert agent.receive().method == "ACK"
    return got, ok, agent


def receive_any(agents: list[Peer]) -> tuple[Peer, Message]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for agent in agents:
            try:
                return agent, agent.receive(0.05)
            except TimeoutError:
                continue
    raise AssertionError("no user agent got the request")


def test_an_invite_is_proxied_and_its_dialog_follows_its_call_id(sip):
    caller = Peer()
    caller.send(sip.invite(caller, X_Callscribe_Source="10.9.9.9"), sip.port)
    got = sip.agents[0].receive()  # both idle: the first
    ours, theirs = (Via.parse(v) for v in got.values("via"))
    assert (ours.host, ours.port) == ("127.0.0.1", sip.front.internal_port)
    assert ours.branch.startswith("z9hG4bK") and theirs.params["rport"] == str(caller.port)
    routes = [uri_of(rr) for rr in got.values("record-route")]
    assert routes == [
        f"sip:127.0.0.1:{sip.front.internal_port};lr",
        f"sip:127.0.0.1:{sip.port};lr",
    ]
    assert got.values("x-callscribe-source") == ["127.0.0.1"]  # the caller's own is gone
    assert got.get("max-forwards") == "69"
    assert got.body == SDP.encode()

    sip.agents[0].send(answer(got, 180, sip.agents[0]), sip.front.internal_port)
    sip.agents[0].send(answer(got, 200, sip.agents[0]), sip.front.internal_port)
    assert caller.receive().status == 180
    ok = caller.receive()
    assert ok.status == 200 and len(ok.values("via")) == 1
    assert Via.parse(ok.get("via") or "").branch == theirs.branch

    caller.send(in_dialog("ACK", ok, caller, 1), sip.port)
    caller.send(in_dialog("BYE", ok, caller, 2), sip.port)
    assert sip.agents[0].receive().method == "ACK"
    bye = sip.agents[0].receive()
    assert bye.method == "BYE" and sip.agents[1].silent()
    assert sip.load() == [1, 0]
    sip.agents[0].send(answer(bye, 200, sip.agents[0]), sip.front.internal_port)
    assert caller.receive().status == 200
    assert sip.load() == [0, 0]


def test_a_user_agents_bye_reaches_the_caller_past_the_front(sip):
    caller = Peer()
    got, ok, agent = establish(sip, caller)
    bye = Message(
        f"BYE {uri_of(got.get('contact') or '')} SIP/2.0",
        [
            ["Via", f"SIP/2.0/UDP 127.0.0.1:{agent.port};rport;branch=z9hG4bKua-1"],
            *(["Route", rr] for rr in got.values("record-route")),
            ["From", ok.get("to") or ""],
            ["To", ok.get("from") or ""],
            ["Call-ID", ok.get("call-id") or ""],
            ["CSeq", "7 BYE"],
            ["Max-Forwards", "70"],
        ],
    )
    agent.send(bye, sip.front.internal_port)
    arrived = caller.receive()
    assert arrived.method == "BYE" and arrived.values("route") == []
    ours, theirs = (Via.parse(v) for v in arrived.values("via"))
    assert (ours.port, theirs.port) == (sip.port, agent.port)
    caller.send(response(arrived, 200, "OK"), sip.port)
    done = agent.receive()
    assert done.status == 200 and len(done.values("via")) == 1
    assert sip.load() == [0, 0]


def test_dialogs_are_spread_and_a_full_house_is_refused(sip):
    caller = Peer()
    invites = [sip.invite(caller) for _ in range(9)]
    for invite in invites[:8]:
        caller.send(invite, sip.port)
    held = {0: [], 1: []}
    for _ in range(8):
        agent, got = receive_any(sip.agents)
        held[sip.agents.index(agent)].append(got)
    assert [len(held[0]), len(held[1])] == [4, 4] == sip.load()

    caller.send(invites[8], sip.port)
    busy = caller.receive()
    assert busy.status == 503 and busy.get("retry-after") == "5"
    assert all(agent.silent() for agent in sip.agents)

    refused = held[0][0]  # the user agent turns one down: its place is free again
    sip.agents[0].send(answer(refused, 486, sip.agents[0]), sip.front.internal_port)
    assert caller.receive().status == 486
    assert sip.load() == [3, 4]
    caller.send(invites[8], sip.port)
    assert sip.agents[0].receive().get("call-id") == invites[8].get("call-id")
    assert sip.load() == [4, 4]

    sip.agents[1].send(answer(held[1][0], 486, sip.agents[1]), sip.front.internal_port)
    assert caller.receive().status == 486
    again = sip.invite(caller, call_id=held[1][0].get("call-id"))  # a new INVITE, same Call-ID
    caller.send(again, sip.port)
    assert sip.agents[1].receive().get("call-id") == again.get("call-id")
    assert sip.load() == [4, 4]


def test_retransmissions_and_cancel_reach_the_same_transaction(sip):
    caller = Peer()
    invite = sip.invite(caller)
    caller.send(invite, sip.port)
    caller.send(invite, sip.port)
    first, again = sip.agents[0].receive(), sip.agents[0].receive()
    assert first.get("via") == again.get("via")
    cancel = Message(
        f"CANCEL {invite.uri} SIP/2.0",
        [[name, value] for name, value in invite.headers if name != "Content-Type"],
    )
    cancel.replace("cseq", "1 CANCEL")
    caller.send(cancel, sip.port)
    forwarded = sip.agents[0].receive()
    assert forwarded.method == "CANCEL" and forwarded.get("via") == first.get("via")
    assert sip.load() == [1, 0]


def test_bad_input_gets_an_error_and_breaks_nothing(sip):
    caller = Peer()
    caller.send(b"\x00\xffnot sip at all\r\n\r\n", sip.port)
    caller.send(b"\r\n\r\n", sip.port)  # a keep-alive: no answer
    assert caller.silent()

    no_cseq = sip.invite(caller)
    no_cseq.remove("cseq")
    caller.send(no_cseq, sip.port)
    bad = caller.receive()
    assert bad.status == 400 and "cseq" in bad.first.lower()

    garbled = sip.invite(caller).encode().replace(b"Max-Forwards: 70", b"this line is no header")
    caller.send(garbled, sip.port)
    assert caller.receive().status == 400

    loop = sip.invite(caller, Max_Forwards="0")
    caller.send(loop, sip.port)
    assert caller.receive().status == 483

    stray = sip.invite(caller)
    stray.first = stray.first.replace("INVITE", "BYE")
    stray.replace("cseq", "2 BYE")
    stray.replace("to", (stray.get("to") or "") + ";tag=nobody")
    caller.send(stray, sip.port)
    assert caller.receive().status == 481

    for method, status in (("OPTIONS", 200), ("REGISTER", 405)):
        request = sip.invite(caller)
        request.first = request.first.replace("INVITE", method)
        request.replace("cseq", f"1 {method}")
        caller.send(request, sip.port)
        assert caller.receive().status == status

    forged = response(sip.invite(caller), 200, "OK")  # a response that never passed the front
    caller.send(forged, sip.port)
    assert all(agent.silent() for agent in sip.agents)
    stranger = Peer()  # only the user agents may use the front's loopback port
    stranger.send(sip.invite(stranger), sip.front.internal_port)
    assert stranger.silent() and caller.silent(0.1)

    establish(sip, caller)  # and calls still work
    assert sip.load() == [1, 0]


def test_a_lost_user_agent_s_callers_are_hung_up_or_refused(sip):
    answered, waiting = Peer(), Peer()
    _, ok, _ = establish(sip, answered)  # on agent 0
    waiting.send(sip.invite(waiting), sip.port)
    pending = sip.agents[1].receive()
    assert pending.method == "INVITE"

    sip.call(sip.front.agent_down, 0)
    bye = answered.receive()
    assert bye.method == "BYE" and bye.get("call-id") == ok.get("call-id")
    assert bye.get("from") == ok.get("to") and bye.get("to") == ok.get("from")
    assert "restarted" in (bye.get("reason") or "")
    answered.send(response(bye, 200, "OK"), sip.port)
    assert answered.silent(1.0)  # answered: no retransmission
    assert waiting.silent()

    sip.call(sip.front.agent_down, 1)
    refused = waiting.receive()
    assert refused.status == 503 and refused.get("call-id") == pending.get("call-id")
    assert sip.load() == [0, 0] and sip.call(len, sip.front.dialogs) == 0

    caller = Peer()
    caller.send(sip.invite(caller), sip.port)
    assert caller.receive().status == 503  # no user agent up
    sip.call(sip.front.agent_up, 1, sip.agents[1].port)
    caller.send(sip.invite(caller), sip.port)
    assert sip.agents[1].receive().method == "INVITE"


def test_ended_dialogs_are_forgotten_after_a_linger(sip):
    caller = Peer()
    _, ok, agent = establish(sip, caller)
    call_id = ok.get("call-id") or ""
    sip.call(sip.front.dialog_ended, call_id)  # the user agent released the call
    assert sip.load() == [0, 0]
    caller.send(in_dialog("BYE", ok, caller, 2), sip.port)
    assert agent.receive().method == "BYE"  # a late BYE still reaches its user agent
    sip.call(sip.front.dialogs.sweep, time.monotonic() + LINGER_S + 1)
    assert sip.call(len, sip.front.dialogs) == 0
    caller.send(in_dialog("BYE", ok, caller, 3), sip.port)
    assert caller.receive().status == 481


def test_a_tcp_caller_is_answered_on_its_connection(sip):
    caller = socket.create_connection(("127.0.0.1", sip.front.tcp_port), timeout=3)
    stream = caller.makefile("rb")

    def read() -> Message:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += stream.readline()
        return parse(head + stream.read(content_length(head)))

    port = caller.getsockname()[1]
    invite = sip.invite(Peer())  # its Via and Contact made the TCP caller's
    invite.replace("via", f"SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-tcp1")
    invite.replace("contact", f"<sip:caller@127.0.0.1:{port};transport=tcp>")
    caller.sendall(b"\r\n\r\n" + invite.encode())  # a keep-alive ping first
    assert stream.readline() == b"\r\n"  # pong
    got = sip.agents[0].receive()
    ours = Via.parse(got.get("via") or "")
    assert "cs-conn" in ours.params
    assert uri_of(got.values("record-route")[1]).endswith(";transport=tcp;lr")
    sip.agents[0].send(answer(got, 200, sip.agents[0]), sip.front.internal_port)
    ok = read()
    assert ok.status == 200 and len(ok.values("via")) == 1

    bye = Message(
        f"BYE sip:caller@127.0.0.1:{port};transport=tcp SIP/2.0",
        [
            ["Via", f"SIP/2.0/UDP 127.0.0.1:{sip.agents[0].port};rport;branch=z9hG4bKua-2"],
            *(["Route", rr] for rr in got.values("record-route")),
            ["From", ok.get("to") or ""],
            ["To", ok.get("from") or ""],
            ["Call-ID", ok.get("call-id") or ""],
            ["CSeq", "3 BYE"],
        ],
    )
    sip.agents[0].send(bye, sip.front.internal_port)
    arrived = read()
    assert arrived.method == "BYE"
    assert Via.parse(arrived.get("via") or "").transport == "TCP"
    caller.sendall(response(arrived, 200, "OK").encode())
    assert sip.agents[0].receive().status == 200
    assert sip.load() == [0, 0]
    caller.close()
