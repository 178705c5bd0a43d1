"""Call sessions: what every gateway (SIP, media-stream adapters, WebRTC) feeds.

A `CallSession` is one call of one tenant with one or more legs (`agent`, `customer`, or
`mixed`). Each leg has its own live recognizer (with the tenant's hot-words, swapped from the
next segment when an admin edits them), its own WAV recording at 16 kHz, and its finals stored
in the database as they are sent. Events of every leg go to the call's live listeners.

Gateways call `feed(leg, bytes)` from any thread (pjsua2's media thread included): it never
blocks. A live leg cannot carry more audio than the time that passed (plus some slack for a
network burst): what floods in beyond that is dropped for that leg only (reported once as an
error event), so a broken or hostile sender cannot queue minutes of work ahead of other calls.
`end()` flushes the last finals, closes the recordings and the call row.

`CallHub` is the process-wide registry: it admits calls (refusing new ones, never degrading
live ones, when the decoder is saturated), keeps the active ones, and at start marks calls
left active by a killed process of this node as interrupted.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.crud.hotword_lists import encode
from admin_api.models import Call, Tenant, TranscriptSegment, utcnow
from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder
from asr_core.hotwords import HotwordIndex
from asr_core.streaming import Error, Final, StreamingRecognizer, to_dict
from common.rules import InvalidRequest, check_call_id, check_leg
from service.hotwords import combined
from telephony.refusal import CallRefused

logger = logging.getLogger(__name__)

AHEAD_SLACK_S = 10.0
"""How far a leg's audio may run ahead of the wall clock (a sender catching up after a network
stall) before what comes faster is dropped."""


@dataclass(frozen=True)
class TenantCaller:
    """Who a call belongs to, in the shape the service's hot-word hook expects."""

    tenant_id: str


class _Leg:
    def __init__(
        self, session: "CallSession", name: str, fmt: RawFormat, recording: Path | None
    ) -> None:
        self.session = session
        self.name = name
        self.decoder = StreamDecoder(fmt)
        self.bytes_per_second = (
            fmt.sample_rate * fmt.channels * (2 if fmt.encoding == "pcm_s16le" else 1)
        )
        self.accepted_s = 0.0
        self.first_at: float | None = None
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.events: asyncio.Queue = asyncio.Queue()
        self.recognizer = session.hub.new_recognizer(self.events, session.language)
        self.recognizer.set_hotwords(session.hotwords)
        self.recorder: wave.Wave_write | None = None
        if recording is not None:
            self.recorder = wave.open(str(recording), "wb")  # noqa: SIM115 (closed in run)
            self.recorder.setnchannels(1)
            self.recorder.setsampwidth(2)
            self.recorder.setframerate(16_000)
        self.dropped = 0
        self.pump = asyncio.create_task(self._pump())
        self.forward = asyncio.create_task(self._forward())

    def feed(self, data: bytes) -> None:
        """On the event loop: queue `data`, unless this leg is already far ahead of real time."""
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        seconds = len(data) / self.bytes_per_second
        if self.accepted_s + seconds > now - self.first_at + AHEAD_SLACK_S:
            self.dropped += 1
            if self.dropped == 1:
                self.events.put_nowait(
                    Error(
                        "audio_overflow",
                        f"leg {self.name}: audio arrives faster than real time; "
                        "what runs more than 10 s ahead is dropped",
                    )
                )
            return
        self.accepted_s += seconds
        self.chunks.put_nowait(data)

    async def _pump(self) -> None:
        try:
            while (data := await self.chunks.get()) is not None:
                audio = self.decoder.decode(data)
                self._record(audio)
                await self.recognizer.push(audio)
            tail = self.decoder.flush()
            self._record(tail)
            await self.recognizer.push(tail)
            await self.recognizer.close()
        finally:
            if self.recorder is not None:
                self.recorder.close()
            self.events.put_nowait(None)

    def _record(self, audio: np.ndarray) -> None:
        if self.recorder is not None and len(audio):
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
            self.recorder.writeframes(pcm.tobytes())

    async def _forward(self) -> None:
        while (event := await self.events.get()) is not None:
            if isinstance(event, Final):
                await asyncio.to_thread(
                    self.session.hub.store_final, self.session, self.name, event
                )
            self.session.hub.publish(self.session, {**to_dict(event), "leg": self.name})

    async def finish(self) -> None:
        await self.chunks.put(None)
        await asyncio.gather(self.pump, self.forward, return_exceptions=True)

    def abort(self) -> None:
        self.recognizer.abort()
        self.pump.cancel()
        self.forward.cancel()
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self.recorder.close()


