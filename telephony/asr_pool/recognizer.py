"""`RemoteRecognizer`: a call leg recognised by an ASR core of the pool, behind the interface a
call session uses from the in-process `asr_core.streaming.StreamingRecognizer` (`push`,
`commit`, `set_hotwords`, `close`, `abort`, events into the given queue), so the call hub and
the gateways do not know where a leg is decoded.

Its life: connect to the least-loaded core with room (trying the next on a refusal), send the
audio as it comes and pass the core's events on, shifted to the leg's time line. When the
core's socket drops, connect to another core and replay the audio since the last final
(`replay.py`) before the live audio: the interrupted segment's final still arrives, once, with
the next segment id. `close` sends the end and waits for the core's last finals (moving again
if the core dies meanwhile).
"""

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from asr_core import SAMPLE_RATE
from asr_core.errors import AsrError
from asr_core.streaming import Error, Event, Final
from telephony.asr_pool.client import CoreRefused, CoreStream, StreamRequest
from telephony.asr_pool.pool import AsrPool, Core
from telephony.asr_pool.replay import BYTES_PER_SAMPLE, Renumbering, ReplayBuffer

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64_000
"""Audio per binary frame (2 s): a replay goes out in few frames, live audio as it comes."""


@dataclass(frozen=True)
class _Control:
    position: int
    """Sent after the audio before this stream position."""
    message: dict
    number: int


