"""Native streaming WebSocket `/v1/stream`.

1. The client sends a JSON config (all fields optional):
   `{"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1, "language": "auto",
     "hotwords": "...", "interim_results": true, "endpoint_silence_ms": 500, "max_segment_s": 20,
     "utterance_end_ms": 1000}`
   and gets `{"type": "ready", ...}` back.
2. Then binary frames of audio in that encoding (PCM16 at 8, 16 or 48 kHz; μ-law or A-law at
   8 kHz), any size, and JSON control messages: `{"type": "hotwords", "hotwords": "..."}` (from
   the next segment), `{"type": "commit"}` (end the segment now), `{"type": "ping"}`, and
   `{"type": "end"}` (finish: the last final is sent, then `{"type": "closed"}`).
3. The server sends `partial`, `final`, `endpoint` and `error` events as JSON, and the turn
   events voice bots use: `speech_started`, `eager_final` (the final prepared at a pause) and
   `turn_resumed` (the speaker went on: that eager final is void), `utterance_end`.

A bad frame or message gets an `error` event and the stream goes on; a bad config ends it with
close code 4400. A stream has no length limit.
"""

import asyncio
import json
import logging
from dataclasses import replace
from typing import Literal

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder
from asr_core.errors import AsrError
from asr_core.hotwords import HotwordIndex
from asr_core.streaming import EndpointOptions, Error, StreamingOptions, StreamingRecognizer
from service.hotwords import CallerHotwords
from service.live import (
    MAX_AUDIO_FRAME_BYTES,
    MAX_TEXT_FRAME_CHARS,
    FrameReader,
    Outbox,
    accept,
    check_message,
    close_quietly,
    echo,
    load_message,
    new_recognizer,
    render_native,
)
from service.state import ServiceState, StateDep

logger = logging.getLogger(__name__)
router = APIRouter()

CONFIG_TIMEOUT_S = 30.0
BAD_CONFIG = 4400


class StreamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["start", "config"] = "start"
    encoding: Literal["pcm_s16le", "mulaw", "alaw"] = "pcm_s16le"
    sample_rate: Literal[8000, 16000, 48000] = 16000
    channels: int = Field(1, ge=1, le=2)
    language: str = "auto"
    hotwords: str | None = None
    interim_results: bool = True
    endpoint_silence_ms: int = Field(500, ge=100, le=5000)
    max_segment_s: float = Field(20.0, ge=2.0, le=30.0)
    utterance_end_ms: int | None = Field(1000, ge=200, le=10_000)

    @model_validator(mode="after")
    def _g711_is_8k(self) -> "StreamConfig":
        if self.encoding != "pcm_s16le" and self.sample_rate != 8000:
            raise ValueError(f"{self.encoding} is carried at 8000 Hz, not {self.sample_rate}")
        return self


@router.websocket("/v1/stream")
async def native_stream(websocket: WebSocket, state: StateDep) -> None:
    slot = await accept(websocket, state)
    if slot is None:
        return
    metrics = state.metrics.streams
    outbox = Outbox(websocket, render_native)
    recognizer: StreamingRecognizer | None = None
    reader: FrameReader | None = None
    metrics.active_streams.labels(protocol="native").inc()
    try:
        configured = await _read_config(websocket, outbox, state)
        if configured is None:
            return
        config, extra = configured
        decoder = StreamDecoder(RawFormat(config.encoding, config.sample_rate, config.channels))
        hotwords = await CallerHotwords.for_caller(websocket, state.config.hotwords_for, extra)
        recognizer = new_recognizer(state, _options(config, state), outbox)
        recognizer.set_hotwords(hotwords)
        outbox.put(
            {
                "type": "ready",
                "encoding": config.encoding,
                "sample_rate": config.sample_rate,
                "language": config.language,
                "interim_results": config.interim_results,
            }
        )
        reader = FrameReader(websocket, answer=lambda text: _answer_ping(text, outbox))
        if await _receive(reader, outbox, recognizer, decoder, hotwords, state):
            await recognizer.push(decoder.flush())
            await recognizer.close()
            outbox.put({"type": "closed"})
            await outbox.drain()
            await close_quietly(websocket)
    finally:
        metrics.active_streams.labels(protocol="native").dec()
        if recognizer is not None:
            recognizer.abort()
        if reader is not None:
            reader.cancel()
        outbox.cancel()
        slot.release()


