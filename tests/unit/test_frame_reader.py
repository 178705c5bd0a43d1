"""Reading a live socket ahead of its recognizer: bounded, in order, ends cleanly."""

import asyncio

from starlette.websockets import WebSocketDisconnect

from service.live import FrameReader


class FloodingSocket:
    """A client that sends `frames` binary frames of `size` bytes as fast as it is read."""

    def __init__(self, frames: int, size: int) -> None:
        self.left = frames
        self.size = size
        self.read = 0

    async def receive(self) -> dict:
        await asyncio.sleep(0)
        if self.left == 0:
            raise WebSocketDisconnect(1000)
        self.left -= 1
        self.read += 1
        if self.read == 3:
            return {"type": "websocket.receive", "text": '{"type": "ping"}'}
        return {"type": "websocket.receive", "bytes": bytes([self.read]) * self.size}


def test_reading_ahead_stops_at_its_bound_and_resumes_as_frames_are_taken():
    async def scenario():
        socket = FloodingSocket(frames=100, size=1000)
        answered: list[str] = []
        reader = FrameReader(
            socket, answer=lambda text: answered.append(text) or True, max_bytes=10_000
        )  # type: ignore[arg-type]
        for _ in range(50):
            await asyncio.sleep(0)
        held = socket.read  # a slow recognizer has taken nothing yet
        taken = [await reader.next() for _ in range(20)]
        for _ in range(50):
            await asyncio.sleep(0)
        rest = []
        while (message := await reader.next()) is not None:
            rest.append(message)
        assert await reader.next() is None  # the end stays
        return held, taken, rest, answered

    held, taken, rest, answered = asyncio.run(scenario())
    assert held <= 12  # 10 frames of 1000 bytes fill it (plus the ping, answered at once)
    assert answered == ['{"type": "ping"}']
    frames = [m["bytes"] for m in taken + rest]
    assert all(len(frame) == 1000 for frame in frames)
    assert [frame[0] for frame in frames] == [n for n in range(1, 101) if n != 3]  # all, in order
