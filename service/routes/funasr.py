"""FunASR-runtime-compatible WebSocket, at `/` (where FunASR's clients connect) and
`/v1/funasr`, so existing FunASR clients work unchanged.

Per file on the connection: a JSON config (`mode` 2pass|online|offline, `wav_name`,
`wav_format` pcm|others, `audio_fs`, `hotwords` as `{"phrase": weight}` JSON or comma-separated,
`is_speaking: true`), binary audio (PCM16 mono at `audio_fs`, or the raw bytes of any audio file
for `others`), then `{"is_speaking": false}`. Replies:

- `2pass-online` / `online`: text to append to the running line (in `2pass`, a partial's
  text as soon as it is decoded; in `online`, the part of it that became stable);
- `2pass-offline` / `offline`: a finished sentence's final text (it replaces the running line)
  with `timestamp` `[[start_ms, end_ms], ...]` per word;
- after `is_speaking: false`, once everything is out: a message with `is_final` and `is_end`.
"""

import json
import logging
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder
from asr_core.errors import AsrError
from asr_core.streaming import Error, Final, Partial, StreamingRecognizer
from asr_core.transcript import Transcript
from common.errors import TooManyRequests
from common.rules import check_sample_rate
from service.config import ServiceConfig
from service.hotwords import CallerHotwords
from service.live import (
    MAX_AUDIO_FRAME_BYTES,
    MAX_TEXT_FRAME_CHARS,
    RATE_LIMITED_CLOSE,
    REASON_BYTES,
    FrameReader,
    Outbox,
    Owned,
    accept,
    close_quietly,
    load_message,
    new_recognizer,
)
from service.quotas import Slot
from service.state import ServiceState, StateDep

logger = logging.getLogger(__name__)
router = APIRouter()

MODES = ("2pass", "online", "offline")
TOO_LARGE_CLOSE = 4413
"""A file buffered whole (`offline`, `others`) grew past the upload limit."""


@dataclass
class _File:
    """One file (`wav_name`) being recognised on the connection."""

    name: str
    mode: str
    raw: bool
    """True for `wav_format: others`: the bytes of an audio file, decoded at the end."""
    sample_rate: int
    hotwords: CallerHotwords
    recognizer: StreamingRecognizer | None = None
    decoder: StreamDecoder | None = None
    buffered: bytearray = field(default_factory=bytearray)
    """Audio of a file decoded whole at its end, within `ServiceConfig.max_upload_bytes`."""
    slot: Slot = field(default_factory=Slot)
    """A file decoded whole counts as one of its tenant's transcriptions, from its start."""
    sent: str = ""
    """The running line: online texts already sent for the open sentence."""
    committed: str = ""
    """Every finished sentence's text as the client has it (to space English sentences)."""


class _Renderer:
    """Turns recognizer events into FunASR messages for the file each belongs to.

    FunASR clients append every online text to a running line and replace that line with
    each offline text. In `2pass` mode the online texts are the partials' whole greedy text,
    sent as soon as a partial arrives (FunASR's own online model commits text every 600 ms
    the same way), because the sentence's offline text corrects the line right after. In
    `online` mode nothing corrects it, so only the partials' stable part is sent, and the
    final adds what that did not cover.
    """

    def __init__(self) -> None:
        self.file: _File | None = None
        """The file the connection is receiving. A file's events render as that file's
        (`Owned`), also when the socket sends them after the file has ended."""

    def render(self, message: object) -> dict | None:
        if isinstance(message, dict):
            return message
        if not isinstance(message, Owned):
            return None
        file, event = message.owner, message.event
        if isinstance(event, Partial):
            return self._online(file, event)
        if isinstance(event, Final):
            return self._offline(file, event)
        if isinstance(event, Error):
            return {
                "wav_name": file.name,
                "is_final": False,
                "error": event.message,
                "code": event.code,
            }
        return None

    def _online(self, file: _File, partial: Partial) -> dict | None:
        if file.mode == "offline":
            return None
        shown = partial.text if file.mode == "2pass" else partial.stable
        increment = _continuation(file.sent, shown, file.committed)
        if not increment.strip():
            return None
        file.sent += increment
        return {
            "mode": f"{_prefix(file)}online",
            "text": increment,
            "wav_name": file.name,
            "is_final": False,
        }

    def _offline(self, file: _File, final: Final) -> dict | None:
        sent, file.sent = file.sent, ""
        if file.mode == "online":  # no second pass: only what the online texts did not cover
            text = _continuation(sent, final.text, file.committed)
            file.committed += sent + text
            if not text.strip():
                return None
        else:
            text = _spaced(file.committed, final.text)
            file.committed += text
        return {
            "mode": f"{_prefix(file)}offline" if file.mode == "2pass" else "online",
            "text": text,
            "wav_name": file.name,
            "is_final": False,
            "timestamp": json.dumps([[w.start_ms, w.end_ms] for w in final.words]),
        }


