"""One decoding worker per process, shared by every live stream.

CPU time is the scarce thing, so all decoding goes through one thread that the model's own
threads keep busy. Finals (a caller stopped talking and waits for the text) always go first.
Partials are batched across streams in one encoder and one decoder call; each stream has at
most one partial waiting, and a newer request replaces it, so under load every stream simply
gets partials less often instead of the queue falling behind.
"""

import asyncio
import contextlib
import logging
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
    work: Callable[[], Any] = None  # type: ignore[assignment]


@dataclass
class _PartialJob(_Job):
    request: PartialRequest = None  # type: ignore[assignment]


class DecodeScheduler:
    def __init__(
        self,
        engine: Engine,
        max_batch: int = 4,
        max_finals: int = 64,
        on_queue_wait: Callable[[str, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_finals = max_finals
        self._on_queue_wait = on_queue_wait
        self._finals: deque[_FinalJob] = deque()
        self._partials: OrderedDict[Any, _PartialJob] = OrderedDict()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False

    @property
    def pending(self) -> tuple[int, int]:
        """(finals, partials) waiting."""
        with self._wakeup:
            return len(self._finals), len(self._partials)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._work, name="decode-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._running = False
            self._wakeup.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    async def final(self, work: Callable[[], Any]) -> Any:
        """Run `work` (a final decode) on the worker, ahead of any partial."""
        loop = asyncio.get_running_loop()
        job = _FinalJob(loop.create_future(), loop, work=work)
        with self._wakeup:
            if len(self._finals) >= self.max_finals:
                raise SchedulerOverloaded(
                    f"{len(self._finals)} finals are waiting to be decoded; try again shortly"
                )
            self._finals.append(job)
            self._wakeup.notify()
        return await job.future

    async def partial(self, stream: Any, request: PartialRequest) -> PartialResult | None:
        """A partial for `stream`, or None when a newer request from it took its place."""
        loop = asyncio.get_running_loop()
        job = _PartialJob(loop.create_future(), loop, request=request)
        with self._wakeup:
            replaced = self._partials.pop(stream, None)
            self._partials[stream] = job
            self._wakeup.notify()
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
                while self._running and not self._finals and not self._partials:
                    self._wakeup.wait()
                if not self._running:
                    pending = list(self._finals) + list(self._partials.values())
                    self._finals.clear()
                    self._partials.clear()
                    break
                if self._finals:
                    final, partials = self._finals.popleft(), []
                else:
                    final = None
                    partials = [
                        self._partials.popitem(last=False)[1]
                        for _ in range(min(self.max_batch, len(self._partials)))
                    ]
            if final is not None:
                self._run_final(final)
            else:
                self._run_partials(partials)
        for job in pending:
            _fail(job, AsrError("the decoder is shutting down"))

    def _run_final(self, job: _FinalJob) -> None:
        if job.future.cancelled():
            return
        self._record_wait("final", job)
        try:
            result = job.work()
        except Exception as exc:  # delivered to the stream that asked, never kills the worker
            logger.exception("final decode failed")
            _fail(job, exc)
            return
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
