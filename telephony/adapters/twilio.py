"""Twilio Media Streams: `WS /v1/media-streams/twilio`.

Point a `<Stream url="wss://HOST/v1/media-streams/twilio?token=TOKEN" track="both_tracks">`
(TwiML) or a `<Parameter name="token" value="TOKEN"/>` inside it at this route: Twilio sets no
headers, so the tenant comes from a key or stream token in the query, else from the `token`
custom parameter of the `start` message.

Twilio sends JSON text messages: `connected`, `start` (`start.streamSid`, `start.callSid`,
`start.tracks`, `start.customParameters`, `start.mediaFormat` = `{"encoding":
"audio/x-mulaw", "sampleRate": 8000, "channels": 1}`), `media` (`media.track` inbound or
outbound, `media.payload` base64 μ-law, 20 ms a message), `dtmf`, `mark` and `stop`. Each
announced track becomes a leg of one call (`inbound` -> `customer`, `outbound` -> `agent`)
whose id is the callSid; `customParameters.language` (`en`, `zh`, `auto`) picks the language.
A malformed message is logged and answered with `{"event": "error", "code", "message"}`, and
the stream goes on; `stop` or a disconnect ends the call (its last finals are still stored).
Transcripts are for listeners (`WS /v1/calls/{callSid}/events`), not sent back to Twilio.
"""

import asyncio
import base64
import binascii
import logging

from fastapi import APIRouter, WebSocket

from asr_core.audio import RawFormat
from common.rules import check_call_id
from service.live import (
    MAX_TEXT_FRAME_CHARS,
    close_quietly,
    echo,
    load_message,
    receive_frame,
)
from telephony.adapters.common import (
    BAD_REQUEST_CLOSE,
    StreamRefused,
    checked,
    end_call,
    open_call,
    presents_credentials,
    refuse,
    send_json,
    tenant_for,
)
from telephony.session import CallSession
from telephony.state import TelephonyDep, TelephonyState

logger = logging.getLogger(__name__)
router = APIRouter()

SOURCE = "twilio"
START_TIMEOUT_S = 30.0
"""Twilio sends `connected` and `start` at once; a socket that does not is dropped."""
TRACK_LEGS = {"inbound": "customer", "outbound": "agent"}
ENCODINGS = {"audio/x-mulaw": "mulaw", "audio/x-alaw": "alaw"}
LOGGED_ERRORS = 10
"""Malformed messages logged per stream (all are answered; the rest are only counted)."""


def _text(value: object, limit: int = 64) -> str | None:
    """A client's string field, cut short; None for anything that is not a string."""
    return value[:limit] if isinstance(value, str) else None


def _render_error(code: str, message: str) -> dict:
    return {"event": "error", "code": code, "message": message}


@router.websocket("/v1/media-streams/twilio")
async def twilio_media_stream(websocket: WebSocket, state: TelephonyDep) -> None:
    await websocket.accept()
    stream = _TwilioStream(websocket, state)
    try:
        if presents_credentials(websocket):  # refuse a bad key before any audio arrives
            stream.tenant = await tenant_for(websocket, state)
        reason = await stream.run()
    except StreamRefused as refused:
        await refuse(websocket, refused, _render_error)
        reason = "refused"
    finally:
        await stream.end()
    if reason == "stop":
        await close_quietly(websocket)


