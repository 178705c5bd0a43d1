"""The SIP front against hostile datagrams: replies go only to a packet's real source, numbers
are ASCII, header handling is linear, and a source whose requests keep failing is ignored."""

import socket

import pytest

from telephony.sip import message as sip_message
from telephony.sip.message import parse
from tests.unit.test_sip_front import Harness, Peer, answer, receive_any


@pytest.fixture
def sip():
    harness = Harness(max_failures_per_minute=5)
    yield harness
    harness.close()


@pytest.mark.parametrize(
    "via_params", [";received=127.0.0.1", ";received=127.0.0.1;rport=VICTIM", ""]
)
def test_responses_go_to_the_real_source_not_where_a_via_points(sip, via_params):
    caller, victim = Peer(), Peer()
    invite = sip.invite(caller)
    via = f"SIP/2.0/UDP 127.0.0.1:{victim.port};branch=z9hG4bK-spoof{via_params}"
    invite.replace("via", via.replace("VICTIM", str(victim.port)))
    caller.send(invite, sip.port)
    agent, got = receive_any(sip.agents)
    agent.send(answer(got, 486, agent), sip.front.internal_port)
    assert caller.receive().status == 486
    assert victim.silent(0.3)


@pytest.mark.parametrize(
    "line",
    [
        b"CSeq: \xb2 INVITE",  # latin-1 superscript two: isdigit() is true, int() raises
        b"Max-Forwards: \xb9\xb2",
        b"Via: SIP/2.0/UDP 127.0.0.1:5\xb20;branch=z9hG4bK-x",
        b"Content-Length: \xb3",
    ],
)
def test_non_ascii_numbers_are_a_400_not_a_crash(sip, line):
    caller = Peer()
    invite = sip.invite(caller)
    name = line.split(b":")[0].decode()
    if name != "Content-Length":
        invite.remove(name)
    data = invite.encode().replace(b"\r\n", b"\r\n" + line + b"\r\n", 1)
    if name == "Content-Length":
        data = data.replace(f"Content-Length: {len(invite.body)}\r\n".encode(), b"")
    caller.send(data, sip.port)
    assert caller.receive().status == 400


def test_route_handling_is_linear_in_the_message(sip, monkeypatch):
    """A datagram of hundreds of Routes naming the front itself: each character of the header
    is scanned a bounded number of times, not once per Route."""
    scanned = [0]
    for name in ("split_list", "split_first"):
        original = getattr(sip_message, name)

        def counting(value, *args, _original=original):
            scanned[0] += len(value)
            return _original(value, *args)

        monkeypatch.setattr(sip_message, name, counting)
    caller = Peer()
    invite = sip.invite(caller)
    routes = ", ".join([f"<sip:127.0.0.1:{sip.port};lr>"] * 500)
    invite.headers.insert(1, ["Route", routes])
    data = invite.encode()
    assert len(data) < sip_message.MAX_HEADER_BYTES
    caller.send(data, sip.port)
    receive_any(sip.agents)
    assert scanned[0] < 10 * len(data)


def test_a_source_whose_requests_keep_failing_is_ignored(sip):
    caller = Peer()
    for _ in range(5):
        broken = sip.invite(caller)
        broken.remove("cseq")
        caller.send(broken, sip.port)
        assert caller.receive().status == 400
    options = sip.invite(caller)
    options.first = options.first.replace("INVITE", "OPTIONS")
    options.replace("cseq", "1 OPTIONS")
    caller.send(options, sip.port)
    assert caller.silent(0.3)  # over its limit: not even parsed
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another address
    other.bind(("127.0.0.2", 0))
    other.settimeout(3)
    other_port = other.getsockname()[1]
    from_other = options.encode().replace(
        f"127.0.0.1:{caller.port}".encode(), f"127.0.0.2:{other_port}".encode()
    )
    other.sendto(from_other, ("127.0.0.1", sip.port))
    assert parse(other.recvfrom(65535)[0]).status == 200  # another source is not held back
    other.close()
