"""Which local addresses aiortc offers as ICE host candidates.

aioice gathers its host candidates from `aioice.ice.get_host_addresses`, which skips loopback
addresses: a server reachable only on 127.0.0.1 (tests in a loopback-only network namespace, a
browser on the same machine) would offer none and never connect. `CALLSCRIBE_WEBRTC_HOSTS`
(comma-separated IPs) replaces that list, process-wide: it is one module-level function, so
every peer connection of this process (a test's own aiortc client included) offers exactly
these addresses.
"""

import ipaddress

import aioice.ice

_original = aioice.ice.get_host_addresses


def use_host_addresses(hosts: list[str]) -> None:
    """Offer `hosts` as host candidates (an empty list: aioice's own choice again)."""
    if not hosts:
        aioice.ice.get_host_addresses = _original
        return
    v4 = [h for h in hosts if ipaddress.ip_address(h).version == 4]
    v6 = [h for h in hosts if ipaddress.ip_address(h).version == 6]

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return (v4 if use_ipv4 else []) + (v6 if use_ipv6 else [])

    aioice.ice.get_host_addresses = get_host_addresses