class CallSession:
    def __init__(
        self,
        hub: "CallHub",
        call_id: str,
        tenant_id: str,
        source: str,
        language: str | None,
        hotwords,
        recordings: Path | None,
        slot,
    ) -> None:
        self.hub = hub
        self.slot = slot
        """The tenant's stream slot this call holds (per-tenant limits)."""
        self.id = call_id
        self.tenant_id = tenant_id
        self.source = source
        self.language = language
        self.hotwords = hotwords
        self.recordings = recordings
        self.legs: dict[str, _Leg] = {}
        self.ended = False
        self._ending: asyncio.Future | None = None
        self._loop = asyncio.get_running_loop()

    def add_leg(self, name: str, fmt: RawFormat) -> None:
        """A leg's audio format (`RawFormat("mulaw", 8000)`, `("pcm_s16le", 16000)`, ...)."""
        if name in self.legs:
            raise ValueError(f"call {self.id} already has a leg {name!r}")
        check_leg(name)
        recording = self.recordings / f"{name}.wav" if self.recordings else None
        self.legs[name] = _Leg(self, name, fmt, recording)

    def feed(self, leg: str, data: bytes) -> None:
        """Audio for a leg, from any thread; never blocks (see the module docstring)."""
        if self.ended:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._feed(leg, data)
        else:
            self._loop.call_soon_threadsafe(self._feed, leg, data)

    def _feed(self, leg: str, data: bytes) -> None:
        if not self.ended:
            self.legs[leg].feed(data)

    async def end(self, reason: str = "hangup") -> None:
        """Flush every leg's last final, close the recordings and the call row. It runs to the
        end even if the caller is cancelled (a handler whose client vanished)."""
        if self._ending is None:
            self.ended = True
            self._ending = asyncio.ensure_future(self._finish(reason))
        await asyncio.shield(self._ending)

    async def _finish(self, reason: str) -> None:
        await asyncio.gather(*(leg.finish() for leg in self.legs.values()))
        await self.hub.closed(self, "ended", reason)

    async def abort(self, reason: str) -> None:
        """Drop everything pending now (the gateway is going down)."""
        if self.ended:
            return
        self.ended = True
        for leg in self.legs.values():
            leg.abort()
        await self.hub.closed(self, "interrupted", reason)


