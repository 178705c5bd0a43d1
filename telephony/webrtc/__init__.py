"""WebRTC gateway: a browser (or any WebRTC peer) calls in with one audio track and a
`captions` data channel; `POST /v1/webrtc/offer` (`api`) answers the SDP offer (non-trickle
ICE), the track becomes the call's `mixed` leg and the call's events come back over the data
channel (`peer`). `gateway.WebrtcGateway` holds the peers; `embed` lets other web apps' pages
post offers; `hosts` picks the ICE host candidates."""
