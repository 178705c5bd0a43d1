"""The recognizer's bookkeeping of finals on their way out, without a model."""

import asyncio
import threading

from asr_core.engines.base import EngineCapabilities
from asr_core.streaming import StreamingRecognizer


class NoEngine:
    model_name = "none"
    capabilities = EngineCapabilities(
        languages=frozenset({"en"}),
        word_timestamps=True,
        prompt=True,
        reusable_encoding=True,
        streaming=True,
        batch=True,
        max_window_s=30.0,
    )


class IdleScheduler:
    engine = NoEngine()

    def forget(self, stream) -> None:
        pass


def test_closing_right_after_a_final_went_out_returns():
    """A final's emission that has just finished, its done-callback not yet run: awaiting a
    done task does not yield to the loop, so a close loop waiting for that callback spun
    forever and froze the whole server."""
    finished = threading.Event()

    async def scenario() -> None:
        recognizer = StreamingRecognizer(IdleScheduler())  # type: ignore[arg-type]
        emission = asyncio.create_task(asyncio.sleep(0))
        emission.add_done_callback(recognizer._emission_done)
        recognizer._emissions.append(emission)
        while not emission.done():
            await asyncio.sleep(0)
        assert list(recognizer._emissions) == [emission]  # its callback is still to run
        await recognizer.close()
        finished.set()

    threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True).start()
    assert finished.wait(30), "close() never returned"