class _TwilioStream:
    def __init__(self, websocket: WebSocket, state: TelephonyState) -> None:
        self.websocket = websocket
        self.state = state
        self.tenant: str | None = None
        self.session: CallSession | None = None
        self.legs: dict[str, str] = {}
        """Twilio track -> leg of the call."""
        self.stream_sid: str | None = None
        self.errors = 0
        self.reason = "disconnected"

    async def run(self) -> str:
        """Handle messages until `stop` ("stop") or a disconnect ("disconnected"). The start
        message must come within START_TIMEOUT_S of the connection, whatever else comes
        first."""
        loop = asyncio.get_running_loop()
        start_by = loop.time() + START_TIMEOUT_S
        while True:
            try:
                message = await receive_frame(
                    self.websocket,
                    max(0.0, start_by - loop.time()) if self.session is None else None,
                )
            except TimeoutError:
                raise StreamRefused(
                    "start_timeout", "no start message in time", BAD_REQUEST_CLOSE
                ) from None
            if message is None:
                return "disconnected"
            text = message.get("text")
            if text is None:
                await self.error("text_expected", "Twilio media streams send JSON text messages")
                continue
            if len(text) > MAX_TEXT_FRAME_CHARS:
                await self.error("message_too_large", "message too large; it was ignored")
                continue
            try:
                body = load_message(text)
            except ValueError as exc:
                await self.error("invalid_json", f"not JSON: {exc}")
                continue
            event = body.get("event") if isinstance(body, dict) else None
            if event == "stop":
                self.reason = "hangup"
                return "stop"
            await self.handle(event, body)

    async def handle(self, event: object, body: dict) -> None:
        if event in ("connected", "mark"):
            return
        if event == "start":
            await self.start(body)
        elif event == "media":
            await self.media(body.get("media"))
        elif event == "dtmf":
            dtmf = body.get("dtmf") if isinstance(body.get("dtmf"), dict) else {}
            track = str(dtmf.get("track", ""))[:32].removesuffix("_track")
            if self.session is not None:
                self.state.hub.listeners.publish(
                    self.session.id,
                    {
                        "type": "dtmf",
                        "leg": TRACK_LEGS.get(track),
                        "digit": str(dtmf.get("digit"))[:4],
                    },
                )
        else:
            await self.error("unknown_event", f"unknown event {echo(event)}; it was ignored")

    async def start(self, body: dict) -> None:
        if self.session is not None:
            await self.error("already_started", "the stream has already started")
            return
        start = body.get("start")
        if not isinstance(start, dict):
            raise StreamRefused("invalid_start", "start message without `start`", BAD_REQUEST_CLOSE)
        self.stream_sid = _text(start.get("streamSid") or body.get("streamSid"))
        parameters = start.get("customParameters") or {}
        if not isinstance(parameters, dict):
            parameters = {}
        media_format = start.get("mediaFormat") or {}
        if not isinstance(media_format, dict):
            media_format = {"encoding": media_format}
        encoding = ENCODINGS.get(_text(media_format.get("encoding", "audio/x-mulaw")) or "")
        if encoding is None or media_format.get("sampleRate", 8000) != 8000:
            raise StreamRefused(
                "unsupported_media_format",
                f"media format {echo(media_format)}: audio/x-mulaw (or x-alaw) at 8000 Hz expected",
                BAD_REQUEST_CLOSE,
            )
        if media_format.get("channels", 1) != 1:
            raise StreamRefused(
                "unsupported_media_format", "one channel per track expected", BAD_REQUEST_CLOSE
            )
        tracks = start.get("tracks") or ["inbound"]
        if not isinstance(tracks, list) or not tracks:
            tracks = ["inbound"]
        unknown = [track for track in tracks if _text(track) not in TRACK_LEGS]
        if unknown:
            raise StreamRefused(
                "unknown_track", f"tracks {echo(unknown)}: inbound or outbound", BAD_REQUEST_CLOSE
            )
        call_id = checked(check_call_id, start.get("callSid") or self.stream_sid)
        language = checked(self.state.rules.language, parameters.get("language"))
        if self.tenant is None:
            self.tenant = await tenant_for(self.websocket, self.state, parameters.get("token"))
        self.session = await open_call(self.state, self.tenant, SOURCE, call_id, language)
        for track in dict.fromkeys(tracks):
            self.legs[track] = TRACK_LEGS[track]
            self.session.add_leg(TRACK_LEGS[track], RawFormat(encoding, 8000))
        logger.info(
            "twilio media stream started",
            extra={"call": self.session.id, "stream": self.stream_sid, "tracks": list(self.legs)},
        )

    async def media(self, media: object) -> None:
        if self.session is None:
            await self.error("not_started", "media before the start message; it was dropped")
            return
        if not isinstance(media, dict):
            await self.error("invalid_media", "media message without `media`")
            return
        leg = self.legs.get(_text(media.get("track", "inbound")) or "")
        if leg is None:
            await self.error(
                "unknown_track",
                f"track {echo(media.get('track'))} was not announced in start; dropped",
            )
            return
        try:
            payload = base64.b64decode(media.get("payload", ""), validate=True)
        except (binascii.Error, ValueError, TypeError):
            await self.error("invalid_payload", "media payload is not base64")
            return
        self.session.feed(leg, payload)

    async def error(self, code: str, message: str) -> None:
        self.errors += 1
        if self.errors <= LOGGED_ERRORS:
            logger.warning(
                "twilio media stream: bad message",
                extra={"stream": self.stream_sid, "code": code, "reason": message},
            )
        await send_json(
            self.websocket, {**_render_error(code, message), "streamSid": self.stream_sid}
        )

    async def end(self) -> None:
        if self.session is not None:
            await end_call(self.session, self.reason)
