"""Decode scheduling across workers: a final never waits behind a batch of partials when a
second worker exists. The real engine runs through the scheduler in the streaming tests; here a
partial decode that blocks on purpose makes the order observable."""

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from asr_core.engines.base import PartialRequest
from asr_core.streaming import DecodeScheduler


class BlockingPartials:
    """Partials wait until released; finals are plain callables run by the scheduler."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.decoded: list[str] = []

    def decode_partials(self, requests):
        self.started.set()
        assert self.release.wait(10)
        self.decoded.extend(r.audio for r in requests)
        return [f"partial {n}" for n, _ in enumerate(requests)]


def request(name: str = "a") -> PartialRequest:
    return PartialRequest(audio=name, language="en", prefix=(), allowed_languages=("en",))


@contextlib.contextmanager
def running(**options) -> Iterator[tuple[BlockingPartials, DecodeScheduler]]:
    engine = BlockingPartials()
    scheduler = DecodeScheduler(engine, **options)  # type: ignore[arg-type]
    scheduler.start()
    try:
        yield engine, scheduler
    finally:
        engine.release.set()
        scheduler.stop()


async def run_with(workers: int) -> list[str]:
    order: list[str] = []
    with running(workers=workers) as (engine, scheduler):
        partial = asyncio.create_task(scheduler.partial("stream-a", request()))
        await asyncio.to_thread(engine.started.wait, 10)
        final = asyncio.create_task(scheduler.final(lambda: "final"))
        done, _ = await asyncio.wait({final}, timeout=2)
        order.append("final first" if done else "final waited")
        engine.release.set()
        order.extend([await final, await partial])
    return order


def test_with_two_workers_a_final_overtakes_a_running_partial_batch():
    assert asyncio.run(run_with(2)) == ["final first", "final", "partial 0"]


def test_with_one_worker_it_waits_for_the_batch():
    assert asyncio.run(run_with(1)) == ["final waited", "final", "partial 0"]


def test_partials_never_take_the_last_worker():
    scheduler = DecodeScheduler(BlockingPartials(), workers=3)  # type: ignore[arg-type]
    assert scheduler.max_partial_workers == 2


def test_first_partials_go_ahead_of_refinements():
    async def scenario() -> list[str]:
        with running(max_batch=1) as (engine, scheduler):
            busy = asyncio.create_task(scheduler.partial("a", request("a")))
            await asyncio.to_thread(engine.started.wait, 10)
            refinement = asyncio.create_task(scheduler.partial("b", request("b")))
            await asyncio.sleep(0.05)  # b is queued first...
            first = asyncio.create_task(scheduler.partial("c", request("c"), first=True))
            await asyncio.sleep(0.05)
            engine.release.set()
            await asyncio.gather(busy, refinement, first)
        return engine.decoded

    assert asyncio.run(scenario()) == ["a", "c", "b"]  # ...but c's caller sees nothing yet


def test_streams_take_turns_with_their_finals():
    """A stream with a backlog of finals (a flooding caller) cannot hold up another's."""

    async def scenario() -> list[str]:
        order: list[str] = []
        with running() as (engine, scheduler):
            blocker = asyncio.create_task(scheduler.partial("x", request()))
            await asyncio.to_thread(engine.started.wait, 10)
            finals = []
            for stream, name in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]:
                work = (lambda n: lambda: order.append(n))(name)
                finals.append(asyncio.create_task(scheduler.final(work, stream)))
                await asyncio.sleep(0.01)
            engine.release.set()
            await asyncio.gather(blocker, *finals)
        return order

    assert asyncio.run(scenario()) == ["a1", "b1", "a2", "a3"]


class Work:
    """A final that records its decode; `speculative` as a live stream's final request has."""

    def __init__(self, name: str, order: list[str], speculative: bool = False) -> None:
        self.name, self.order, self.speculative = name, order, speculative

    def __call__(self) -> str:
        self.order.append(self.name)
        return self.name


async def finals_behind_a_busy_worker(queued: list[tuple[str, str, bool]], then=None) -> list[str]:
    """The single worker is busy while `queued` (stream, name, speculative) finals arrive in
    that order; `then(works, tasks)` runs before it is free. Returns the decode order."""
    order: list[str] = []
    with running() as (engine, scheduler):
        blocker = asyncio.create_task(scheduler.partial("x", request()))
        await asyncio.to_thread(engine.started.wait, 10)
        works, tasks = [], []
        for stream, name, speculative in queued:
            works.append(Work(name, order, speculative))
            tasks.append(asyncio.create_task(scheduler.final(works[-1], stream)))
            await asyncio.sleep(0.01)
        if then is not None:
            then(works, tasks)
            await asyncio.sleep(0.01)
        engine.release.set()
        await asyncio.gather(blocker, *tasks, return_exceptions=True)
    return order


def test_confirmed_finals_go_ahead_of_speculative_ones():
    """A final prepared at a pause may be no final (the speaker goes on); another stream's
    caller who stopped talking waits for theirs."""
    queued = [("a", "a-guess", True), ("b", "b-final", False), ("c", "c-guess", True)]
    assert asyncio.run(finals_behind_a_busy_worker(queued)) == ["b-final", "a-guess", "c-guess"]