class RemoteRecognizer:
    def __init__(
        self, pool: AsrPool, request: StreamRequest, events: asyncio.Queue | None = None
    ) -> None:
        self.pool = pool
        self.request = request
        self.events: asyncio.Queue[Event] = events if events is not None else asyncio.Queue()
        self._buffer = ReplayBuffer(pool.config.replay_max_s)
        self._arrivals: deque[tuple[int, float]] = deque()
        """(stream position, when the audio up to it was pushed), for the hop's latency."""
        self._controls: list[_Control] = []
        self._numbered = 0
        self._last_final = -1
        self._wrote = asyncio.Event()
        self._ending = False
        self._task = asyncio.create_task(self._run())

    # -- the recogniser's interface ----------------------------------------------------------

    async def push(self, audio: np.ndarray) -> None:
        """16 kHz mono float32 audio; never waits (what no core has heard yet is kept)."""
        if self._ending:
            raise AsrError("the stream is closed")
        if not len(audio):
            return
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._buffer.append(pcm)
        self._arrivals.append((self._buffer.end, time.monotonic()))
        self._forget_arrivals()
        self._wrote.set()

    async def commit(self) -> None:
        """Close the open segment now (sent in order with the audio)."""
        self._control({"type": "commit"})

    def set_hotwords(self, hotwords: object) -> None:
        """The core applies the tenant's standing lists itself, looked up at every segment
        start as in-process (the tenant travels with the stream), and the call's own phrases
        go with the stream's config: nothing to swap here."""

    async def close(self) -> None:
        """End of the leg: the last finals arrive, then this returns (at most
        `close_timeout_s` later, even with no core left)."""
        if not self._ending:
            self._ending = True
            self._control({"type": "end"})
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.pool.config.close_timeout_s)
        except TimeoutError:
            self.abort()
            self._emit(Error("asr_unavailable", f"{self._name}: no ASR core gave the last finals"))

    def abort(self) -> None:
        """The leg is dropped: stop at once."""
        self._ending = True
        self._task.cancel()

    # -- streaming to a core -----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._stream()
        except Exception:  # a bug here must not pass silently: the leg's listeners are told
            logger.exception("call leg's ASR stream failed", extra={"call": self.request.call_id})
            self._emit(Error("asr_failed", f"{self._name}: the stream to the ASR cores failed"))

    async def _stream(self) -> None:
        """Connect, stream, move on a drop; returns once the core sent its last final."""
        lost_at: float | None = None
        avoid: Core | None = None
        while True:
            connected = await self._connect(avoid)
            if connected is None:
                return
            stream, core = connected
            renumbering = Renumbering(self._buffer.start, self._last_final + 1)
            if lost_at is not None:
                self.pool.metrics.reconnects.inc()
                self.pool.metrics.replayed_seconds.inc(self._buffer.seconds)
                logger.warning(
                    "call leg moved to another ASR core",
                    extra={
                        "call": self.request.call_id,
                        "leg": self.request.leg,
                        "core": core.url,
                        "replayed_s": round(self._buffer.seconds, 2),
                    },
                )
            sender = asyncio.create_task(self._send(stream, self._buffer.start, lost_at))
            try:
                finished = await self._receive(stream, renumbering)
            finally:
                sender.cancel()
                self.pool.left(core)
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    stream.abort()
                else:
                    await stream.close()
            if finished:
                return
            lost_at, avoid = time.monotonic(), core
            self.pool.refused(core, "lost")

    async def _connect(self, avoid: Core | None) -> tuple[CoreStream, Core] | None:
        """A stream on the first core that takes it, trying again every `retry_s`; None once
        the leg has ended and no core took it within `close_timeout_s`."""
        config = self.pool.config
        reported = False
        started = time.monotonic()
        while True:
            for core in self.pool.candidates(avoid):
                self.pool.placed(core)
                try:
                    stream = await CoreStream.open(
                        core.url, config.service_key, self.request, config.connect_timeout_s
                    )
                except CoreRefused as refusal:
                    self.pool.left(core)
                    self.pool.refused(core, refusal.reason)
                    log = logger.error if refusal.reason == "unauthorized" else logger.warning
                    log("ASR core refused a stream", extra={"core": core.url, "why": str(refusal)})
                    continue
                return stream, core
            if not reported:
                reported = True
                self._emit(
                    Error(
                        "asr_unavailable",
                        f"{self._name}: no ASR core can take this leg now; its audio is "
                        "kept and sent when one can",
                    )
                )
            if self._ending and time.monotonic() - started > config.close_timeout_s:
                return None
            await asyncio.sleep(config.retry_s)

    async def _send(self, stream: CoreStream, origin: int, lost_at: float | None) -> None:
        """The audio from `origin` on (the replay first, then live), with the controls in
        their places; ends when the socket does."""
        position, sent = origin, -1
        replay_end = self._buffer.end
        try:
            while True:
                self._wrote.clear()
                while True:
                    control = next(
                        (c for c in self._controls if c.number > sent and c.position >= origin),
                        None,
                    )
                    limit = control.position if control is not None else self._buffer.end
                    position = max(position, self._buffer.start)
                    if position < limit:
                        wanted = min((limit - position) * BYTES_PER_SAMPLE, MAX_FRAME_BYTES)
                        chunk = self._buffer.read(position, wanted)
                        await stream.send_audio(chunk)
                        position += len(chunk) // BYTES_PER_SAMPLE
                    elif control is not None:
                        await stream.send(control.message)
                        sent = control.number
                    else:
                        break
                if lost_at is not None and position >= replay_end:
                    self.pool.metrics.failover_seconds.observe(time.monotonic() - lost_at)
                    lost_at = None
                await self._wrote.wait()
        except Exception as exc:  # the socket dropped: the receiver sees it too
            logger.debug("stream to ASR core ended", extra={"why": str(exc)})
            stream.abort()

    async def _receive(self, stream: CoreStream, renumbering: Renumbering) -> bool:
        """Pass the core's events on; True once it has sent its last (`closed`)."""
        async for message in stream.events():
            if message.get("type") == "closed":
                return True
            try:
                event = renumbering.event(message)
            except (TypeError, ValueError):
                logger.warning("malformed event from an ASR core", extra={"event": str(message)})
                continue
            if isinstance(event, Final):
                if event.segment <= self._last_final:
                    continue  # sent before the move (never expected: the old core is gone)
                self._final_arrived(event)
            if event is not None:
                self._emit(event)
        return False

    def _final_arrived(self, final: Final) -> None:
        """Its audio needs no replay any more; the hop's latency is what it took from the
        end of its speech (as pushed) to here."""
        self._last_final = final.segment
        end = final.end_ms * SAMPLE_RATE // 1000
        self._buffer.release(end)
        self._controls = [
            c for c in self._controls if c.position > end or c.message["type"] == "end"
        ]
        pushed = next((at for position, at in self._arrivals if position >= end), None)
        if pushed is not None:
            self.pool.metrics.final_latency_seconds.observe(time.monotonic() - pushed)
        self._forget_arrivals()

    def _forget_arrivals(self) -> None:
        """Arrival times of audio no longer kept are not needed (bounded like the audio)."""
        while self._arrivals and self._arrivals[0][0] < self._buffer.start:
            self._arrivals.popleft()

    # -- helpers -----------------------------------------------------------------------------

    def _control(self, message: dict) -> None:
        self._controls.append(_Control(self._buffer.end, message, self._numbered))
        self._numbered += 1
        self._wrote.set()

    def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    @property
    def _name(self) -> str:
        return f"leg {self.request.leg} of call {self.request.call_id}"
