"""The WebRTC gateway of the app: its settings (ICE servers, host candidates) and its live
peers, closed when the app stops."""

import asyncio
import logging
from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from telephony.webrtc.hosts import use_host_addresses

logger = logging.getLogger(__name__)


class WebrtcGateway:
    """A service of the app (start/stop): after the call hub, so it stops before it."""

    def __init__(self, ice_servers: Sequence[str] = (), hosts: Sequence[str] = ()) -> None:
        """`hosts`: the IPs offered as host candidates, process-wide (see `hosts.py`); none
        leaves aioice's own choice."""
        self.ice_servers = list(ice_servers)
        self.calls: set = set()
        if hosts:
            use_host_addresses(list(hosts))

    def peer_connection(self) -> RTCPeerConnection:
        """A new peer with only the configured ICE servers: never aiortc's default public STUN
        server (with `iceServers` unset it would ask Google's)."""
        servers = [RTCIceServer(urls=url) for url in self.ice_servers]
        return RTCPeerConnection(RTCConfiguration(iceServers=servers))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        calls = list(self.calls)
        if calls:
            await asyncio.gather(
                *(call.abort("the gateway is shutting down") for call in calls),
                return_exceptions=True,
            )
