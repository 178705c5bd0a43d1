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

Calls are opened by the `CallHub` (hub.py), which admits them and keeps the active ones.
"""

import asyncio
import contextlib
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr_core.audio import RawFormat
from asr_core.audio.stream import StreamDecoder
from asr_core.hotwords import HotwordIndex
from asr_core.streaming import Error, Final, to_dict
from common.rules import check_leg
from service.quotas import Slot

if TYPE_CHECKING:
    from telephony.hub import CallHub

AHEAD_SLACK_S = 10.0
"""How far a leg's audio may run ahead of the wall clock (a sender catching up after a network
stall) before what comes faster is dropped."""


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
        self.recognizer = session.hub.new_recognizer(self.events, session, name)
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
                    self.session.hub.storage.store_final, self.session.id, self.name, event
                )
            self.session.hub.listeners.publish(
                self.session.id, {**to_dict(event), "leg": self.name}
            )

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
        hotwords: Callable[[], HotwordIndex | None],
        recordings: Path | None,
        slot: Slot,
        phrases: HotwordIndex | None = None,
    ) -> None:
        self.hub = hub
        self.slot = slot
        """The tenant's stream slot this call holds (per-tenant limits)."""
        self.id = call_id
        self.tenant_id = tenant_id
        self.source = source
        self.language = language
        self.hotwords = hotwords
        """The tenant's lists as they are now, with the call's own phrases."""
        self.phrases = phrases
        """The call's own phrases (given when it opened), on top of the tenant's lists."""
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
