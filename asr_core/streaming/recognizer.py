"""Live recognition of one audio stream: partials while someone speaks, a final per utterance.

Push 16 kHz mono audio in chunks of any size; events come out of `events` in order:

- `partial` about every `partial_interval_s` of speech: a quick greedy decode of the open
  segment that continues after the previous partial's stable part (its text minus the last
  `rollback_tokens` tokens), so what is shown as stable never flickers;
- `speech_started` when a segment opens (voice activity, before any words);
- `eager_final` when the final prepared at a pause is ready while the speaker is still
  silent: the segment's final word for word, unless `turn_resumed` follows (speech went on);
- `final` when the segment ends (silence, maximum length, client commit): the file path's
  decode (hot-word retrieval from the last partial, beam search, word timestamps, correction),
  then `endpoint`. Finals are prepared during the closing silence, so they are usually ready
  the moment the endpoint is confirmed; in a long segment, the words settled before a pause
  are committed and later decodes only take the audio after them (`commit.py`);
- `utterance_end` once `utterance_end_ms` of audio passed without speech after a final's
  last word.

All decoding runs on the process-wide `DecodeScheduler`; a stream only keeps its own state.
"""

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from asr_core import SAMPLE_RATE
from asr_core.engines.base import PartialRequest
from asr_core.errors import AsrError
from asr_core.hotwords import HotwordIndex
from asr_core.streaming.commit import (
    PARTIAL_PAST_CUT_S,
    Commit,
    agrees,
    candidate,
    without_copies,
)
from asr_core.streaming.endpointer import ClosedSegment, Endpointer, EndpointOptions
from asr_core.streaming.events import (
    EagerFinal,
    Endpoint,
    Error,
    Event,
    Final,
    Partial,
    SpeechStarted,
    TurnResumed,
    UtteranceEnd,
    WordTiming,
)
from asr_core.streaming.finals import Decoded, FinalRequest
from asr_core.streaming.scheduler import DecodeScheduler
from asr_core.transcribe import TranscribeOptions, checked_options, next_prompt
from asr_core.transcript import join_text

HotwordSource = Callable[[], HotwordIndex | None]
"""Asked for the list at each segment start (a tenant's list that admins edit mid-call)."""

logger = logging.getLogger(__name__)

_CHUNK = SAMPLE_RATE // 10
"""Audio is handed to the endpointer 100 ms at a time, so every close is seen in order."""
_ARRIVAL_LOG_S = 120.0


@dataclass
class StreamingOptions:
    decoding: TranscribeOptions = field(
        default_factory=lambda: TranscribeOptions(
            word_timestamps=True, condition_on_previous_text=False, temperatures=(0.0, 0.4)
        )
    )
    """Language, hot-words and decoder settings of the finals. Live segments are short, and
    Whisper given the previous segment as context tends to copy it (and to prefer its
    spellings over the prompted hot-words), so finals are decoded without it. One fallback
    temperature instead of five bounds the worst case of a final's latency."""
    endpoint: EndpointOptions = field(default_factory=EndpointOptions)
    partial_interval_s: float = 0.5
    first_partial_s: float = 0.5
    """Speech needed in a segment before its first partial."""
    rollback_tokens: int = 5
    partial_language_sure: float = 0.9
    """A partial's detected language (its share among the allowed ones) from which the
    segment's later partials keep it and build on its tokens; below it the next partial
    detects again. Half a second of speech misdetects: 9 of 97 tuning clips at the first
    partial, 8 of them below 0.9. A kept wrong language held every later partial of the
    segment in it (Mandarin captioned as English until the final)."""
    partial_window_s: float = 10.0
    """Shortest encoder window for partials (shorter is faster, less accurate)."""
    first_partial_window_s: float = 5.0
    """The same for a segment's first partial: its audio is short and its caller waits for
    any text at all, so it gets a window half as long (the encoder time halves too)."""
    final_window_s: float = 15.0
    speculate_after_ms: int = 100
    """Silence after which the final is prepared, before the endpoint confirms it."""
    max_pending_finals: int = 4
    """Finals a stream may have waiting before `push` waits for them (backpressure)."""
    emit_partials: bool = True
    """False: finals only (no partial decoding at all, which saves compute)."""
    tail_finals: bool = True
    """Commit the settled words of a long segment at its pauses, so that the final decodes
    only what follows them (see `commit.py`); False: every final decodes its whole segment."""
    commit_min_speech_s: float = 3.0
    """Speech a segment must have before a pause for its words so far to be committed."""
    utterance_end_ms: int | None = 1000
    """Audio without speech after a final's last word before `utterance_end` (None: never)."""