def test_a_speculation_confirmed_while_it_waits_goes_ahead():
    """The endpoint confirmed a's guess (the recognizer clears its `speculative`) while it
    waited: it is a caller's final now, ahead of b's guess queued before it."""

    def endpoint_confirms_a(works, tasks) -> None:
        works[1].speculative = False

    queued = [("b", "b-guess", True), ("a", "a-guess", True)]
    order = asyncio.run(finals_behind_a_busy_worker(queued, then=endpoint_confirms_a))
    assert order == ["a-guess", "b-guess"]


def test_a_speculation_dropped_while_it_waits_costs_nothing_and_holds_up_nothing():
    """Speech went on: the guess is cancelled, never decoded, and the same stream's
    confirmed final (queued behind it) is not taken for a speculation."""

    def speaker_went_on(works, tasks) -> None:
        tasks[0].cancel()

    queued = [("a", "a-guess", True), ("b", "b-guess", True), ("a", "a-final", False)]
    order = asyncio.run(finals_behind_a_busy_worker(queued, then=speaker_went_on))
    assert order == ["a-final", "b-guess"]


async def waiting_beside_a_busy_partial_worker(
    first: bool, lane: bool
) -> tuple[list[str], list[str]]:
    """With two workers, one busy decoding partials, what is still queued after another
    partial request (a segment's first, or a refinement) and one more refinement arrive."""
    with running(workers=2, first_partial_lane=lane) as (engine, scheduler):
        busy = asyncio.create_task(scheduler.partial("a", request("a")))
        await asyncio.to_thread(engine.started.wait, 10)
        refinement = asyncio.create_task(scheduler.partial("b", request("b")))
        other = asyncio.create_task(scheduler.partial("c", request("c"), first=first))
        await asyncio.sleep(0.2)
        waiting = list(scheduler._partials)
        engine.release.set()
        await asyncio.gather(busy, refinement, other)
    return waiting, sorted(engine.decoded)


def test_a_first_partial_is_decoded_at_once_on_its_own_lane():
    """c's caller sees nothing yet: the lane takes it while the partial worker is busy."""
    waiting, decoded = asyncio.run(waiting_beside_a_busy_partial_worker(first=True, lane=True))
    assert waiting == ["b"]
    assert decoded == ["a", "b", "c"]


def test_without_the_lane_a_first_partial_waits_for_the_partial_worker():
    waiting, decoded = asyncio.run(waiting_beside_a_busy_partial_worker(first=True, lane=False))
    assert waiting == ["b", "c"]
    assert decoded == ["a", "b", "c"]


def test_refinements_never_take_the_lane_or_the_worker_kept_for_finals():
    waiting, decoded = asyncio.run(waiting_beside_a_busy_partial_worker(first=False, lane=True))
    assert waiting == ["b", "c"]
    assert decoded == ["a", "b", "c"]


def test_the_lane_leaves_finals_to_the_workers():
    """A final waits for a worker even while the lane is idle (the lane is for first
    partials, whose decode is short)."""

    async def scenario() -> str:
        with running(workers=1, first_partial_lane=True) as (engine, scheduler):
            busy = asyncio.create_task(scheduler.partial("a", request("a")))
            await asyncio.to_thread(engine.started.wait, 10)
            final = asyncio.create_task(scheduler.final(lambda: "final"))
            done, _ = await asyncio.wait({final}, timeout=0.3)
            engine.release.set()
            await asyncio.gather(busy, final)
            return "final waited" if not done else "final ran on the lane"

    assert asyncio.run(scenario()) == "final waited"


def test_finals_that_wait_together_are_decoded_as_one_batch():
    """With `final_batch`, finals of several streams waiting for a busy worker go to the
    batch decoder together (streams in turn); a failed one fails only its own stream."""
    batches: list[list[str]] = []

    def batch_finals(requests):
        batches.append([r.__name__ for r in requests])
        return [RuntimeError("bad segment") if r.__name__ == "b1" else r() for r in requests]

    def final(name: str):
        def request() -> str:
            return f"text of {name}"

        request.__name__ = name
        return request

    async def scenario():
        engine = BlockingPartials()
        scheduler = DecodeScheduler(engine, final_batch=4, batch_finals=batch_finals)  # type: ignore[arg-type]
        scheduler.start()
        try:
            busy = asyncio.create_task(scheduler.partial("x", request()))
            await asyncio.to_thread(engine.started.wait, 10)
            finals = []
            for stream, name in [("a", "a1"), ("a", "a2"), ("b", "b1"), ("c", "c1"), ("d", "d1")]:
                finals.append(asyncio.create_task(scheduler.final(final(name), stream)))
                await asyncio.sleep(0.01)
            engine.release.set()
            await busy
            return await asyncio.gather(*finals, return_exceptions=True)
        finally:
            engine.release.set()
            scheduler.stop()

    results = asyncio.run(scenario())
    assert batches == [["a1", "b1", "c1", "d1"]]  # a2 then runs alone
    assert [str(r) for r in results] == [
        "text of a1",
        "text of a2",
        "bad segment",
        "text of c1",
        "text of d1",
    ]


def test_without_a_batch_decoder_finals_run_one_at_a_time():
    scheduler = DecodeScheduler(BlockingPartials(), final_batch=8)  # type: ignore[arg-type]
    assert scheduler.final_batch == 1
