"""WebRTC gateway: a browser (or any WebRTC peer) calls in with one audio track and a
`captions` data channel; `POST /v1/webrtc/offer` answers the SDP offer (non-trickle ICE), the
track becomes the call's `mixed` leg and the call's events come back over the data channel."""

from telephony.webrtc.api import router
from telephony.webrtc.gateway import WebrtcGateway, install

__all__ = ["WebrtcGateway", "install", "router"]
