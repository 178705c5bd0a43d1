"""Outside clients of the two live protocols: one clip per connection, at real-time pace.

What a caller feels is measured from the audio as sent, never from the server's own times:
the clip's speech onset and offset come from its energy (30 ms frames against the clip's
loudest frames, as `../shared/tools/stream_probe.py` does), and each event is timed when it
arrives. First partial: onset -> first message with text. Final: offset -> the clip's last
final with text.

- native (`/v1/stream`): 100 ms PCM16 frames, then silence, then `{"type": "end"}`; events
  until `closed` (what `../shared/tools/native_probe.py` does);
- FunASR (`/`): the `2pass` config FunASR's own client sends, 60 ms frames, silence, then
  `{"is_speaking": false}`; messages until `is_end` (what `stream_probe.py` does).
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np
import websockets

SR = 16_000
ENERGY_FRAME = 480
"""30 ms."""
RECEIVE_AFTER_END_S = 60.0
"""How long a client waits for the server to finish after the end of its audio; a final later
than this counts as missing."""


def speech_bounds(audio: np.ndarray) -> tuple[float, float]:
    """(onset_s, offset_s) of the speech in a clip: frames louder than a tenth of the 95th
    percentile of frame energy."""
    usable = len(audio) // ENERGY_FRAME * ENERGY_FRAME
    frames = audio[:usable].reshape(-1, ENERGY_FRAME)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.nonzero(rms > 0.1 * np.percentile(rms, 95))[0] if len(rms) else []
    if not len(loud):
        return 0.0, len(audio) / SR
    return loud[0] * ENERGY_FRAME / SR, (loud[-1] + 1) * ENERGY_FRAME / SR


@dataclass
class ClipResult:
    """What one client saw of one clip."""

    clip: str
    protocol: str
    text: str = ""
    """The clip's finals, joined as the protocol's clients join them."""
    first_partial_s: float | None = None
    final_s: float | None = None
    """Speech offset -> the last final with text; None: no final with text came."""
    finals: int = 0
    partials: int = 0
    final_before_end: bool = False
    """The last final came before the client said its audio had ended (server endpointing)."""
    errors: list[str] = field(default_factory=list)
    ended: bool = False
    """The server acknowledged the end of the audio in time."""


async def _send_paced(ws, pcm: bytes, frame_bytes: int, started: float) -> None:
    """Send `pcm` in frames on an absolute real-time schedule (late frames catch up)."""
    for index in range(0, len(pcm), frame_bytes):
        await asyncio.sleep(max(0.0, started + index / 2 / SR - time.perf_counter()))
        await ws.send(pcm[index : index + frame_bytes])


def _pcm(audio: np.ndarray, silence_s: float) -> bytes:
    padded = np.concatenate([audio, np.zeros(int(silence_s * SR), dtype=np.float32)])
    return (np.clip(padded, -1, 1) * 32767).astype("<i2").tobytes()


async def native_clip(url: str, name: str, audio: np.ndarray, silence_s: float) -> ClipResult:
    onset, offset = speech_bounds(audio)
    pcm = _pcm(audio, silence_s)
    result = ClipResult(name, "native")
    texts: list[str] = []
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"encoding": "pcm_s16le", "sample_rate": SR, "language": "auto"}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            result.errors.append(f"refused: {ready}")
            return result
        started = time.perf_counter()
        end_sent: list[float] = []

        async def receive() -> None:
            async for raw in ws:
                now, event = time.perf_counter(), json.loads(raw)
                kind = event.get("type")
                if kind == "partial" and event.get("text"):
                    result.partials += 1
                    if result.first_partial_s is None:
                        result.first_partial_s = now - started - onset
                elif kind == "final":
                    result.finals += 1
                    if event.get("text"):
                        texts.append(event["text"])
                        result.final_s = now - started - offset
                        result.final_before_end = not end_sent
                elif kind == "error":
                    result.errors.append(f"{event.get('code')}: {event.get('message')}")
                elif kind == "closed":
                    result.ended = True
                    return

        receiver = asyncio.create_task(receive())
        await _send_paced(ws, pcm, int(0.1 * SR) * 2, started)
        end_sent.append(time.perf_counter())
        await ws.send(json.dumps({"type": "end"}))
        await _wait(receiver, result)
    result.text = " ".join(t.strip() for t in texts)
    return result


FUNASR_CONFIG = {
    "mode": "2pass",
    "chunk_size": [5, 10, 5],
    "chunk_interval": 10,
    "encoder_chunk_look_back": 4,
    "decoder_chunk_look_back": 0,
    "audio_fs": SR,
    "wav_format": "pcm",
    "is_speaking": True,
    "hotwords": "",
    "itn": True,
}
"""What FunASR's `funasr_wss_client.py` sends for a 2pass stream."""


async def funasr_clip(url: str, name: str, audio: np.ndarray, silence_s: float) -> ClipResult:
    onset, offset = speech_bounds(audio)
    pcm = _pcm(audio, silence_s)
    result = ClipResult(name, "funasr")
    texts: list[str] = []
    async with websockets.connect(
        url, subprotocols=["binary"], max_size=None, ping_interval=None
    ) as ws:
        await ws.send(json.dumps({**FUNASR_CONFIG, "wav_name": name}))
        started = time.perf_counter()
        end_sent: list[float] = []

        async def receive() -> None:
            async for raw in ws:
                now, message = time.perf_counter(), json.loads(raw)
                mode = message.get("mode")
                if message.get("error"):
                    result.errors.append(f"{message.get('code')}: {message.get('error')}")
                if mode in ("online", "2pass-online") and message.get("text"):
                    result.partials += 1
                    if result.first_partial_s is None:
                        result.first_partial_s = now - started - onset
                elif mode in ("offline", "2pass-offline") and message.get("text"):
                    result.finals += 1
                    texts.append(message["text"])
                    result.final_s = now - started - offset
                    result.final_before_end = not end_sent
                if message.get("is_end"):
                    result.ended = True
                    return

        receiver = asyncio.create_task(receive())
        await _send_paced(ws, pcm, int(0.06 * SR) * 2, started)
        end_sent.append(time.perf_counter())
        await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
        await _wait(receiver, result)
    result.text = "".join(texts)  # FunASR clients concatenate; the server spaces Latin words
    return result


async def _wait(receiver: asyncio.Task, result: ClipResult) -> None:
    try:
        await asyncio.wait_for(receiver, RECEIVE_AFTER_END_S)
    except TimeoutError:
        result.errors.append(f"no end of stream within {RECEIVE_AFTER_END_S:.0f} s")
    except websockets.ConnectionClosed as exc:
        result.errors.append(f"connection closed: {exc}")


CLIENTS = {"native": (native_clip, "/v1/stream"), "funasr": (funasr_clip, "/")}
