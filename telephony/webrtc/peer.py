"""One WebRTC call: its peer connection, its audio track fed to the call's `mixed` leg, and
the call's events sent back over the browser's `captions` data channel."""

import asyncio
import contextlib
import json
import logging

import av
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from asr_core.audio import RawFormat
from service.live import load_message

logger = logging.getLogger(__name__)

LEG = "mixed"
RATE = 48_000
FORMAT = RawFormat("pcm_s16le", RATE, channels=2)
"""What aiortc decodes Opus to: 48 kHz, s16 packed stereo, 960 samples per 20 ms."""
CAPTIONS = "captions"
CONNECT_S = 30.0
"""How long a peer may take from the answer to a connected media path."""
LINGER_S = 5.0
"""After the call ends, how long the peer stays up for the last events to reach the browser."""


class WebrtcCall:
    def __init__(self, gateway, pc: RTCPeerConnection, session) -> None:
        self.gateway = gateway
        self.pc = pc
        self.session = session
        self.hub = session.hub
        self.events = self.hub.listeners.listen(session.id)
        self.channel = None
        self.channel_open = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self._closing: asyncio.Task | None = None
        self._resampler: av.AudioResampler | None = None

    def start(self, track) -> None:
        self.tasks = [
            asyncio.create_task(self._receive(track)),
            asyncio.create_task(self._forward()),
            asyncio.create_task(self._watch_connect()),
        ]

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self.hang_up(f"connection {self.pc.connectionState}")

    def attach_channel(self, channel) -> None:
        if channel.label != CAPTIONS or self.channel is not None:
            return
        self.channel = channel

        @channel.on("message")
        def _message(message) -> None:
            with contextlib.suppress(ValueError, TypeError):
                if isinstance(message, str) and load_message(message).get("type") == "end":
                    self.hang_up("hangup")

        if channel.readyState == "open":
            self.channel_open.set()
        else:
            channel.on("open", self.channel_open.set)

    def _pcm(self, frame) -> bytes:
        if frame.format.name == "s16" and frame.layout.name == "stereo" and frame.rate == RATE:
            return frame.to_ndarray().tobytes()
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
        return b"".join(f.to_ndarray().tobytes() for f in self._resampler.resample(frame))

    async def _receive(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                self.session.feed(LEG, self._pcm(frame))
        except MediaStreamError:
            self.hang_up("track ended")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("webrtc audio failed", extra={"call": self.session.id})
            self.hang_up("audio error")

    async def _forward(self) -> None:
        """The call's events, in order, once the data channel is open (none before)."""
        try:
            while (event := await self.events.get()) is not None:
                await self.channel_open.wait()
                if self.channel is not None and self.channel.readyState == "open":
                    self.channel.send(json.dumps(event, ensure_ascii=False))
        finally:
            self.hub.listeners.unlisten(self.session.id, self.events)

    async def _watch_connect(self) -> None:
        await asyncio.sleep(CONNECT_S)
        if self.pc.connectionState != "connected":
            self.hang_up(f"no media path within {CONNECT_S:.0f} s")

    def hang_up(self, reason: str) -> None:
        """End the call (its last finals still reach the browser), then close the peer."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(reason))

    async def _close(self, reason: str) -> None:
        try:
            await self.session.end(reason)
            forward = self.tasks[1] if len(self.tasks) > 1 else None
            if forward is not None and self.pc.connectionState == "connected":
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(forward), LINGER_S)
                    await self._drained()
        finally:
            await self.close()

    async def _drained(self) -> None:
        """Wait (briefly) until the data channel has handed its queued messages to SCTP."""
        for _ in range(int(LINGER_S / 0.05)):
            if self.channel is None or self.channel.bufferedAmount == 0:
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Close the peer and stop the tasks (idempotent); the call is ended by `_close`."""
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current and not task.done():
                task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()
        self.hub.listeners.unlisten(self.session.id, self.events)
        self.gateway.calls.discard(self)

    async def abort(self, reason: str) -> None:
        """The gateway is going down: end the call and close the peer now."""
        with contextlib.suppress(Exception):
            await self.session.end(reason)
        await self.close()
