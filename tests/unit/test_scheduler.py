"""Decode scheduling across workers: a final never waits behind a batch of partials when a
second worker exists. The real engine runs through the scheduler in the streaming tests; here a
partial decode that blocks on purpose makes the order observable."""

import asyncio
import threading

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


async def run_with(workers: int) -> list[str]:
    engine = BlockingPartials()
    scheduler = DecodeScheduler(engine, workers=workers)  # type: ignore[arg-type]
    scheduler.start()
    order: list[str] = []
    try:
        partial = asyncio.create_task(scheduler.partial("stream-a", request()))
        await asyncio.to_thread(engine.started.wait, 10)
        final = asyncio.create_task(scheduler.final(lambda: "final"))
        done, _ = await asyncio.wait({final}, timeout=2)
        order.append("final first" if done else "final waited")
        engine.release.set()
        order.extend([await final, await partial])
    finally:
        engine.release.set()
        scheduler.stop()
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
        engine = BlockingPartials()
        scheduler = DecodeScheduler(engine, max_batch=1)  # type: ignore[arg-type]
        scheduler.start()
        try:
            running = asyncio.create_task(scheduler.partial("a", request("a")))
            await asyncio.to_thread(engine.started.wait, 10)
            refinement = asyncio.create_task(scheduler.partial("b", request("b")))
            await asyncio.sleep(0.05)  # b is queued first...
            first = asyncio.create_task(scheduler.partial("c", request("c"), first=True))
            await asyncio.sleep(0.05)
            engine.release.set()
            await asyncio.gather(running, refinement, first)
        finally:
            engine.release.set()
            scheduler.stop()
        return engine.decoded

    assert asyncio.run(scenario()) == ["a", "c", "b"]  # ...but c's caller sees nothing yet


def test_streams_take_turns_with_their_finals():
    """A stream with a backlog of finals (a flooding caller) cannot hold up another's."""

    async def scenario() -> list[str]:
        engine = BlockingPartials()
        scheduler = DecodeScheduler(engine)  # type: ignore[arg-type]
        scheduler.start()
        order: list[str] = []
        try:
            blocker = asyncio.create_task(scheduler.partial("x", request()))
            await asyncio.to_thread(engine.started.wait, 10)
            finals = []
            for stream, name in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]:
                work = (lambda n: lambda: order.append(n))(name)
                finals.append(asyncio.create_task(scheduler.final(work, stream)))
                await asyncio.sleep(0.01)
            engine.release.set()
            await asyncio.gather(blocker, *finals)
        finally:
            engine.release.set()
            scheduler.stop()
        return order

    assert asyncio.run(scenario()) == ["a1", "b1", "a2", "a3"]
