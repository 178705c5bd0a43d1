"""Deepgram-compatible turn-based live recognition, `listen` v2 (Flux's shape):
`WS /v2/listen`.

Query: `encoding`, `sample_rate`, `eot_threshold`, `eager_eot_threshold` (turns on
`EagerEndOfTurn`/`TurnResumed`), `eot_timeout_ms`, `keyterm`, `language_hint`. The server
sends `Connected`, then `TurnInfo` messages (`service.deepgram.turns`); the client sends
audio, `Configure` (new thresholds and keyterms: `ConfigureSuccess` or `ConfigureFailure`),
`ForceEndTurn` (end the turn now), `KeepAlive` and `CloseStream` (the open turn ends, then
the socket closes).
"""

import asyncio
import logging
from dataclasses import replace

from fastapi import APIRouter, WebSocket

from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder
from asr_core.errors import AsrError
from asr_core.streaming import EndpointOptions, Error, StreamingRecognizer
from service.deepgram.controls import IDLE_TIMEOUT_S, BadControl, read_control
from service.deepgram.handshake import open_listen
from service.deepgram.params import MAX_KEYTERMS, ListenParams
from service.deepgram.turns import Thresholds, Turns, flux_endpointing
from service.hotwords import CallerHotwords
from service.live import MAX_AUDIO_FRAME_BYTES, FrameReader, Outbox, close_quietly, render_native
from service.state import ServiceState, StateDep

logger = logging.getLogger(__name__)
router = APIRouter()

CONTROLS = ("CloseStream", "Configure", "ForceEndTurn", "KeepAlive")


class _TurnSink:
    """Recognizer events in, `TurnInfo` messages out (through the socket's outbox)."""

    def __init__(self, turns: Turns, outbox: Outbox) -> None:
        self.turns = turns
        self.outbox = outbox

    def put_nowait(self, event: object) -> None:
        if isinstance(event, Error):
            self.send([fatal(self.turns, event.code, event.message)])
            return
        self.send(self.turns.on_event(event))

    def send(self, messages: list[dict]) -> None:
        for message in messages:
            self.outbox.put(message)


def fatal(turns: Turns, code: str, description: str) -> dict:
    return {
        "type": "Error",
        "sequence_id": turns.sequence_id,
        "code": code,
        "description": description,
    }


def _thresholds(params: ListenParams) -> Thresholds:
    return Thresholds(params.eot_threshold, params.eager_eot_threshold, params.eot_timeout_ms)


def _recognizer(state: ServiceState, params: ListenParams, sink: _TurnSink) -> StreamingRecognizer:
    silence, speculate = flux_endpointing(sink.turns.thresholds)
    rules = state.config.rules
    default = rules.streaming.endpoint
    endpoint = EndpointOptions(silence_ms=silence, max_segment_s=default.max_segment_s)
    options = replace(
        rules.stream_options(params.language, endpoint, True),
        speculate_after_ms=speculate,
        utterance_end_ms=None,
    )
    return StreamingRecognizer(
        state.scheduler,
        options,
        state.metrics.streams,
        events=sink,  # type: ignore[arg-type]  (events arrive through put_nowait)
    )


@router.websocket("/v2/listen")
async def listen_v2(websocket: WebSocket, state: StateDep) -> None:
    opened = await open_listen(websocket, state)
    if opened is None:
        return
    params = opened.params
    outbox = Outbox(websocket, render_native)
    turns = Turns(opened.request_id, _thresholds(params))
    sink = _TurnSink(turns, outbox)
    metrics = state.metrics.streams
    metrics.active_streams.labels(protocol="deepgram_flux").inc()
    recognizer: StreamingRecognizer | None = None
    reader: FrameReader | None = None
    try:
        hotwords = await CallerHotwords.for_caller(
            websocket, state.config.hotwords_for, params.hotwords
        )
        recognizer = _recognizer(state, params, sink)
        recognizer.set_hotwords(hotwords)
        raw = RawFormat(params.raw_encoding, params.raw_sample_rate, 1)
        decoder = StreamDecoder(raw)
        outbox.put(turns.connected())
        reader = FrameReader(websocket)
        ended = await _receive(reader, sink, recognizer, decoder, hotwords, state)
        if ended is None:
            return
        await recognizer.push(decoder.flush())
        await recognizer.close()
        await outbox.drain()
        await close_quietly(websocket)
    finally:
        metrics.active_streams.labels(protocol="deepgram_flux").dec()
        if recognizer is not None:
            recognizer.abort()
        if reader is not None:
            reader.cancel()
        outbox.cancel()
        opened.slot.release()


