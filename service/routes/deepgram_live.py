"""Deepgram-compatible live recognition, `listen` v1: `WS /v1/listen`.

What Deepgram's SDKs, Pipecat's `DeepgramSTTService` and LiveKit's Deepgram plugin speak,
over the same recognizer and scheduler as `/v1/stream`:

- the options are query parameters (`service.deepgram.params`), the caller's key comes in
  `Authorization: Token|Bearer KEY` or `Sec-WebSocket-Protocol: token, KEY`;
- binary frames are audio (`encoding`, `sample_rate`, `channels`; with `multichannel=true`
  each channel is recognised on its own and answers with its `channel_index`);
- text frames are control messages: `KeepAlive`, `Finalize` (end the open utterance now:
  its result has `from_finalize: true`), `CloseStream` (finish: last results, `Metadata`,
  close);
- the server sends `Metadata` first and last, `Results` (interim ones with
  `interim_results=true`; finals with `is_final`, and `speech_final` where the speaker
  paused for `endpointing` ms), `SpeechStarted` (with `vad_events=true`) and `UtteranceEnd`
  (with `utterance_end_ms`).

Without a message for `IDLE_TIMEOUT_S` the stream is finished and closed with 1011, as
Deepgram does (`NET-0001`); `KeepAlive` keeps it open.
"""

import asyncio
import logging
from dataclasses import replace

from fastapi import APIRouter, WebSocket

from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder
from asr_core.streaming import (
    EndpointOptions,
    Error,
    Final,
    Partial,
    SpeechStarted,
    StreamingOptions,
    StreamingRecognizer,
    UtteranceEnd,
)
from service.deepgram.channels import ChannelSplitter
from service.deepgram.controls import IDLE_TIMEOUT_S, BadControl, read_control
from service.deepgram.handshake import open_listen
from service.deepgram.messages import LiveMessages, ModelInfo
from service.deepgram.params import ListenParams
from service.hotwords import CallerHotwords
from service.live import (
    MAX_AUDIO_FRAME_BYTES,
    FrameReader,
    Outbox,
    close_quietly,
    render_native,
)
from service.state import ServiceState, StateDep

logger = logging.getLogger(__name__)
router = APIRouter()

CONTROLS = ("KeepAlive", "Finalize", "CloseStream")
MIN_ENDPOINTING_MS = 300
"""Shorter `endpointing` (Deepgram's default is 10 ms) would cut utterances at every breath;
the final is prepared after 100 ms of silence anyway (see docs/voicebots.md)."""
IDLE_CLOSE = 1011


def endpoint_options(params: ListenParams, state: ServiceState) -> EndpointOptions:
    """`endpointing` as the silence that closes an utterance (300-5000 ms)."""
    default = state.config.rules.streaming.endpoint
    if params.endpointing_ms is None:
        return default
    silence = min(max(params.endpointing_ms, MIN_ENDPOINTING_MS), 5000)
    return EndpointOptions(silence_ms=silence, max_segment_s=default.max_segment_s)


def stream_options(params: ListenParams, state: ServiceState, partials: bool) -> StreamingOptions:
    rules = state.config.rules
    options = rules.stream_options(params.language, endpoint_options(params, state), partials)
    return replace(options, utterance_end_ms=params.utterance_end_ms)


class _Leg:
    """One channel: its recognizer, whose events become Deepgram messages on the socket."""

    def __init__(
        self,
        index: int,
        state: ServiceState,
        params: ListenParams,
        messages: LiveMessages,
        outbox: Outbox,
    ) -> None:
        self.index = index
        self._params = params
        self._messages = messages
        self._outbox = outbox
        self.recognizer = StreamingRecognizer(
            state.scheduler,
            stream_options(params, state, params.interim_results),
            state.metrics.streams,
            events=self,  # type: ignore[arg-type]  (events arrive through put_nowait)
        )

    def finalized_nothing(self) -> None:
        """An empty final `from_finalize` result: nothing was open when `Finalize` came."""
        position = self.recognizer.received_ms
        empty = Final(self.recognizer.next_segment, "", position, position, "", reason="commit")
        self._outbox.put(self._messages.results(empty, self.index))

    def put_nowait(self, event: object) -> None:
        message = self._render(event)
        if message is not None:
            self._outbox.put(message)

    def _render(self, event: object) -> dict | None:
        messages, params = self._messages, self._params
        if isinstance(event, Final) or (isinstance(event, Partial) and params.interim_results):
            return messages.results(event, self.index)
        if isinstance(event, SpeechStarted) and params.vad_events:
            return messages.speech_started(event.start_ms, self.index)
        if isinstance(event, UtteranceEnd) and params.utterance_end_ms is not None:
            return messages.utterance_end(event.last_word_end_ms, self.index)
        if isinstance(event, Error):
            return error_message(event.code, event.message)
        return None