def _prefix(file: _File) -> str:
    return "2pass-" if file.mode == "2pass" else ""


def _spaced(before: str, text: str) -> str:
    """FunASR clients concatenate texts: a Latin word after Latin text gets a space."""
    text = text.strip()
    latin_before = before and before[-1].isascii() and not before[-1].isspace()
    if latin_before and text and text[0].isascii() and text[0].isalnum():
        return " " + text
    return text


_UNIT = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")
"""Alignment units: one Chinese character, or a run of other non-space characters."""


def _continuation(sent: str, text: str, before: str) -> str:
    """What to append to a running line that shows `sent` (after `before`) so it shows `text`.

    A line only grows. When `text` revises what was sent (a partial's unstable words
    changed), the two are aligned unit by unit and only what lies beyond the sent part is
    appended; the offline text puts the line right.
    """
    if not sent:
        return _spaced(before, text)
    if text.startswith(sent):
        return text[len(sent) :]  # as is: it may go on inside the last word
    sent_units = _UNIT.findall(sent)
    spans = [match.span() for match in _UNIT.finditer(text)]
    units = [text[start:end] for start, end in spans]
    matcher = SequenceMatcher(None, sent_units, units, autojunk=False)
    blocks = [block for block in matcher.get_matching_blocks() if block.size]
    covered = len(sent_units)
    if blocks:  # the last common stretch, and as many units after it as the sent part had
        last = blocks[-1]
        covered = last.b + last.size + (len(sent_units) - last.a - last.size)
    return _spaced(sent, text[spans[covered][0] :]) if covered < len(spans) else ""


@router.websocket("/")
@router.websocket("/v1/funasr")
async def funasr_stream(websocket: WebSocket, state: StateDep) -> None:
    subprotocol = "binary" if "binary" in websocket.scope.get("subprotocols", []) else None
    slot = await accept(websocket, state, subprotocol)
    if slot is None:
        return
    metrics = state.metrics.streams
    renderer = _Renderer()
    outbox = Outbox(websocket, renderer.render)
    reader = FrameReader(websocket)
    metrics.active_streams.labels(protocol="funasr").inc()
    try:
        while (message := await reader.next()) is not None:
            if message.get("bytes") is not None:
                refusal = await _audio(renderer.file, message["bytes"], outbox, state.config)
            elif message.get("text") is not None:
                refusal = await _control(message["text"], websocket, renderer, outbox, state)
            else:
                refusal = None
            if refusal is not None:
                await outbox.drain()
                await close_quietly(websocket, *refusal)
                return
        await close_quietly(websocket)
    finally:
        metrics.active_streams.labels(protocol="funasr").dec()
        _drop(renderer.file)
        reader.cancel()
        outbox.cancel()
        slot.release()


def _drop(file: _File | None) -> None:
    """A file given up (the client went, started another, or broke a limit)."""
    if file is None:
        return
    if file.recognizer is not None:
        file.recognizer.abort()
    file.buffered = bytearray()
    file.slot.release()


Refusal = tuple[int, str]
"""Close code and reason of a connection that broke a limit."""


async def _control(
    text: str, websocket: WebSocket, renderer: _Renderer, outbox: Outbox, state: ServiceState
) -> Refusal | None:
    if len(text) > MAX_TEXT_FRAME_CHARS:
        outbox.put(_file_error("", "message_too_large", "a text message was too long"))
        return TOO_LARGE_CLOSE, "message too large"
    try:
        message = load_message(text)
        if not isinstance(message, dict):
            raise ValueError("expected a JSON object")
    except ValueError as exc:
        outbox.put(
            {"is_final": False, "error": f"invalid message: {exc}", "code": "invalid_message"}
        )
        return None
    if "mode" in message or renderer.file is None:
        _drop(renderer.file)  # a new file without ending the last one
        renderer.file = None
        try:
            extra = await state.config.rules.funasr_hotwords_in_thread(message.get("hotwords"))
            hotwords = await CallerHotwords.for_caller(websocket, state.config.hotwords_for, extra)
            renderer.file = _start(message, hotwords, outbox, state, websocket.state.principal)
        except TooManyRequests as exc:
            outbox.put(_file_error(message.get("wav_name"), exc.code, exc.reason))
            return RATE_LIMITED_CLOSE, exc.reason[:REASON_BYTES]
        except (AsrError, ValueError) as exc:
            reason = getattr(exc, "reason", str(exc))
            outbox.put(_file_error(message.get("wav_name"), "invalid_config", reason))
            return None
    if message.get("is_speaking") is False and renderer.file is not None:
        file = renderer.file
        try:
            await _finish(file, outbox, state)
        finally:
            file.slot.release()
            renderer.file = None
    return None


