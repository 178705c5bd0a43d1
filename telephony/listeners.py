"""Live listeners of calls (supervisors' screens, the WebRTC data channel): each listener has
its own bounded queue of the call's events; one that stops reading loses its own oldest events,
never holds up the call or another listener. `None` in a queue means the call is over."""

import asyncio
import contextlib

QUEUE_SIZE = 1000


class CallListeners:
    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._queues: dict[str, set[asyncio.Queue]] = {}

    def listen(self, call_id: str) -> asyncio.Queue:
        """Events of the call from now on, each a dict; None after the call ends."""
        queue: asyncio.Queue = asyncio.Queue(self.queue_size)
        self._queues.setdefault(call_id, set()).add(queue)
        return queue

    def unlisten(self, call_id: str, queue: asyncio.Queue) -> None:
        self._queues.get(call_id, set()).discard(queue)

    def publish(self, call_id: str, event: dict) -> None:
        """`event` (with the call's id) to every listener of the call; on the event loop."""
        message = {"call_id": call_id, **event}
        for queue in list(self._queues.get(call_id, ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    def close(self, call_id: str) -> None:
        """The call is over: every listener gets None, and the call's listeners are dropped."""
        for queue in self._queues.pop(call_id, set()):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(None)

    def count(self, call_id: str) -> int:
        return len(self._queues.get(call_id, ()))
