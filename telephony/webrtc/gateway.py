"""The WebRTC gateway of the app: its settings (ICE servers, host candidates) and its live
peers, closed when the app stops."""

import asyncio
import logging

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from fastapi import FastAPI

from telephony.webrtc.embed import EmbedCors, parse_origins
from telephony.webrtc.hosts import parse_hosts, use_host_addresses

logger = logging.getLogger(__name__)


class WebrtcGateway:
    """A service of the app (start/stop): after the call hub, so it stops before it."""

    def __init__(self, ice_servers: list[str]) -> None:
        self.ice_servers = ice_servers
        self.calls: set = set()

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


def install(
    app: FastAPI, ice_servers: str = "", hosts: str = "", origins: str = ""
) -> WebrtcGateway:
    """Set up the gateway on `app.state.webrtc` (the router is included separately), and let
    pages of `origins` embed captions."""
    origin_list = parse_origins(origins)
    if origin_list:
        app.add_middleware(EmbedCors, origins=origin_list)
    host_list = parse_hosts(hosts)
    if host_list:
        use_host_addresses(host_list)
    gateway = WebrtcGateway([url.strip() for url in ice_servers.split(",") if url.strip()])
    app.state.webrtc = gateway
    app.state.config.services = (*app.state.config.services, gateway)
    return gateway