def _file_error(name: object, code: str, reason: str) -> dict:
    return {
        "is_final": True,
        "is_end": True,
        "error": reason,
        "code": code,
        "wav_name": str(name or "demo")[:256],
    }


def _start(
    config: dict, hotwords: CallerHotwords, outbox: Outbox, state: ServiceState, principal: object
) -> _File:
    mode = config.get("mode", "2pass")
    if mode not in MODES:
        raise ValueError(f"mode {str(mode)[:40]!r}: use one of {', '.join(MODES)}")
    sample_rate = check_sample_rate(config.get("audio_fs"))
    file = _File(
        name=str(config.get("wav_name") or "demo")[:256],
        mode=mode,
        raw=config.get("wav_format", "pcm") not in ("pcm", "wav", None),
        sample_rate=sample_rate,
        hotwords=hotwords,
    )
    if not file.raw:
        file.decoder = StreamDecoder(RawFormat("pcm_s16le", sample_rate))
    if mode != "offline" and not file.raw:
        file.recognizer = new_recognizer(
            state, state.config.rules.stream_options(), outbox, owner=file
        )
        file.recognizer.set_hotwords(hotwords)
    else:  # buffered whole, then transcribed: a transcription of its tenant from now on
        file.slot = state.quotas.transcription(principal)
    return file


async def _audio(
    file: _File | None, data: bytes, outbox: Outbox, config: ServiceConfig
) -> Refusal | None:
    if file is None:
        outbox.put(
            {
                "is_final": False,
                "error": "send a JSON config before audio",
                "code": "config_expected",
            }
        )
        return None
    if len(data) > MAX_AUDIO_FRAME_BYTES:
        error = Error("frame_too_large", f"audio frame of {len(data)} bytes was dropped")
        outbox.put(Owned(file, error))
        return None
    if file.recognizer is not None:
        await file.recognizer.push(file.decoder.decode(data))
        return None
    if len(file.buffered) + len(data) > config.max_upload_bytes:
        limit_mb = config.max_upload_bytes / 1_000_000
        reason = f"the file is larger than the upload limit of {limit_mb:g} MB"
        outbox.put(_file_error(file.name, "payload_too_large", reason))
        _drop(file)
        return TOO_LARGE_CLOSE, reason[:REASON_BYTES]
    file.buffered.extend(data)
    return None


async def _finish(file: _File, outbox: Outbox, state: ServiceState) -> None:
    """End of a file: send what is left, then the end-of-input acknowledgement."""
    if file.recognizer is not None:
        await file.recognizer.push(file.decoder.flush())
        await file.recognizer.close()
        outbox.put(
            {
                "mode": f"{_prefix(file)}offline" if file.mode == "2pass" else "online",
                "text": "",
                "wav_name": file.name,
                "is_final": True,
                "is_end": True,
            }
        )
        return
    try:
        transcript = await _transcribe_whole(file, state)
    except AsrError as exc:
        outbox.put(
            {
                "mode": "offline",
                "text": "",
                "wav_name": file.name,
                "is_final": True,
                "is_end": True,
                "error": exc.reason,
                "code": exc.code,
            }
        )
        return
    words = [w for s in transcript.segments for w in s.words or []]
    outbox.put(
        {
            "mode": "offline",
            "text": transcript.text,
            "wav_name": file.name,
            "is_final": True,
            "is_end": True,
            "timestamp": json.dumps([[round(w.start * 1000), round(w.end * 1000)] for w in words]),
        }
    )


async def _transcribe_whole(file: _File, state: ServiceState) -> Transcript:
    """Offline mode and `others` files: one file transcription of everything received."""
    raw = None if file.raw else RawFormat("pcm_s16le", file.sample_rate)
    options = state.config.rules.file_options(hotwords=file.hotwords(), word_timestamps=True)
    async with state.transcription_slots:
        return await run_in_threadpool(
            state.transcriber.transcribe, bytes(file.buffered), options, raw
        )
