"""FreeSWITCH mod_audio_fork style streams: `WS /v1/media-streams/audio-fork`.

`uuid_audio_fork <uuid> start ws://HOST/v1/media-streams/audio-fork?token=TOKEN stereo 8k
<metadata>`: the first text message is the metadata, a JSON object
`{"callId"?: "...", "sampleRate": 8000|16000|48000, "channels": 1|2, "legs"?: ["customer",
"agent"], "language"?: "en"|"zh"|"auto", "token"?: "..."}`, then binary frames of L16
(signed 16-bit little-endian) audio, interleaved when stereo. Two channels are two legs of
the call (left `customer`, right `agent` unless `legs` names them); one channel is one leg
(`mixed` unless `legs` names it). The server answers `{"type": "started", "call_id", "legs"}`.
`{"type": "end"}` or a disconnect ends the call; its last finals are still stored.
Transcripts go to listeners (`WS /v1/calls/{call_id}/events`).
"""

import asyncio
import json
import logging
from typing import Literal

import numpy as np
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.websockets import WebSocketDisconnect

from asr_core.audio import RawFormat
from common.rules import check_call_id, check_leg
from service.live import (
    MAX_AUDIO_FRAME_BYTES,
    MAX_TEXT_FRAME_CHARS,
    check_message,
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
from telephony.state import TelephonyDep

logger = logging.getLogger(__name__)
router = APIRouter()

SOURCE = "audio-fork"
METADATA_TIMEOUT_S = 30.0


class ForkMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    call_id: str | None = Field(None, alias="callId")
    sample_rate: Literal[8000, 16000, 48000] = Field(8000, alias="sampleRate")
    channels: Literal[1, 2] = 1
    legs: list[str] | None = None
    language: str | None = None
    token: str | None = None

    @model_validator(mode="after")
    def _legs_match_channels(self) -> "ForkMetadata":
        if self.legs is None:
            self.legs = ["customer", "agent"] if self.channels == 2 else ["mixed"]
        if len(self.legs) != self.channels:
            raise ValueError(f"{self.channels} channel(s) need {self.channels} leg name(s)")
        if len(set(self.legs)) != len(self.legs):
            raise ValueError("leg names must differ")
        for leg in self.legs:
            check_leg(leg)
        return self


class StereoSplitter:
    """Interleaved L16 stereo in frames of any size (a sample or a left/right pair may be
    torn between frames) -> the left and the right channel's L16 bytes."""

    def __init__(self) -> None:
        self._carry = b""

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        data = self._carry + data
        usable = len(data) - len(data) % 4
        self._carry = data[usable:]
        pairs = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, 2)
        return pairs[:, 0].tobytes(), pairs[:, 1].tobytes()


def _render_error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}


@router.websocket("/v1/media-streams/audio-fork")
async def audio_fork_stream(websocket: WebSocket, state: TelephonyDep) -> None:
    await websocket.accept()
    session: CallSession | None = None
    reason = "disconnected"
    try:
        tenant = await tenant_for(websocket, state) if presents_credentials(websocket) else None
        metadata = await _read_metadata(websocket)
        if metadata is None:
            return
        call_id = checked(check_call_id, metadata.call_id)
        language = checked(state.rules.language, metadata.language)
        if tenant is None:
            tenant = await tenant_for(websocket, state, metadata.token)
        session = await open_call(state, tenant, SOURCE, call_id, language)
        for leg in metadata.legs:
            session.add_leg(leg, RawFormat("pcm_s16le", metadata.sample_rate))
        logger.info("audio fork started", extra={"call": session.id, "legs": metadata.legs})
        await send_json(
            websocket, {"type": "started", "call_id": session.id, "legs": metadata.legs}
        )
        if await _receive(websocket, session, metadata.legs):
            reason = "hangup"
    except StreamRefused as refused:
        await refuse(websocket, refused, _render_error)
    finally:
        if session is not None:
            await end_call(session, reason)
    if reason == "hangup":
        await send_json(websocket, {"type": "ended", "call_id": session.id})
        await close_quietly(websocket)


async def _read_metadata(websocket: WebSocket) -> ForkMetadata | None:
    try:
        message = await asyncio.wait_for(websocket.receive(), METADATA_TIMEOUT_S)
    except TimeoutError:
        raise StreamRefused(
            "metadata_timeout", "no metadata message in time", BAD_REQUEST_CLOSE
        ) from None
    except (WebSocketDisconnect, RuntimeError):
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None or len(text) > MAX_TEXT_FRAME_CHARS:
        raise StreamRefused(
            "metadata_expected", "send a JSON metadata message before audio", BAD_REQUEST_CLOSE
        )
    try:
        check_message(text)
        return ForkMetadata.model_validate_json(text)
    except json.JSONDecodeError as exc:
        raise StreamRefused("invalid_metadata", exc.msg, BAD_REQUEST_CLOSE) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'metadata'}: {e['msg']}" for e in exc.errors()
        )
        raise StreamRefused("invalid_metadata", problems, BAD_REQUEST_CLOSE) from None


async def _receive(websocket: WebSocket, session: CallSession, legs: list[str]) -> bool:
    """Feed audio until `{"type": "end"}` (True) or a disconnect (False)."""
    splitter = StereoSplitter() if len(legs) == 2 else None
    while (message := await receive_frame(websocket)) is not None:
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > MAX_AUDIO_FRAME_BYTES:
                await _error(
                    websocket,
                    "frame_too_large",
                    f"audio frame of {len(data)} bytes exceeds {MAX_AUDIO_FRAME_BYTES}; dropped",
                )
            elif splitter is None:
                session.feed(legs[0], data)
            else:
                left, right = splitter.split(data)
                if left:
                    session.feed(legs[0], left)
                    session.feed(legs[1], right)
            continue
        if text is None:
            continue
        try:
            body = load_message(text)
        except ValueError as exc:
            await _error(websocket, "invalid_json", f"not JSON: {exc}")
            continue
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "end":
            return True
        await _error(websocket, "unknown_message", f"unknown message type {echo(kind)}; ignored")
    return False


async def _error(websocket: WebSocket, code: str, message: str) -> None:
    logger.warning("audio fork: bad message", extra={"code": code, "reason": message})
    await send_json(websocket, _render_error(code, message))
