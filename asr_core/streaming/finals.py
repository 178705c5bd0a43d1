"""How a live final is decoded: one stream's segment, alone or in a batch with other streams'.

A final is the file path's window decode (`transcribe.decode_windows`: language, hot-words,
beam search, word timestamps, script, corrections) on the segment's audio in an encoder
window of at least `window_s`. The decode scheduler runs a request alone by calling it, or
hands several streams' requests to `decode_finals`, which encodes and decodes them in one
batch; a failing batch is decoded again one request at a time, so one stream's bad segment
never costs another stream its final.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from asr_core.engines.base import Engine
from asr_core.transcribe import TranscribeOptions, WindowJob, WindowResult, decode_windows

logger = logging.getLogger(__name__)

Decoded = tuple[WindowResult, float]
"""A final's window result and the seconds of decoding it took (its share of a batch)."""


def _no_context() -> tuple[str | None, str | None]:
    return None, None


@dataclass
class FinalRequest:
    engine: Engine
    audio: np.ndarray
    options: TranscribeOptions
    window_s: float
    context: Callable[[], tuple[str | None, str | None]] = field(default=_no_context)
    """(previous text, previous language) when the decode starts: the stream's previous
    final may have landed while this one waited."""
    speculative: bool = False
    """Prepared at a pause before the endpoint confirmed it (speech may still go on): the
    scheduler decodes the confirmed finals waiting first. Cleared once confirmed."""
    started: bool = field(default=False, init=False)
    """Set when a worker begins decoding it (from then on its result will come)."""

    def __call__(self) -> Decoded:
        """Decode this final alone."""
        result = decode_finals([self])[0]
        if isinstance(result, Exception):
            raise result
        return result


def decode_finals(requests: list[FinalRequest]) -> list[Decoded | Exception]:
    """Decode several streams' finals together; each gets its result or its own error."""
    started = time.perf_counter()
    try:
        results = _decode_together(requests)
    except Exception as exc:
        if len(requests) == 1:
            return [exc]
        logger.exception("a batch of %d finals failed; decoding them one by one", len(requests))
        return [_alone(request) for request in requests]
    share = (time.perf_counter() - started) / len(requests)
    return [(result, share) for result in results]


def _alone(request: FinalRequest) -> Decoded | Exception:
    try:
        return request()
    except Exception as exc:
        return exc


def _decode_together(requests: list[FinalRequest]) -> list[WindowResult]:
    for request in requests:
        request.started = True
    engine = requests[0].engine
    encoded: list = [None] * len(requests)
    for window_s in {r.window_s for r in requests}:
        group = [i for i, r in enumerate(requests) if r.window_s == window_s]
        for i, window in zip(
            group, engine.encode_batch([requests[i].audio for i in group], window_s), strict=True
        ):
            encoded[i] = window
    jobs = []
    for request, window in zip(requests, encoded, strict=True):
        prompt, previous_language = request.context()
        jobs.append(WindowJob(window, request.options, prompt, previous_language))
    return decode_windows(engine, jobs)