class CallHub:
    """The active calls of this process, their admission, storage and listeners."""

    def __init__(
        self,
        app_state,
        database: Engine,
        recordings_dir: Path | None,
        node: str,
        max_calls: int = 32,
        max_waiting_finals: int = 8,
        after_call: Callable[[str], None] | None = None,
    ) -> None:
        self.state = app_state
        self.database = database
        self.recordings_dir = recordings_dir
        self.node = node
        """This process's name in `Call.node`: at start, its calls still active are stale."""
        self.max_calls = max_calls
        self.max_waiting_finals = max_waiting_finals
        self.calls: dict[str, CallSession] = {}
        self._listeners: dict[str, set[asyncio.Queue]] = {}
        self.after_call = after_call
        """Called (in a thread) with the id of every recorded call once its recordings are
        closed and its row updated: the post-call pass is queued from here."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        stale = await asyncio.to_thread(self._close_stale_calls)
        if stale:
            logger.warning("calls left active by a previous run closed", extra={"calls": stale})

    async def stop(self) -> None:
        for session in list(self.calls.values()):
            await session.abort("the gateway is shutting down")

    def _close_stale_calls(self) -> int:
        with Session(self.database) as session:
            result = session.execute(
                update(Call)
                .where(Call.node == self.node, Call.status == "active")
                .values(status="interrupted", ended_at=utcnow())
            )
            session.commit()
            return result.rowcount or 0

    # -- calls -------------------------------------------------------------------------------

    async def open_call(
        self,
        tenant_id: str,
        source: str,
        call_id: str | None = None,
        language: str | None = None,
        hotwords: HotwordIndex | None = None,
    ) -> CallSession:
        """Admit a new call of `tenant_id` (raises `CallRefused`); add legs to it next.
        `hotwords`: phrases for this call only, on top of the tenant's lists."""
        finals_waiting, _ = self.state.scheduler.pending
        if len(self.calls) >= self.max_calls or finals_waiting >= self.max_waiting_finals:
            raise CallRefused(
                f"busy: {len(self.calls)} calls and {finals_waiting} finals waiting here",
                503,
                retry_after_s=5,
            )
        try:
            call_id = check_call_id(call_id) or uuid.uuid4().hex
        except InvalidRequest as broken:
            raise CallRefused(broken.message, broken.status) from None
        if call_id in self.calls:
            raise CallRefused(f"call {call_id} is already in progress", 486)
        tenant_exists, id_used = await asyncio.to_thread(self._lookup, tenant_id, call_id)
        if not tenant_exists:
            raise CallRefused(f"no tenant {tenant_id!r}", 404)
        if id_used:
            raise CallRefused(f"call id {call_id} was used by an earlier call", 409)
        slot = self.state.quotas.stream(TenantCaller(tenant_id))
        hook = self.state.config.hotwords_for
        caller = TenantCaller(tenant_id)
        if hook is not None:
            await asyncio.to_thread(hook, caller)  # the first lookup may query

        extra = hotwords

        def call_hotwords() -> HotwordIndex | None:
            return combined(hook(caller) if hook is not None else None, extra)

        recordings = None
        if self.recordings_dir is not None:
            recordings = self.recordings_dir / tenant_id / call_id
            recordings.mkdir(parents=True, exist_ok=True)
        try:
            await asyncio.to_thread(
                self._insert_call, call_id, tenant_id, source, recordings, language
            )
        except Exception:
            slot.release()
            raise
        session = CallSession(
            self, call_id, tenant_id, source, language, call_hotwords, recordings, slot
        )
        self.calls[call_id] = session
        self.state.metrics.streams.active_streams.labels(protocol=f"call-{source}").inc()
        logger.info("call started", extra={"call": call_id, "tenant": tenant_id, "source": source})
        return session

    def new_recognizer(self, events: asyncio.Queue, language: str | None) -> StreamingRecognizer:
        return StreamingRecognizer(
            self.state.scheduler,
            self.state.config.rules.stream_options(language),
            self.state.metrics.streams,
            events=events,
        )

    async def closed(self, session: CallSession, status: str, reason: str) -> None:
        self.calls.pop(session.id, None)
        session.slot.release()
        self.state.metrics.streams.active_streams.labels(protocol=f"call-{session.source}").dec()
        await asyncio.to_thread(self._close_call, session.id, status, session.hotwords())
        self.publish(session, {"type": "call_ended", "status": status, "reason": reason})
        for queue in self._listeners.pop(session.id, set()):
            queue.put_nowait(None)
        logger.info("call ended", extra={"call": session.id, "status": status, "reason": reason})
        if self.after_call is not None and session.recordings is not None and session.legs:
            try:
                await asyncio.to_thread(self.after_call, session.id)
            except Exception:  # the broker being down must not fail a hang-up
                logger.exception("post-call pass not queued", extra={"call": session.id})

    # -- listeners ---------------------------------------------------------------------------

    def listen(self, call_id: str) -> asyncio.Queue:
        """Events of an active call, each a dict with its `leg`; None after the call ends."""
        queue: asyncio.Queue = asyncio.Queue(1000)
        self._listeners.setdefault(call_id, set()).add(queue)
        return queue

    def unlisten(self, call_id: str, queue: asyncio.Queue) -> None:
        self._listeners.get(call_id, set()).discard(queue)

    def publish(self, session: CallSession, event: dict) -> None:
        message = {"call_id": session.id, **event}
        for queue in list(self._listeners.get(session.id, ())):
            if queue.full():  # a listener that stopped reading loses its oldest events
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    # -- storage (worker threads) ------------------------------------------------------------

    def _lookup(self, tenant_id: str, call_id: str) -> tuple[bool, bool]:
        """Whether the tenant exists, and whether the call id is taken."""
        with Session(self.database) as session:
            return (
                session.get(Tenant, tenant_id) is not None,
                session.get(Call, call_id) is not None,
            )

    def _insert_call(
        self,
        call_id: str,
        tenant_id: str,
        source: str,
        recordings: Path | None,
        language: str | None,
    ) -> None:
        with Session(self.database) as session:
            session.add(
                Call(
                    id=call_id,
                    tenant_id=tenant_id,
                    source=source,
                    node=self.node,
                    recording_path=str(recordings) if recordings else None,
                    language=language,
                )
            )
            session.commit()

    def store_final(self, session: CallSession, leg: str, final: Final) -> None:
        words = [
            {"word": w.word, "start_ms": w.start_ms, "end_ms": w.end_ms, "confidence": w.confidence}
            for w in final.words
        ]
        with Session(self.database) as db:
            db.add(
                TranscriptSegment(
                    call_id=session.id,
                    leg=leg,
                    start_ms=final.start_ms,
                    end_ms=final.end_ms,
                    text=final.text,
                    words=json.dumps(words, ensure_ascii=False),
                    language=final.language,
                    hotword_version=final.hotword_version,
                )
            )
            db.commit()

    def _close_call(self, call_id: str, status: str, hotwords: HotwordIndex | None) -> None:
        """Close the row, with the hot-words the call ended with (for the post-call pass)."""
        with Session(self.database) as db:
            call = db.get(Call, call_id)
            if call is not None:
                call.status = status
                call.ended_at = utcnow()
                if hotwords is not None:
                    call.hotwords = encode(hotwords.hotwords.entries)
                    call.hotword_version = hotwords.hotwords.version
                db.add(call)
                db.commit()
