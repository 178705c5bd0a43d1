"""The Deepgram-compatible API proven with the ecosystem's own clients against a real
`callscribe serve` (one per module, local mode): the official `deepgram-sdk` (live v1,
prerecorded, live v2 Flux), Pipecat's Deepgram services and LiveKit's Deepgram plugin."""

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from tests.helpers import espeak_audio, to_int16, wav_bytes
from tests.services import CallscribeServer

SR = 16_000
FIRST = "Please call me tomorrow morning."
SECOND = "The meeting starts at nine o'clock."


@pytest.fixture(scope="module")
def server() -> Iterator[CallscribeServer]:
    # Prerecorded URLs are served from this machine's loopback (see test_sdk_prerecorded_url).
    serve = CallscribeServer({"CALLSCRIBE_OUTBOUND_ALLOW_PRIVATE": "true"})
    serve.start()
    try:
        yield serve
    finally:
        serve.close()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """Two sentences, each followed by 1.5 s of silence (an endpoint, then UtteranceEnd)."""
    folder = tmp_path_factory.mktemp("deepgram")
    pause = np.zeros(int(1.5 * SR), dtype=np.float32)
    return np.concatenate(
        [pause[: SR // 2], espeak_audio(FIRST, folder), pause, espeak_audio(SECOND, folder), pause]
    )


def pcm_chunks(audio: np.ndarray, chunk_s: float = 0.1) -> list[bytes]:
    data = to_int16(audio).tobytes()
    size = int(chunk_s * SR) * 2
    return [data[i : i + size] for i in range(0, len(data), size)]


def deepgram_client(server: CallscribeServer):
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    http = server.url
    ws = http.replace("http://", "ws://")
    environment = DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)
    return AsyncDeepgramClient(api_key="local-key", environment=environment)


async def paced(chunks: list[bytes], send, speed: float = 1.0) -> None:
    """Send chunks at `speed` x real time (fast, yet a stream the endpointer hears pause)."""
    for chunk in chunks:
        await send(chunk)
        await asyncio.sleep(len(chunk) / 2 / SR / speed)


def as_dict(message) -> dict:
    return message if isinstance(message, dict) else message.model_dump()


# ---------------------------------------------------------------- deepgram-sdk, live v1


def test_sdk_live_v1_results_speech_final_and_vad_events(server, speech):
    async def run() -> list[dict]:
        client = deepgram_client(server)
        received: list[dict] = []
        async with client.listen.v1.connect(
            model="nova-3",
            encoding="linear16",
            sample_rate="16000",
            interim_results="true",
            vad_events="true",
            utterance_end_ms="1000",
            keyterm=["Callscribe"],
        ) as connection:

            async def collect() -> None:
                async for message in connection:
                    received.append(as_dict(message))

            reader = asyncio.create_task(collect())
            await paced(pcm_chunks(speech), connection.send_media)
            await connection.send_close_stream()
            await asyncio.wait_for(reader, 120)
        return received

    messages = asyncio.run(run())
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "Metadata" and kinds[-1] == "Metadata"
    finals = [m for m in messages if m["type"] == "Results" and m["is_final"]]
    text = " ".join(f["channel"]["alternatives"][0]["transcript"] for f in finals).lower()
    assert "tomorrow" in text and "meeting" in text
    assert any(f["speech_final"] for f in finals)
    words = [w for f in finals for w in f["channel"]["alternatives"][0]["words"]]
    assert any(w["word"] == "tomorrow" for w in words)
    assert all(w["start"] <= w["end"] for w in words)
    assert kinds.count("SpeechStarted") >= 2
    assert "UtteranceEnd" in kinds
    assert any(m["type"] == "Results" and not m["is_final"] for m in messages)


# ---------------------------------------------------------------- deepgram-sdk, prerecorded


@pytest.fixture(scope="module")
def speech_wav(speech) -> bytes:
    return wav_bytes(speech, SR)


def check_prerecorded(response) -> None:
    body = as_dict(response)
    assert body["metadata"]["duration"] > 5
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert "tomorrow" in alternative["transcript"].lower()
    assert "meeting" in alternative["transcript"].lower()
    assert any(w["word"] == "tomorrow" for w in alternative["words"])
    utterances = body["results"]["utterances"]
    assert utterances and all(u["transcript"] and u["words"] for u in utterances)
    assert utterances[0]["start"] < utterances[-1]["end"]


def test_sdk_prerecorded_file_body(server, speech_wav):
    response = asyncio.run(
        deepgram_client(server).listen.v1.media.transcribe_file(
            request=speech_wav, model="nova-3", utterances=True, keyterm=["tomorrow"]
        )
    )
    check_prerecorded(response)


def test_sdk_prerecorded_url(server, speech_wav, tmp_path):
    (tmp_path / "call.wav").write_bytes(speech_wav)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as files:
        threading.Thread(target=files.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{files.server_address[1]}/call.wav"
        try:
            response = asyncio.run(
                deepgram_client(server).listen.v1.media.transcribe_url(
                    url=url, model="nova-3", utterances=True
                )
            )
        finally:
            files.shutdown()
    check_prerecorded(response)
