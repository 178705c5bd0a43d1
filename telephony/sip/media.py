"""The audio tap of one SIP dialog: a pjmedia conference port that hands each received frame
to the call session. Runs on pjmedia's clock thread, so it only copies and queues."""

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
                feed(bytes(frame.buf))
        except Exception:
            logger.exception("SIP frame callback failed")
