"""Audio builders for tests: WAV writing, PyAV encoding, espeak-ng speech."""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from asr_core.audio import decode_audio


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def wav_bytes(audio: np.ndarray, rate: int, channels: int = 1) -> bytes:
    """PCM16 WAV; `audio` is float (frames,) or (frames, channels)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(to_int16(audio).tobytes())
    return buffer.getvalue()


def encode(
    audio: np.ndarray, rate: int, codec: str, container: str, out_rate: int | None = None
) -> bytes:
    """Encode mono float audio with PyAV (e.g. pcm_mulaw in wav, libopus in ogg)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=out_rate or rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(to_int16(audio)[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(
            format=stream.codec_context.format, layout="mono", rate=out_rate or rate
        )
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def dominant_frequency(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


def espeak_wav(text: str, path: Path, voice: str = "en-us", speed: int = 150) -> Path:
    """Synthesise speech with espeak-ng (Mandarin: voice `cmn-latn-pinyin`, pinyin text)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


def padded_wav(source: Path, path: Path, silence_s: float = 2.0) -> Path:
    """`source` as 16 kHz mono PCM16 WAV with `silence_s` of silence after it: what a fake
    microphone plays in a loop, the silence ending each pass's segment."""
    audio = decode_audio(source)
    silence = np.zeros(int(silence_s * 16_000), np.float32)
    path.write_bytes(wav_bytes(np.concatenate([audio, silence]), 16_000))
    return path


def espeak_audio(text: str, tmp_path: Path, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech as 16 kHz mono float32, without espeak's leading/trailing silence."""
    audio = decode_audio(espeak_wav(text, tmp_path / f"speech-{abs(hash(text))}.wav", voice))
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def refused_stream(client, path: str, close_code: int, headers: dict | None = None) -> dict:
    """Open a WebSocket that the server must refuse: returns the error event it sends first,
    after checking the socket is then closed with `close_code`."""
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect(path, headers=headers or {}) as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == close_code, closed.value
    return error


def openapi_routes(client):
    """Every (path, method) the app documents: tests walk these so no new route escapes."""
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method in operations:
            yield path, method


def fill_path(
    path: str, tenant: str, call_id: str = "call-1", job_id: str = "job-1", leg: str = "mixed"
) -> str:
    return (
        path.replace("{tenant_id}", tenant)
        .replace("{name}", "products")
        .replace("{prefix}", "cs_00000000")
        .replace("{call_id}", call_id)
        .replace("{job_id}", job_id)
        .replace("{leg}", leg)
    )


def query_parameters(client, path: str, method: str) -> set[str]:
    """The query parameters the app documents for one route."""
    operation = client.get("/openapi.json").json()["paths"][path][method]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


@contextlib.contextmanager
def busy_cpu(processes: int | None = None) -> Iterator[None]:
    """The machine oversubscribed: a process spinning on each core (or `processes` of them),
    as when another heavy job shares the box."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(processes or os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
