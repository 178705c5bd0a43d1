"""The audio tap of one SIP dialog: a pjmedia conference port that hands each received frame
to the call session. Runs on pjmedia's clock thread, so it only copies and queues."""

import ctypes
import logging
from collections.abc import Callable

import pjsua2 as pj

logger = logging.getLogger(__name__)

CLOCK_RATE = 16_000
"""The bridge resamples every codec to the port's clock: 16 kHz s16le mono, 20 ms frames."""


def frame_format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = CLOCK_RATE
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = 20_000
    return fmt


def _direct_bytes(buf: pj.ByteVector) -> bytes:
    """A `ByteVector`'s bytes, read from the std::vector's buffer (its first member is the
    data pointer, in libstdc++ as in libc++)."""
    size = buf.size()
    data = ctypes.c_void_p.from_address(int(buf.this)).value
    return ctypes.string_at(data, size) if data and size else b""


def _pick_reader() -> Callable[[pj.ByteVector], bytes]:
    """SWIG copies a ByteVector element by element: 0.5 ms per 20 ms frame, the biggest part
    of a call's CPU in a user-agent process. Reading the buffer directly takes microseconds;
    it is used if it reads a known vector right on this build."""
    probe = pj.ByteVector()
    for value in range(256):
        probe.push_back(value)
    try:
        if _direct_bytes(probe) == bytes(range(256)):
            return _direct_bytes
    except (TypeError, ValueError, OSError):
        pass
    logger.warning("pjsua2 frames are copied the slow way on this build")
    return bytes


frame_bytes = _pick_reader()


class FrameTap(pj.AudioMediaPort):
    """Feeds `feed(bytes)` with every non-empty frame (empty ones carry nothing); with no
    `feed` (an idle port between calls) frames are dropped."""

    def __init__(self, feed: Callable[[bytes], None] | None) -> None:
        super().__init__()
        self.feed = feed

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        # Called with pjmedia's locks held: nothing may escape into it.
        try:
            feed = self.feed
            if frame.size and feed is not None:
                feed(frame_bytes(frame.buf))
        except Exception:
            logger.exception("SIP frame callback failed")
