"""Gateways streaming their calls to a pool of ASR cores (`CALLSCRIBE_ASR_URLS`) instead of
decoding them in-process: placement on the least-loaded core (`pool.py`), one leg's stream to
one core over `/v1/stream` (`client.py`), the audio kept since the last final and the events
renumbered across a move to another core (`replay.py`), the recogniser a call leg feeds
(`recognizer.py`), and the hop's metrics (`metrics.py`)."""

from telephony.asr_pool.config import AsrPoolConfig
from telephony.asr_pool.pool import AsrPool
from telephony.asr_pool.recognizer import RemoteRecognizer

__all__ = ["AsrPool", "AsrPoolConfig", "RemoteRecognizer"]