class StreamObserver:
    """Hooks for metrics; the default records nothing."""

    def first_partial(self, seconds: float) -> None: ...
    def partial_lag(self, seconds: float) -> None: ...
    def final_latency(self, seconds: float) -> None: ...
    def final_decoded(self, audio_s: float, compute_s: float) -> None: ...
    def committed(self, audio_s: float) -> None: ...
    def error(self, code: str) -> None: ...


@dataclass
class _Decoding:
    """A final's decode under way: the audio from `start` on, after `commit` (if any)."""

    task: asyncio.Task
    request: FinalRequest
    commit: Commit | None
    start: int


@dataclass
class _Speculation:
    segment: int
    start: int
    speech_end: int
    """A closed segment with the same start and end of speech has the same final."""
    decoding: _Decoding
    eager_sent: bool = False
    """Its text went out as an `eager_final`: if it is no final, `turn_resumed` must follow."""


class StreamingRecognizer:
    def __init__(
        self,
        scheduler: DecodeScheduler,
        options: StreamingOptions | None = None,
        observer: StreamObserver | None = None,
        events: asyncio.Queue | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.engine = scheduler.engine
        options = options or StreamingOptions()
        self.options = replace(options, decoding=checked_options(self.engine, options.decoding))
        self.observer = observer or StreamObserver()
        self.events: asyncio.Queue[Event] = events if events is not None else asyncio.Queue()
        """Where events go (a caller may pass its own queue, e.g. a socket's outbox)."""
        self._endpointer = Endpointer(self.options.endpoint)
        self._arrivals: deque[tuple[int, float]] = deque()
        self._segment_id = 0
        self._open = False
        self._segment_options = self.options.decoding
        initial = self.options.decoding.hotword_index
        self._hotwords: HotwordSource = lambda: initial
        self._stable: tuple[int, ...] = ()
        self._partial_language = self.options.decoding.language
        """Language of the open segment's partials: detected by its first partial."""
        self._last_partial_text = ""
        self._last_partial_end = 0
        self._next_partial_at = 0
        self._first_partial_sent = False
        self._partial_task: asyncio.Task | None = None
        self._held_partial: Partial | None = None
        self._speculation: _Speculation | None = None
        self._commit: Commit | None = None
        """The open segment's settled words: decodes start after them."""
        self._candidate: Commit | None = None
        """What a speculation offers to commit, until a partial confirms it."""
        self._emissions: deque[asyncio.Task] = deque()
        self._context: str | None = self.options.decoding.prompt
        self._last_language: str | None = None
        self._utterance_end_at: int | None = None
        """Stream sample at which `utterance_end` is due (after the last final's words)."""
        self._last_word_end_ms = 0
        self._speech_starts: dict[int, int] = {}
        """Where the latest segments' speech started (a late final's utterance end)."""
        self._closed = False

    # -- input -----------------------------------------------------------------------------

    async def push(self, audio: np.ndarray) -> None:
        """Feed 16 kHz mono float32 audio; waits only when this stream's finals pile up."""
        if self._closed:
            raise AsrError("the stream is closed")
        for offset in range(0, len(audio), _CHUNK):
            for segment in self._endpointer.push(audio[offset : offset + _CHUNK]):
                self._finish(segment)
            if self._endpointer.in_speech and not self._open:
                self._start_segment()
        now = time.monotonic()
        self._arrivals.append((self._endpointer.received, now))
        while self._arrivals and now - self._arrivals[0][1] > _ARRIVAL_LOG_S:
            self._arrivals.popleft()
        self._maybe_utterance_end()
        if self._open:
            if self.options.emit_partials:
                self._maybe_partial()
            self._maybe_speculate()
            self._settle_speculation()
        while len(self._emissions) > self.options.max_pending_finals:
            await self._finished(self._emissions[0], shielded=True)

    async def commit(self) -> None:
        """Close the open segment now and send its final (the client knows the turn ended)."""
        segment = self._endpointer.commit("commit")
        if segment is not None:
            self._finish(segment)

    @property
    def received_ms(self) -> int:
        """Audio received so far (the stream's clock)."""
        return _ms(self._endpointer.received / SAMPLE_RATE)

    @property
    def segment_open(self) -> bool:
        """Speech is under way: a segment is open (`commit` would close it)."""
        return self._open

    @property
    def next_segment(self) -> int:
        """Id of the next segment to start (where a hot-word swap takes effect)."""
        return self._segment_id + 1 if self._open else self._segment_id

    def set_hotwords(self, hotwords: HotwordIndex | HotwordSource | None) -> None:
        """Use another hot-word list from the next segment on (the open one keeps its list).
        A callable is asked again at every segment start, so a list that changes meanwhile
        reaches the stream without another call."""
        self._hotwords = hotwords if callable(hotwords) else (lambda: hotwords)

    def set_endpointing(self, silence_ms: int, speculate_after_ms: int | None = None) -> None:
        """New end-of-utterance silence (and when the final is prepared), from now on."""
        self._endpointer.set_silence_ms(silence_ms)
        if speculate_after_ms is not None:
            self.options = replace(self.options, speculate_after_ms=speculate_after_ms)

    async def close(self) -> None:
        """End of stream: finalize what is open and wait until every final is out."""
        if self._closed:
            return
        segment = self._endpointer.commit("end")
        if segment is not None:
            self._finish(segment)
        self._closed = True
        self._cancel_partial()
        while self._emissions:
            with contextlib.suppress(asyncio.CancelledError):
                await self._finished(self._emissions[0])

    def abort(self) -> None:
        """The client went away: drop all pending work at once."""
        self._closed = True
        self._cancel_partial()
        if self._speculation is not None:
            self._speculation.decoding.task.cancel()
        for task in self._emissions:
            task.cancel()

    # -- segments ----------------------------------------------------------------------------

    def _start_segment(self) -> None:
        self._open = True
        # Hot-word swaps apply from here.
        self._segment_options = replace(self.options.decoding, hotword_index=self._hotwords())
        self._stable = ()
        self._last_partial_text = ""
        self._last_partial_end = 0
        self._first_partial_sent = False
        self._commit = self._candidate = None
        self._partial_language = self._segment_options.language
        self._next_partial_at = self._endpointer.speech_start + int(
            self.options.first_partial_s * SAMPLE_RATE
        )
        speech_start = self._endpointer.speech_start
        if self._utterance_end_at is not None and speech_start >= self._utterance_end_at:
            self._emit(UtteranceEnd(self._last_word_end_ms))
        self._utterance_end_at = None
        self._speech_starts[self._segment_id] = speech_start
        self._speech_starts.pop(self._segment_id - self.options.max_pending_finals - 2, None)
        self._emit(SpeechStarted(self._segment_id, _ms(speech_start / SAMPLE_RATE)))

    def _finish(self, segment: ClosedSegment) -> None:
        segment_id = self._segment_id
        self._segment_id += 1
        self._open = False
        self._cancel_partial()
        speculation, self._speculation = self._speculation, None
        if segment.too_short:
            if speculation is not None:
                self._resumed(speculation)
                speculation.decoding.task.cancel()
            return
        if speculation is not None and (speculation.start, speculation.speech_end) == (
            segment.start,
            segment.speech_end,
        ):
            decoding = speculation.decoding
            decoding.request.speculative = False  # the endpoint confirmed it
        else:
            if speculation is not None:
                self._resumed(speculation)
                speculation.decoding.task.cancel()
            decoding = self._decode_final(segment.audio, segment.start)
        previous = self._emissions[-1] if self._emissions else None
        emission = asyncio.create_task(
            self._emit_final(segment_id, segment, decoding, previous, self._segment_options)
        )
        self._emissions.append(emission)
        emission.add_done_callback(self._emission_done)

    def _emission_done(self, task: asyncio.Task) -> None:
        with contextlib.suppress(ValueError):
            self._emissions.remove(task)

    async def _finished(self, emission: asyncio.Task, shielded: bool = False) -> None:
        """Wait for a final's emission and forget it. Awaiting a task that is already done
        returns without yielding to the loop, before its done-callback has run: a loop over
        `_emissions` that relied on that callback spun forever, freezing the server."""
        try:
            await (asyncio.shield(emission) if shielded else emission)
        finally:
            if emission.done():
                self._emission_done(emission)

    def _decode_final(self, audio: np.ndarray, start: int, speculative: bool = False) -> _Decoding:
        """Decode the segment's audio (from stream sample `start`) as its final; with a
        commit inside it, only the audio after the commit's cut. A `speculative` one (the
        segment is still open) waits behind the other streams' confirmed finals."""
        commit = self._commit
        if commit is not None and start <= commit.cut < start + len(audio):
            request = FinalRequest(
                self.engine,
                audio[commit.cut - start :],
                replace(self._segment_options, language=commit.language),
                self.options.final_window_s,
                context=lambda: (commit.prompt, commit.language),
                speculative=speculative,
            )
            start = commit.cut
        else:
            commit = None
            request = FinalRequest(
                self.engine,
                audio,
                self._segment_options,
                self.options.final_window_s,
                # The last final's language only breaks an unsure detection (short segments
                # misdetect); a confident one wins, so callers can switch languages.
                context=lambda: (self._context, self._last_language),
                speculative=speculative,
            )
        task = asyncio.create_task(self._decoded(request, commit))
        return _Decoding(task, request, commit, start)

    async def _decoded(self, request: FinalRequest, commit: Commit | None) -> Decoded:
        """The final's decode; after a commit, without what only repeats the commit."""
        result, compute_s = await self.scheduler.final(request, self)
        if commit is not None:
            result = without_copies(result, commit)
        return result, compute_s

    async def _emit_final(
        self,
        segment_id: int,
        segment: ClosedSegment,
        decoding: _Decoding,
        previous: asyncio.Task | None,
        options: TranscribeOptions,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        try:
            result, compute_s = await decoding.task
        except asyncio.CancelledError:
            raise
        except AsrError as exc:
            self._emit(Error(exc.code, f"segment {segment_id}: {exc.reason}"))
            self.observer.error(exc.code)
            return
        except Exception as exc:
            logger.exception("final decode failed")
            self._emit(Error("decode_failed", f"segment {segment_id}: {exc.__class__.__name__}"))
            self.observer.error("decode_failed")
            return
        text, words = self._text_and_words(decoding, result)
        index = options.hotword_index
        self._emit(
            Final(
                segment=segment_id,
                text=text,
                start_ms=_ms(segment.speech_start / SAMPLE_RATE),
                end_ms=_ms(segment.speech_end / SAMPLE_RATE),
                language=result.language,
                words=words,
                hotwords=list(dict.fromkeys(h for s in result.segments for h in s.hotwords)),
                hotword_version=index.version if index is not None else None,
                reason=segment.reason,
            )
        )
        self._emit(Endpoint(segment_id, _ms(segment.end / SAMPLE_RATE), segment.reason))
        if words and self.options.utterance_end_ms is not None:
            self._utterance_end_after(segment_id, words[-1].end_ms)
        self._context = next_prompt(self._context, result.segments, self.options.decoding)
        self._last_language = result.language
        self.observer.final_latency(time.monotonic() - self._arrival(segment.speech_end))
        self.observer.final_decoded((segment.end - decoding.start) / SAMPLE_RATE, compute_s)
        if self._held_partial is not None and len(self._emissions) <= 1:
            held, self._held_partial = self._held_partial, None
            if held.segment == self._segment_id and self._open:
                self._emit(held)

    @staticmethod
    def _text_and_words(decoding: _Decoding, result) -> tuple[str, list[WordTiming]]:
        """A final's text and word times in the stream (with the committed words first)."""
        offset = decoding.start / SAMPLE_RATE
        commit = decoding.commit
        words = [
            *(commit.words if commit is not None else ()),
            *(
                WordTiming(
                    w.word.strip(),
                    _ms(offset + w.start),
                    _ms(offset + w.end),
                    round(w.probability, 3),
                )
                for s in result.segments
                for w in s.words or []
            ),
        ]
        texts = [commit.text] if commit is not None else []
        return join_text([*texts, *(s.text for s in result.segments)]), words

    # -- partials and speculation ------------------------------------------------------------

    def _maybe_partial(self) -> None:
        if self._partial_task is not None or self._endpointer.received < self._next_partial_at:
            return
        if self._silence_ms() >= self.options.speculate_after_ms:
            return  # the speaker paused: the final is coming, a partial would add nothing
        self._partial_task = asyncio.create_task(self._partial(self._segment_id))

    async def _partial(self, segment_id: int) -> None:
        end = self._endpointer.received
        first = not self._first_partial_sent
        options = self.options
        request = PartialRequest(
            audio=self._endpointer.open_audio().copy(),
            language=self._partial_language,
            prefix=self._stable,
            allowed_languages=options.decoding.allowed_languages,
            min_window_s=options.first_partial_window_s if first else options.partial_window_s,
        )
        try:
            result = await self.scheduler.partial(self, request, first=first)
        except AsrError as exc:
            self._emit(Error(exc.code, exc.reason))
            result = None
        except Exception as exc:  # a failed partial is reported; the stream and finals go on
            logger.exception("partial decode failed")
            self._emit(Error("decode_failed", f"partial: {exc.__class__.__name__}"))
            self.observer.error("decode_failed")
            result = None
        finally:
            self._partial_task = None
        self._next_partial_at = end + int(self.options.partial_interval_s * SAMPLE_RATE)
        if result is None or segment_id != self._segment_id or not self._open:
            return
        # An unsure language is neither kept nor built on: the next partial detects again.
        sure = result.language_probability >= self.options.partial_language_sure
        keep = max(len(self._stable), len(result.tokens) - self.options.rollback_tokens)
        stable = result.tokens[:keep] if sure else ()
        stable_text = self.engine.detokenize(stable, result.language)
        while len(stable) > len(self._stable) and stable_text.endswith("\ufffd"):
            stable = stable[:-1]  # never cut inside a character spread over several tokens
            stable_text = self.engine.detokenize(stable, result.language)
        self._stable = stable
        if sure:
            self._partial_language = result.language
        self._last_partial_text = result.text
        self._last_partial_end = end
        if not result.text:
            return
        unstable = result.text[len(stable_text) :] if result.text.startswith(stable_text) else ""
        partial = Partial(
            segment=segment_id,
            text=result.text,
            stable=stable_text if unstable or result.text == stable_text else result.text,
            unstable=unstable.strip(),
            start_ms=_ms(self._endpointer.speech_start / SAMPLE_RATE),
            end_ms=_ms(end / SAMPLE_RATE),
            language=result.language,
        )
        self._try_commit()
        if not self._first_partial_sent:
            self._first_partial_sent = True
            self.observer.first_partial(
                time.monotonic() - self._arrival(self._endpointer.speech_start)
            )
        self.observer.partial_lag(time.monotonic() - self._arrival(end))
        if self._emissions:  # an earlier segment's final is not out yet: keep order
            self._held_partial = partial
        else:
            self._emit(partial)

    def _maybe_speculate(self) -> None:
        if self._silence_ms() < self.options.speculate_after_ms:
            return
        pending = self._endpointer.pending_close()
        if pending is None:
            return
        start, speech_end, audio = pending
        previous = self._speculation
        if previous is not None:
            if (previous.start, previous.speech_end) == (start, speech_end):
                return
            # Speech resumed since: that guess is no final. Unless its decode has started
            # (its words may still be committed), it is dropped.
            self._resumed(previous)
            if not previous.decoding.request.started:
                previous.decoding.task.cancel()
        speculation = _Speculation(
            self._segment_id,
            start,
            speech_end,
            self._decode_final(audio.copy(), start, speculative=True),
        )
        speculation.decoding.task.add_done_callback(lambda _: self._prepared(speculation))
        self._speculation = speculation

    def _prepared(self, speculation: _Speculation) -> None:
        self._offer_eager(speculation)
        self._consider(speculation)

    def _offer_eager(self, speculation: _Speculation) -> None:
        """Send a prepared final as `eager_final` while the speaker is still silent. Not while
        an earlier segment's final is out yet (events stay in segment order)."""
        task = speculation.decoding.task
        if (
            self._closed
            or speculation is not self._speculation
            or not self._open
            or speculation.segment != self._segment_id
            or self._endpointer.speech_end != speculation.speech_end
            or self._emissions
            or task.cancelled()
            or task.exception() is not None
        ):
            return
        result, _ = task.result()
        text, words = self._text_and_words(speculation.decoding, result)
        if not text.strip():
            return
        speculation.eager_sent = True
        self._emit(
            EagerFinal(
                segment=speculation.segment,
                text=text,
                start_ms=_ms(self._endpointer.speech_start / SAMPLE_RATE),
                end_ms=_ms(speculation.speech_end / SAMPLE_RATE),
                language=result.language,
                words=words,
            )
        )

    def _resumed(self, speculation: _Speculation) -> None:
        """The speculation is no final: take back its `eager_final`, if one went out."""
        if speculation.eager_sent:
            speculation.eager_sent = False
            self._emit(TurnResumed(speculation.segment))

    def _settle_speculation(self) -> None:
        """A finished speculation that speech has since gone past: offer its words."""
        speculation = self._speculation
        if (
            speculation is not None
            and speculation.decoding.task.done()
            and self._endpointer.speech_end > speculation.speech_end
        ):
            self._speculation = None
            self._resumed(speculation)
            self._consider(speculation)

    def _consider(self, speculation: _Speculation) -> None:
        """Make a finished speculation's words the commit candidate once speech has gone on
        past its pause (until then it may still become the final)."""
        decoding = speculation.decoding
        if (
            not self.options.tail_finals
            or not self._open
            or speculation.segment != self._segment_id
            or self._endpointer.speech_end <= speculation.speech_end
            or decoding.commit is not self._commit  # decoded before the latest commit
            or not decoding.task.done()
            or decoding.task.cancelled()
            or decoding.task.exception() is not None
        ):
            return
        result, _ = decoding.task.result()
        offered = candidate(
            result,
            decoding.start,
            decoding.commit,
            speculation.speech_end,
            self._endpointer.speech_start,
            self.options.commit_min_speech_s,
        )
        if offered is not None:
            self._candidate = offered
            self._try_commit()

    def _try_commit(self) -> None:
        """Commit the candidate once a partial over audio past its cut reads the same."""
        offered = self._candidate
        heard_past = self._last_partial_end - int(PARTIAL_PAST_CUT_S * SAMPLE_RATE)
        if offered is None or heard_past < offered.cut:
            return
        self._candidate = None
        if agrees(offered, self._last_partial_text, offered.language):
            since = self._commit.cut if self._commit else self._endpointer.segment_start
            self._commit = offered
            self.observer.committed((offered.cut - since) / SAMPLE_RATE)

    def _cancel_partial(self) -> None:
        self.scheduler.forget(self)
        if self._partial_task is not None:
            self._partial_task.cancel()
            self._partial_task = None
        self._held_partial = None

    def _utterance_end_after(self, segment_id: int, last_word_end_ms: int) -> None:
        """A final is out: `utterance_end` is due `utterance_end_ms` after its last word,
        unless speech started again before that (perhaps while the final was decoded)."""
        assert self.options.utterance_end_ms is not None
        due = int((last_word_end_ms + self.options.utterance_end_ms) * SAMPLE_RATE / 1000)
        next_start = self._speech_starts.get(segment_id + 1)
        if next_start is not None:
            if next_start >= due:
                self._emit(UtteranceEnd(last_word_end_ms))
            return
        self._last_word_end_ms = last_word_end_ms
        self._utterance_end_at = due
        self._maybe_utterance_end()

    def _maybe_utterance_end(self) -> None:
        due = self._utterance_end_at
        if due is not None and not self._open and self._endpointer.received >= due:
            self._utterance_end_at = None
            self._emit(UtteranceEnd(self._last_word_end_ms))

    # -- helpers -----------------------------------------------------------------------------

    def _silence_ms(self) -> float:
        return self._endpointer.trailing_silence * 1000 / SAMPLE_RATE

    def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    def _arrival(self, sample: int) -> float:
        """When the stream sample arrived (for latencies measured from the audio)."""
        index = bisect.bisect_left(self._arrivals, sample, key=lambda item: item[0])
        if index >= len(self._arrivals):
            return time.monotonic()
        return self._arrivals[index][1]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
