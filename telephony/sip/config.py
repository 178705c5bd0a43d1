"""What the SIP gateway listens on and whom it trusts, independent of pjsua2."""

import ipaddress
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    """SIP dialogs at once (pjsua's own limit; the hub refuses calls beyond its own)."""
    admit_timeout_s: float = 10.0
    """Longest an INVITE waits for its admission (key check, hub) before a 503."""

    def __post_init__(self) -> None:
        if self.rtp_port_max <= self.rtp_port_min:
            raise ValueError("the RTP port range is empty (rtp_port_max <= rtp_port_min)")