def error_message(code: str, message: str) -> dict:
    return {"type": "Error", "err_code": code, "err_msg": message, "description": message}


@router.websocket("/v1/listen")
async def listen_v1(websocket: WebSocket, state: StateDep) -> None:
    opened = await open_listen(websocket, state)
    if opened is None:
        return
    params = opened.params
    legs_count = params.channels if params.multichannel else 1
    messages = LiveMessages(
        opened.request_id,
        ModelInfo(state.transcriber.engine.model_name),
        legs_count,
        params.speech_final,
    )
    outbox = Outbox(websocket, render_native)
    metrics = state.metrics.streams
    metrics.active_streams.labels(protocol="deepgram").inc()
    legs: list[_Leg] = []
    reader: FrameReader | None = None
    try:
        hotwords = await CallerHotwords.for_caller(
            websocket, state.config.hotwords_for, params.hotwords
        )
        legs = [_Leg(i, state, params, messages, outbox) for i in range(legs_count)]
        for leg in legs:
            leg.recognizer.set_hotwords(hotwords)
        decoder = _decoder(params)
        outbox.put(messages.metadata(0.0))
        reader = FrameReader(websocket)
        ended = await _receive(reader, outbox, legs, decoder)
        if ended is None:
            return  # the client went away
        for leg, tail in zip(legs, decoder.flush(), strict=True):
            await leg.recognizer.push(tail)
        await asyncio.gather(*(leg.recognizer.close() for leg in legs))
        outbox.put(messages.metadata(decoder.input_seconds))
        await outbox.drain()
        if ended == "idle":
            await close_quietly(websocket, IDLE_CLOSE, "NET-0001: no audio received in time")
        else:
            await close_quietly(websocket)
    finally:
        metrics.active_streams.labels(protocol="deepgram").dec()
        for leg in legs:
            leg.recognizer.abort()
        if reader is not None:
            reader.cancel()
        outbox.cancel()
        opened.slot.release()


class _MixedDecoder:
    """All channels mixed into one leg (`multichannel=false`)."""

    def __init__(self, params: ListenParams) -> None:
        raw = RawFormat(params.raw_encoding, params.raw_sample_rate, params.channels)
        self._decoder = StreamDecoder(raw)

    def decode(self, data: bytes) -> list:
        return [self._decoder.decode(data)]

    def flush(self) -> list:
        return [self._decoder.flush()]

    @property
    def input_seconds(self) -> float:
        return self._decoder.input_seconds


def _decoder(params: ListenParams) -> "ChannelSplitter | _MixedDecoder":
    if params.multichannel and params.channels > 1:
        return ChannelSplitter(params.raw_encoding, params.raw_sample_rate, params.channels)
    return _MixedDecoder(params)


async def _receive(
    reader: FrameReader,
    outbox: Outbox,
    legs: list[_Leg],
    decoder: "ChannelSplitter | _MixedDecoder",
) -> str | None:
    """Handle frames until `CloseStream` ("close"), silence ("idle") or the client leaves
    (None)."""
    while True:
        try:
            message = await asyncio.wait_for(reader.next(), IDLE_TIMEOUT_S)
        except TimeoutError:
            outbox.put(error_message("NET-0001", "no audio or KeepAlive in 10 s"))
            return "idle"
        if message is None:
            return None
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > MAX_AUDIO_FRAME_BYTES:
                outbox.put(
                    error_message(
                        "DATA-0000", f"audio frame of {len(data)} bytes dropped (limit 1 MB)"
                    )
                )
                continue
            for leg, audio in zip(legs, decoder.decode(data), strict=True):
                await leg.recognizer.push(audio)
        elif text is not None:
            try:
                kind = read_control(text, CONTROLS)["type"]
            except BadControl as exc:
                outbox.put(error_message("INVALID_MESSAGE", str(exc)))
                continue
            if kind == "CloseStream":
                return "close"
            if kind == "Finalize":
                for leg in legs:
                    if not leg.recognizer.segment_open:
                        leg.finalized_nothing()  # Deepgram confirms a Finalize either way
                    await leg.recognizer.commit()
