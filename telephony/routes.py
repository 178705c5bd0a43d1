"""The telephony routes on an app: live listeners of calls, the media-stream adapters and
AudioSocket reservations, and WebRTC offers (with CORS for the web apps that embed captions).
They take their `TelephonyState` from the `telephony_state` dependency."""

from fastapi import FastAPI

from telephony import api
from telephony.adapters import audio_fork, reservations, twilio
from telephony.webrtc import api as webrtc_api
from telephony.webrtc.embed import EmbedCors


def install(app: FastAPI, embed_origins: tuple[str, ...] = ()) -> None:
    app.include_router(api.router)
    app.include_router(twilio.router)
    app.include_router(audio_fork.router)
    app.include_router(reservations.router)
    app.include_router(webrtc_api.router)
    if embed_origins:
        app.add_middleware(EmbedCors, origins=list(embed_origins))