async def _receive(
    reader: FrameReader,
    sink: _TurnSink,
    recognizer: StreamingRecognizer,
    decoder: StreamDecoder,
    hotwords: CallerHotwords,
    state: ServiceState,
) -> bool | None:
    """Frames until `CloseStream` or silence (True), or the client leaving (None)."""
    turns = sink.turns
    while True:
        try:
            message = await asyncio.wait_for(reader.next(), IDLE_TIMEOUT_S)
        except TimeoutError:
            sink.send([fatal(turns, "NET-0001", "no audio or KeepAlive in 10 s")])
            return True
        if message is None:
            return None
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > MAX_AUDIO_FRAME_BYTES:
                sink.send([fatal(turns, "DATA-0000", "audio frame over 1 MB dropped")])
                continue
            await recognizer.push(decoder.decode(data))
            sink.send(turns.on_audio(decoder.input_seconds))
        elif text is not None:
            try:
                control = read_control(text, CONTROLS)
            except BadControl as exc:
                sink.send([fatal(turns, "INVALID_MESSAGE", str(exc))])
                continue
            if control["type"] == "CloseStream":
                return True
            if control["type"] == "ForceEndTurn":
                await recognizer.commit()
            if control["type"] == "Configure":
                sink.send([_configure(control, turns, recognizer, hotwords, state)])


def _configure(
    message: dict,
    turns: Turns,
    recognizer: StreamingRecognizer,
    hotwords: CallerHotwords,
    state: ServiceState,
) -> dict:
    """New thresholds from now on, new keyterms from the next turn."""
    try:
        thresholds = _new_thresholds(turns.thresholds, message.get("thresholds") or {})
        keyterms = message.get("keyterms")
        extra = hotwords.extra
        if keyterms is not None:
            if not isinstance(keyterms, list) or len(keyterms) > MAX_KEYTERMS:
                raise ValueError(f"keyterms: a list of at most {MAX_KEYTERMS} phrases")
            if not all(isinstance(k, str) for k in keyterms):
                raise ValueError("keyterms: phrases are strings")
            extra = state.config.rules.phrase_hotwords(keyterms, source="keyterms")
    except (ValueError, AsrError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "message", None) or str(exc)
        return turns.message(
            {
                "type": "ConfigureFailure",
                "request_id": turns.request_id,
                "code": "INVALID_CONFIGURE",
                "description": reason,
            }
        )
    hotwords.extra = extra
    turns.thresholds = thresholds
    recognizer.set_endpointing(*flux_endpointing(thresholds))
    return turns.message(
        {
            "type": "ConfigureSuccess",
            "request_id": turns.request_id,
            "thresholds": thresholds.as_dict(),
            "keyterms": [] if extra is None else [h.phrase for h in extra.hotwords.entries],
        }
    )


def _new_thresholds(current: Thresholds, given: object) -> Thresholds:
    if not isinstance(given, dict):
        raise ValueError("thresholds: an object")
    bounds = {
        "eot_threshold": (0.5, 0.9),
        "eager_eot_threshold": (0.3, 0.9),
        "eot_timeout_ms": (500, 10_000),
    }
    values = current.as_dict()
    for name, value in given.items():
        if name not in bounds:
            raise ValueError(f"thresholds: unknown {str(name)[:40]!r}")
        low, high = bounds[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ValueError(f"thresholds.{name}: a number in {low}-{high}")
        values[name] = value
    return Thresholds(
        float(values["eot_threshold"]),
        None if values["eager_eot_threshold"] is None else float(values["eager_eot_threshold"]),
        int(values["eot_timeout_ms"]),
    )
