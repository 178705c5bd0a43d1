"""The decoding workers of a process, shared by every live stream.

CPU time is the scarce thing, so all decoding goes through a few threads (as many as the model
can run at once, `workers`). Finals (a caller stopped talking and waits for the text) always go
first, taken from the streams in turn so one stream with many finals waiting cannot hold up the
others, confirmed finals ahead of speculative ones (prepared at a pause that may not end the
utterance); with several workers one is kept free of partials, so a final never waits behind a
batch of partials. With `final_batch` above 1, finals that wait together are shared out among
the free workers and each worker decodes its share in one batch (`batch_finals`): worth it
where a batch costs much less than its finals one by one (a GPU; see docs/benchmarks.md for
the CPU). Partials are batched across streams in one encoder and one decoder call; each
stream has at most one partial waiting, and a newer request replaces it, so under load every
stream simply gets partials less often instead of the queue falling behind.

A segment's first partial is the exception: its caller sees nothing of what is being said yet,
and its audio is short, so it should not wait a second for a final. With `first_partial_lane`
one more thread decodes only first partials, beside the workers (the cores are shared by the
OS; a first partial costs about a tenth of a final).
"""

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asr_core.engines.base import Engine, PartialRequest, PartialResult
from asr_core.errors import AsrError

logger = logging.getLogger(__name__)


class SchedulerOverloaded(AsrError):
    code = "overloaded"


@dataclass
class _Job:
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class _FinalJob(_Job):
    request: Callable[[], Any] = None  # type: ignore[assignment]
    """Decodes the final when called (alone); `batch_finals` takes several."""


@dataclass
class _PartialJob(_Job):
    request: PartialRequest = None  # type: ignore[assignment]
    first: bool = False
    """The segment's first partial: its caller still sees nothing of what is being said."""