def _answer_ping(text: str, outbox: Outbox) -> bool:
    """Pings are answered as they arrive, even while the stream's audio waits its turn."""
    if '"ping"' not in text:
        return False
    try:
        message = load_message(text)
    except json.JSONDecodeError:
        return False
    if not isinstance(message, dict) or message.get("type") != "ping":
        return False
    outbox.put({"type": "pong"})
    return True


async def _read_config(
    websocket: WebSocket, outbox: Outbox, state: ServiceState
) -> tuple[StreamConfig, HotwordIndex | None] | None:
    """The first message and its hot-words; a bad one is reported and ends the
    connection."""
    try:
        message = await asyncio.wait_for(websocket.receive(), CONFIG_TIMEOUT_S)
    except TimeoutError:
        return await _refuse(websocket, outbox, "config_timeout", "no config message in time")
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        return await _refuse(
            websocket, outbox, "config_expected", "send a JSON config message before audio"
        )
    if len(text) > MAX_TEXT_FRAME_CHARS:
        return await _refuse(
            websocket,
            outbox,
            "config_too_large",
            f"the config message is longer than {MAX_TEXT_FRAME_CHARS} characters",
        )
    try:
        check_message(text)
        config = StreamConfig.model_validate_json(text)
        state.config.rules.language(config.language)
        extra = await state.config.rules.hotwords_in_thread(config.hotwords)
    except ValidationError as exc:
        return await _refuse(websocket, outbox, "invalid_config", _validation_message(exc))
    except (ValueError, AsrError) as exc:
        return await _refuse(websocket, outbox, "invalid_config", getattr(exc, "reason", str(exc)))
    return config, extra


async def _refuse(websocket: WebSocket, outbox: Outbox, code: str, message: str) -> None:
    outbox.put(Error(code, message))
    await outbox.drain()
    await close_quietly(websocket, BAD_CONFIG, code)
    return None


def _options(config: StreamConfig, state: ServiceState) -> StreamingOptions:
    rules = state.config.rules
    endpoint = EndpointOptions(
        silence_ms=config.endpoint_silence_ms, max_segment_s=config.max_segment_s
    )
    options = rules.stream_options(
        rules.language(config.language), endpoint, config.interim_results
    )
    return replace(options, utterance_end_ms=config.utterance_end_ms)


async def _receive(
    reader: FrameReader,
    outbox: Outbox,
    recognizer: StreamingRecognizer,
    decoder: StreamDecoder,
    hotwords: CallerHotwords,
    state: ServiceState,
) -> bool:
    """Handle frames until the client ends the stream (True) or goes away (False)."""
    while (message := await reader.next()) is not None:
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > MAX_AUDIO_FRAME_BYTES:
                outbox.put(
                    Error(
                        "frame_too_large",
                        f"audio frame of {len(data)} bytes exceeds "
                        f"{MAX_AUDIO_FRAME_BYTES}; it was dropped",
                    )
                )
                continue
            await recognizer.push(decoder.decode(data))
            continue
        if text is None:
            continue
        if len(text) > MAX_TEXT_FRAME_CHARS:
            outbox.put(Error("message_too_large", "text message too large; it was ignored"))
            continue
        if await _control(text, outbox, recognizer, hotwords, state):
            return True
    return False


async def _control(
    text: str,
    outbox: Outbox,
    recognizer: StreamingRecognizer,
    hotwords: CallerHotwords,
    state: ServiceState,
) -> bool:
    """Apply a JSON control message; True when it ends the stream."""
    try:
        message = load_message(text)
        kind = message.get("type") if isinstance(message, dict) else None
    except json.JSONDecodeError as exc:
        outbox.put(Error("invalid_message", f"not JSON: {exc.msg} at character {exc.pos}"))
        return False
    if kind == "end":
        return True
    if kind == "commit":
        await recognizer.commit()
    elif kind == "hotwords":
        try:
            extra = await state.config.rules.hotwords_in_thread(message.get("hotwords"))
            hotwords.extra = extra  # from the next segment, like a standing-list change
        except AsrError as exc:
            outbox.put(Error(exc.code, exc.reason))
        else:
            outbox.put({"type": "hotwords_set", "applies_from_segment": recognizer.next_segment})
    else:
        outbox.put(
            Error(
                "invalid_message",
                f"unknown message type {echo(kind)}; expected commit, hotwords, ping or end",
            )
        )
    return False


def _validation_message(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors()
    )
