"""What the SIP gateway listens on and whom it trusts, independent of pjsua2."""

import ipaddress
import math
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PJSUA_MAX_CALLS = 4
"""The pjsua2-python 2.15.1 wheel's compile-time limit: pjsua caps `maxCalls` to it and
answers further INVITEs 486 itself, and pjsua is one per process. So the gateway runs several
user-agent processes behind one SIP front."""


class AllowList:
    """Tenants' trusted source networks (`acme=10.0.0.0/8,192.0.2.7;globex=...`): a caller
    from one of them needs no key. Parsed once at start, so a typo fails the start."""

    def __init__(self, spec: str = "") -> None:
        self.networks: dict[str, list[Network]] = {}
        for entry in filter(None, (part.strip() for part in spec.split(";"))):
            tenant, sep, nets = entry.partition("=")
            if not sep or not tenant.strip():
                raise ValueError(f"CALLSCRIBE_SIP_ALLOW entry {entry!r}: use tenant=network,...")
            for net in filter(None, (n.strip() for n in nets.split(","))):
                try:
                    network = ipaddress.ip_network(net, strict=False)
                except ValueError as exc:
                    raise ValueError(f"CALLSCRIBE_SIP_ALLOW: {exc}") from None
                self.networks.setdefault(tenant.strip(), []).append(network)

    def allows(self, tenant_id: str, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks.get(tenant_id, ()))


@dataclass(frozen=True)
class SipConfig:
    port: int
    tcp_port: int | None = None
    """None: the same number as `port`."""
    host: str = "127.0.0.1"
    rtp_port_min: int = 40000
    rtp_port_max: int = 40999
    allow: AllowList = field(default_factory=AllowList)
    rtp_timeout_s: float = 30.0
    max_calls: int = 32
    """Calls the server takes at once: enough user-agent processes are started for as many
    SIP dialogs (the hub refuses calls beyond it itself)."""
    processes: int = 0
    """User-agent processes, `PJSUA_MAX_CALLS` dialogs each (0: enough for `max_calls`)."""
    admit_timeout_s: float = 10.0
    """Longest an INVITE waits for its admission (key check, hub) before a 503."""
    max_failures_per_minute: int = 30
    """Requests from one source address that may fail (unparseable, or refused as
    unauthenticated) per minute; beyond it the front drops that source's messages unread
    until the minute is over."""

    def __post_init__(self) -> None:
        if self.rtp_port_max <= self.rtp_port_min:
            raise ValueError("the RTP port range is empty (rtp_port_max <= rtp_port_min)")
        if self._rtp_slice() < 2 * PJSUA_MAX_CALLS:
            raise ValueError(
                f"the RTP port range {self.rtp_port_min}-{self.rtp_port_max} is too small for "
                f"{self.agents} SIP user-agent processes: each needs {2 * PJSUA_MAX_CALLS} ports"
            )

    @property
    def agents(self) -> int:
        """How many user-agent processes the gateway runs."""
        return self.processes or max(1, math.ceil(self.max_calls / PJSUA_MAX_CALLS))

    def _rtp_slice(self) -> int:
        return (self.rtp_port_max - self.rtp_port_min + 1) // self.agents

    def agent(self, index: int, relay: str) -> "AgentConfig":
        """User agent `index`'s settings: its own slice of the RTP ports."""
        size = self._rtp_slice()
        first = self.rtp_port_min + index * size
        return AgentConfig(
            index=index,
            relay=relay,
            host=self.host,
            rtp_port_min=first,
            rtp_port_max=first + size - 1,
            rtp_timeout_s=self.rtp_timeout_s,
            admit_timeout_s=self.admit_timeout_s,
        )


@dataclass(frozen=True)
class AgentConfig:
    """One user-agent process (JSON-able: it is handed over on the command line). SIP reaches
    it on loopback from the front only; RTP on `host`, in ports no other process uses."""

    index: int = 0
    relay: str = ""
    """The front's loopback address (`127.0.0.1:port`): the only sender it takes calls from,
    and whose X-Callscribe-Source (the caller's real address) it believes."""
    host: str = "127.0.0.1"
    rtp_port_min: int = 40000
    rtp_port_max: int = 40999
    rtp_timeout_s: float = 30.0
    admit_timeout_s: float = 10.0
