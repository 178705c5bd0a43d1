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
def sentences(tmp_path_factory) -> list[np.ndarray]:
    folder = tmp_path_factory.mktemp("deepgram")
    return [espeak_audio(FIRST, folder), espeak_audio(SECOND, folder)]


@pytest.fixture(scope="module")
def speech(sentences) -> np.ndarray:
    """Two sentences, each followed by 1.5 s of silence (an endpoint, then UtteranceEnd)."""
    pause = np.zeros(int(1.5 * SR), dtype=np.float32)
    return np.concatenate([pause[: SR // 2], sentences[0], pause, sentences[1], pause])


@pytest.fixture(scope="module")
def speech_ends(sentences) -> tuple[float, float]:
    """Where each sentence of `speech` ends, in seconds."""
    first = 0.5 + len(sentences[0]) / SR
    return first, first + 1.5 + len(sentences[1]) / SR


def pcm_chunks(audio: np.ndarray, chunk_s: float = 0.1) -> list[bytes]:
    data = to_int16(audio).tobytes()
    size = int(chunk_s * SR) * 2
    return [data[i : i + size] for i in range(0, len(data), size)]


def deepgram_client(server: CallscribeServer):
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    http = server.url
    ws = http.replace("http://", "ws://")
    environment = DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)
    return AsyncDeepgramClient(api_key="local", environment=environment)


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


# ---------------------------------------------------------------- deepgram-sdk, live v2 (Flux)


def check_turn_order(infos: list[dict]) -> None:
    """Flux's state machine: a turn starts once; EagerEndOfTurn (never empty) is followed by
    TurnResumed or EndOfTurn, and EndOfTurn then repeats its transcript word for word."""
    state, eager = "idle", None
    for info in infos:
        event = info["event"]
        if event == "StartOfTurn":
            assert state == "idle", infos
            state = "open"
        elif event == "Update":
            assert state == "open", infos
        elif event == "EagerEndOfTurn":
            assert state == "open" and info["transcript"], infos
            state, eager = "eager", info["transcript"]
        elif event == "TurnResumed":
            assert state == "eager", infos
            state, eager = "open", None
        elif event == "EndOfTurn":
            assert state in ("open", "eager"), infos
            if state == "eager":
                assert info["transcript"] == eager, infos
            state, eager = "idle", None
    assert state == "idle", infos


async def flux_session(
    server,
    audio: np.ndarray,
    holds: tuple[float, ...] = (),
    configure: dict | None = None,
    **query,
) -> list[dict]:
    """Stream `audio` at real time; at each of `holds` (seconds into the audio, inside a
    pause) wait for the next EagerEndOfTurn before going on. On a loaded machine a decode
    can take longer than the pause; holding there keeps the test about the order of events
    (the latency is bench.voicebot's business)."""
    client = deepgram_client(server)
    received: list[dict] = []
    async with client.listen.v2.connect(
        model="flux-general-en", encoding="linear16", sample_rate="16000", **query
    ) as connection:

        async def collect() -> None:
            async for message in connection:
                received.append(as_dict(message))

        def eager_count() -> int:
            return sum(1 for m in received if m.get("event") == "EagerEndOfTurn")

        reader = asyncio.create_task(collect())
        if configure is not None:
            await connection.send_configure(configure)
        start = 0
        for hold in (*holds, None):
            end = len(audio) if hold is None else int(hold * SR)
            seen = eager_count()
            await paced(pcm_chunks(audio[start:end]), connection.send_media)
            start = end
            if hold is not None:
                for tick in range(600):
                    if eager_count() > seen:
                        break
                    if tick % 50 == 49:  # no audio meanwhile: keep the socket from idling out
                        await connection.send_configure({"type": "Configure", "thresholds": {}})
                    await asyncio.sleep(0.1)
        await connection.send_close_stream()
        await asyncio.wait_for(reader, 120)
    return received


def test_sdk_live_v2_turn_events(server, speech, speech_ends):
    holds = (speech_ends[0] + 0.3, speech_ends[1] + 0.3)
    messages = asyncio.run(
        flux_session(
            server,
            speech,
            holds,
            {"type": "Configure", "thresholds": {"eot_threshold": 0.9}, "keyterms": ["Zhao"]},
            eager_eot_threshold="0.5",
        )
    )
    configured = next(m for m in messages if m["type"] == "ConfigureSuccess")
    assert configured["thresholds"]["eot_threshold"] == 0.9
    assert configured["keyterms"] == ["Zhao"]
    assert messages[0]["type"] == "Connected"
    infos = [m for m in messages if m["type"] == "TurnInfo"]
    check_turn_order(infos)
    ends = [i for i in infos if i["event"] == "EndOfTurn"]
    assert len(ends) >= 2
    text = " ".join(i["transcript"] for i in ends).lower()
    assert "tomorrow" in text and "meeting" in text
    assert [i["turn_index"] for i in ends] == list(range(len(ends)))
    assert any(i["event"] == "Update" for i in infos)
    eager = [i for i in infos if i["event"] == "EagerEndOfTurn"]
    assert eager and all(i["transcript"] for i in eager)
    assert [m["sequence_id"] for m in messages] == list(range(len(messages)))


def test_sdk_live_v2_turn_resumed_after_a_pause_mid_sentence(server, tmp_path):
    """A pause shorter than the end-of-turn silence (eot_threshold 0.9: 700 ms) but longer
    than the eager one: EagerEndOfTurn, then TurnResumed when the speaker goes on."""
    pause = np.zeros(int(0.6 * SR), dtype=np.float32)
    first = espeak_audio("Please call me", tmp_path)
    audio = np.concatenate(
        [
            pause,
            first,
            pause,
            espeak_audio("tomorrow morning about the meeting.", tmp_path),
            np.zeros(int(1.5 * SR), dtype=np.float32),
        ]
    )
    messages = asyncio.run(
        flux_session(
            server,
            audio,
            (0.6 + len(first) / SR + 0.3,),
            eager_eot_threshold="0.3",
            eot_threshold="0.9",
        )
    )
    infos = [m for m in messages if m["type"] == "TurnInfo"]
    check_turn_order(infos)
    events = [i["event"] for i in infos]
    assert "TurnResumed" in events, " ".join(events)
    ends = [i for i in infos if i["event"] == "EndOfTurn"]
    assert "meeting" in ends[-1]["transcript"].lower()


# ---------------------------------------------------------------- Pipecat


class Collector:
    """The last processor of a Pipecat pipeline: keeps every frame that reaches it."""

    @staticmethod
    def make():
        from pipecat.processors.frame_processor import FrameProcessor

        class _Collector(FrameProcessor):
            def __init__(self) -> None:
                super().__init__()
                self.frames: list = []

            async def process_frame(self, frame, direction) -> None:
                await super().process_frame(frame, direction)
                self.frames.append(frame)
                await self.push_frame(frame, direction)

        return _Collector()


async def run_pipeline(processors: list, audio: np.ndarray, done) -> list:
    """Run `processors` then a collector; feed `audio` as 20 ms input frames at real time;
    end once `done(frames)` holds (or 60 s after the audio)."""
    from pipecat.frames.frames import EndFrame, InputAudioRawFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.workers.runner import WorkerRunner

    collector = Collector.make()
    worker = PipelineWorker(
        Pipeline([*processors, collector]),
        params=PipelineParams(audio_in_sample_rate=SR),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )

    async def feed() -> None:
        await asyncio.sleep(1.0)  # the services connect on StartFrame
        for chunk in pcm_chunks(audio, 0.02):
            await worker.queue_frame(
                InputAudioRawFrame(audio=chunk, sample_rate=SR, num_channels=1)
            )
            await asyncio.sleep(0.02)
        for _ in range(600):
            if done(collector.frames):
                break
            await asyncio.sleep(0.1)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), feed()), 180)
    return collector.frames