class DecodeScheduler:
    def __init__(
        self,
        engine: Engine,
        max_batch: int = 4,
        max_finals: int = 64,
        on_queue_wait: Callable[[str, float], None] | None = None,
        workers: int = 1,
        first_partial_lane: bool = False,
        final_batch: int = 1,
        batch_finals: Callable[[list[Any]], list[Any]] | None = None,
    ) -> None:
        self.engine = engine
        self.workers = workers
        self.final_batch = final_batch if batch_finals is not None else 1
        """Most finals one worker decodes in one batch."""
        self._batch_finals = batch_finals
        """Decodes several final requests at once; returns a result or an exception each."""
        self.first_partial_lane = first_partial_lane
        """One more thread, for first partials only: the engine must allow `workers + 1`
        decodes at once."""
        self.max_partial_workers = max(1, workers - 1)
        """Workers that may decode partials at once: with several, one is kept for finals."""
        self.max_batch = max_batch
        self.max_finals = max_finals
        self._on_queue_wait = on_queue_wait
        self._finals: OrderedDict[Any, deque[_FinalJob]] = OrderedDict()
        """Waiting finals per stream; streams take turns (the first is served, then moves to
        the back)."""
        self._partials: OrderedDict[Any, _PartialJob] = OrderedDict()
        self._wakeup = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._partials_running = 0
        self._finals_running = 0
        self._lane_running = False
        self._running = False

    @property
    def pending(self) -> tuple[int, int]:
        """(finals, partials) waiting."""
        with self._wakeup:
            return self._finals_waiting(), len(self._partials)

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being decoded."""
        with self._wakeup:
            busy = self._finals_running or self._partials_running or self._lane_running
            return not (busy or self._finals or self._partials)

    def _finals_waiting(self) -> int:
        return sum(len(jobs) for jobs in self._finals.values())

    def start(self) -> None:
        if self._threads:
            return
        self._running = True
        self._threads = [
            threading.Thread(target=self._work, name=f"decode-worker-{n}", daemon=True)
            for n in range(self.workers)
        ]
        if self.first_partial_lane:
            self._threads.append(
                threading.Thread(target=self._first_partials, name="decode-first", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._running = False
            self._wakeup.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    async def final(self, request: Callable[[], Any], stream: Any = None) -> Any:
        """Decode `request` (a final of `stream`) on a worker, ahead of any partial."""
        loop = asyncio.get_running_loop()
        job = _FinalJob(loop.create_future(), loop, request=request)
        with self._wakeup:
            waiting = self._finals_waiting()
            if waiting >= self.max_finals:
                raise SchedulerOverloaded(
                    f"{waiting} finals are waiting to be decoded; try again shortly"
                )
            self._finals.setdefault(stream, deque()).append(job)
            self._wakeup.notify_all()  # the threads wait for different work
        return await job.future

    async def partial(
        self, stream: Any, request: PartialRequest, first: bool = False
    ) -> PartialResult | None:
        """A partial for `stream`, or None when a newer request from it took its place.
        First partials of a segment go ahead of the other streams' refinements."""
        loop = asyncio.get_running_loop()
        job = _PartialJob(loop.create_future(), loop, request=request, first=first)
        with self._wakeup:
            replaced = self._partials.pop(stream, None)
            self._partials[stream] = job
            self._wakeup.notify_all()  # the threads wait for different work
        if replaced is not None:
            _resolve(replaced, None)
        return await job.future

    def forget(self, stream: Any) -> None:
        """Drop a stream's waiting partial (it closed or went away)."""
        with self._wakeup:
            job = self._partials.pop(stream, None)
        if job is not None:
            _resolve(job, None)

    def _work(self) -> None:
        while True:
            with self._wakeup:
                while self._running and not self._finals and not self._may_take_partials():
                    self._wakeup.wait()
                if not self._running:
                    pending = [job for jobs in self._finals.values() for job in jobs]
                    pending += list(self._partials.values())
                    self._finals.clear()
                    self._partials.clear()
                    self._wakeup.notify_all()
                    break
                if self._finals:
                    finals, partials = self._take_finals(), []
                    self._finals_running += 1
                else:
                    finals, partials = [], self._take_partials()
                    self._partials_running += 1
            if finals:
                try:
                    self._run_finals(finals)
                finally:
                    with self._wakeup:
                        self._finals_running -= 1
                continue
            try:
                self._run_partials(partials)
            finally:
                with self._wakeup:
                    self._partials_running -= 1
                    self._wakeup.notify_all()
        for job in pending:
            _fail(job, AsrError("the decoder is shutting down"))

    def _first_partials(self) -> None:
        """The first-partial lane: decodes batches of first partials and nothing else."""
        while True:
            with self._wakeup:
                while self._running and not self._first_waiting():
                    self._wakeup.wait()
                if not self._running:
                    return  # the workers fail what is left
                batch = self._take_partials(first_only=True)
                self._lane_running = True
            try:
                self._run_partials(batch)
            finally:
                with self._wakeup:
                    self._lane_running = False

    def _first_waiting(self) -> bool:
        return any(job.first for job in self._partials.values())

    def _take_finals(self) -> list[_FinalJob]:
        """This worker's share of the waiting finals: with free workers beside it, an equal
        share each (two finals on two free workers run side by side, not as one batch), at
        most `final_batch`."""
        self._drop_cancelled_finals()
        free = max(1, self.workers - self._finals_running - self._partials_running)
        size = min(self.final_batch, math.ceil(self._finals_waiting() / free))
        return [self._next_final() for _ in range(max(1, size)) if self._finals]

    def _drop_cancelled_finals(self) -> None:
        """Forget finals nobody waits for any more (a speculation whose speaker went on), so
        a stream's confirmed final is not taken for one of them."""
        for stream, jobs in list(self._finals.items()):
            kept = deque(job for job in jobs if not job.future.cancelled())
            if kept:
                self._finals[stream] = kept
            else:
                del self._finals[stream]

    def _next_final(self) -> _FinalJob:
        """The oldest final of the next stream in turn whose final is confirmed, else of the
        next stream: a speculative final (a request whose `speculative` attribute is true,
        prepared at a short pause) is wasted work when speech goes on, which it does at
        most pauses, while a confirmed final has its caller waiting. Under load, speculations
        wait, and those of speakers who went on are dropped before they cost anything."""
        stream = next(
            (s for s, jobs in self._finals.items() if not _speculative(jobs[0])),
            next(iter(self._finals)),
        )
        jobs = self._finals.pop(stream)
        job = jobs.popleft()
        if jobs:
            self._finals[stream] = jobs  # back of the line
        return job

    def _take_partials(self, first_only: bool = False) -> list[_PartialJob]:
        """A batch: first partials on their own (short audio, short window, and a caller still
        waiting for any text), otherwise the longest waiting (the queue keeps arrival order)."""
        waiting = list(self._partials.items())
        firsts = [item for item in waiting if item[1].first]
        batch = (firsts if first_only else firsts or waiting)[: self.max_batch]
        for stream, _ in batch:
            del self._partials[stream]
        return [job for _, job in batch]

    def _may_take_partials(self) -> bool:
        return self._partials_running < self.max_partial_workers and bool(self._partials)

    def _run_finals(self, jobs: list[_FinalJob]) -> None:
        jobs = [job for job in jobs if not job.future.cancelled()]
        for job in jobs:
            self._record_wait("final", job)
        if len(jobs) > 1:
            results = self._batch_finals([job.request for job in jobs])
        else:
            results = [_call(job.request) for job in jobs]
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, Exception):  # delivered to its stream; the worker goes on
                logger.error("final decode failed", exc_info=result)
                _fail(job, result)
            else:
                _resolve(job, result)

    def _run_partials(self, jobs: list[_PartialJob]) -> None:
        jobs = [job for job in jobs if not job.future.cancelled()]
        if not jobs:
            return
        for job in jobs:
            self._record_wait("partial", job)
        try:
            results = self.engine.decode_partials([job.request for job in jobs])
        except Exception as exc:
            logger.exception("partial decode failed")
            for job in jobs:
                _fail(job, exc)
            return
        for job, result in zip(jobs, results, strict=True):
            _resolve(job, result)

    def _record_wait(self, kind: str, job: _Job) -> None:
        if self._on_queue_wait is not None:
            self._on_queue_wait(kind, time.monotonic() - job.enqueued)


def _speculative(job: _FinalJob) -> bool:
    return bool(getattr(job.request, "speculative", False))


def _call(request: Callable[[], Any]) -> Any:
    try:
        return request()
    except Exception as exc:
        return exc


def _resolve(job: _Job, value: Any) -> None:
    _deliver(job, _set_result, value)


def _fail(job: _Job, error: Exception) -> None:
    _deliver(job, _set_exception, error)


def _deliver(job: _Job, setter: Callable[[asyncio.Future, Any], None], value: Any) -> None:
    # RuntimeError: the stream's event loop is gone, so nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(setter, job.future, value)


def _set_result(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
