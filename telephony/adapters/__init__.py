"""Media-stream adapters: thin translations of a wire format into a `CallSession`.

- `twilio`: Twilio Media Streams (`WS /v1/media-streams/twilio`, base64 μ-law in JSON).
- `audio_fork`: FreeSWITCH mod_audio_fork style (`WS /v1/media-streams/audio-fork`, L16).
- `audiosocket`: Asterisk AudioSocket over TCP, calls reserved by tenants beforehand
  (`POST /v1/media-streams/audiosocket/reservations`).
"""

from fastapi import FastAPI

from telephony.adapters import audio_fork, reservations, twilio
from telephony.adapters.audiosocket import AudioSocketServer
from telephony.adapters.reservations import Reservations


def install(app: FastAPI, audiosocket_host: str, audiosocket_port: int | None) -> None:
    """Add the adapters' routes and the AudioSocket server (a background service started
    after the call hub) to the combined app; `app.state.call_hub` must be set."""
    app.include_router(twilio.router)
    app.include_router(audio_fork.router)
    app.include_router(reservations.router)
    app.state.audiosocket_reservations = Reservations()
    server = AudioSocketServer(
        app.state, app.state.audiosocket_reservations, audiosocket_host, audiosocket_port
    )
    app.state.audiosocket = server
    app.state.config.services = (*app.state.config.services, server)