def transcripts(frames: list) -> str:
    from pipecat.frames.frames import TranscriptionFrame

    return " ".join(f.text for f in frames if isinstance(f, TranscriptionFrame)).lower()


def test_pipecat_deepgram_stt_service(server, speech):
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.frames.frames import VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.services.deepgram.stt import DeepgramSTTService

    stt = DeepgramSTTService(api_key="local", base_url=server.url)
    frames = asyncio.run(
        run_pipeline(
            [VADProcessor(vad_analyzer=SileroVADAnalyzer()), stt],
            speech,
            lambda frames: "meeting" in transcripts(frames),
        )
    )
    text = transcripts(frames)
    assert "tomorrow" in text and "meeting" in text
    assert any(isinstance(f, VADUserStartedSpeakingFrame) for f in frames)
    assert any(isinstance(f, VADUserStoppedSpeakingFrame) for f in frames)


def test_pipecat_deepgram_flux_stt_service(server, speech):
    from pipecat.frames.frames import (
        ProposedUserStartedSpeakingFrame,
        ProposedUserStoppedSpeakingFrame,
    )
    from pipecat.services.deepgram.flux.stt import DeepgramFluxSTTService

    ws = server.url.replace("http://", "ws://")
    stt = DeepgramFluxSTTService(api_key="local", url=f"{ws}/v2/listen")
    frames = asyncio.run(
        run_pipeline([stt], speech, lambda frames: "meeting" in transcripts(frames))
    )
    text = transcripts(frames)
    assert "tomorrow" in text and "meeting" in text
    assert any(isinstance(f, ProposedUserStartedSpeakingFrame) for f in frames)
    assert any(isinstance(f, ProposedUserStoppedSpeakingFrame) for f in frames)


# ---------------------------------------------------------------- LiveKit Agents


def test_livekit_deepgram_stt_stream(server, speech):
    import aiohttp
    from livekit import rtc
    from livekit.agents import stt as agents_stt
    from livekit.plugins import deepgram

    async def run() -> list:
        async with aiohttp.ClientSession() as session:
            recognizer = deepgram.STT(
                api_key="local",
                base_url=f"{server.url}/v1/listen",
                http_session=session,
                interim_results=True,
                language="en-US",
            )
            stream = recognizer.stream()
            events: list = []

            async def collect() -> None:
                async for event in stream:
                    events.append(event)

            reader = asyncio.create_task(collect())
            for chunk in pcm_chunks(speech, 0.02):
                samples = len(chunk) // 2
                stream.push_frame(
                    rtc.AudioFrame(
                        data=chunk, sample_rate=SR, num_channels=1, samples_per_channel=samples
                    )
                )
                await asyncio.sleep(0.02)
            stream.end_input()
            await asyncio.wait_for(reader, 120)
            await stream.aclose()
            return events

    events = asyncio.run(run())
    kinds = {e.type for e in events}
    assert agents_stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds
    finals = [e for e in events if e.type == agents_stt.SpeechEventType.FINAL_TRANSCRIPT]
    text = " ".join(e.alternatives[0].text for e in finals).lower()
    assert "tomorrow" in text and "meeting" in text
    assert agents_stt.SpeechEventType.END_OF_SPEECH in kinds
