"""The HTTP service: OpenAI-compatible transcriptions, errors, limits, health, a real server."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from service import ServiceConfig, create_app
from tests.helpers import espeak_wav, tone, wav_bytes

URL = "/v1/audio/transcriptions"


@pytest.fixture(scope="module")
def client(transcriber):
    app = create_app(transcriber, ServiceConfig(max_upload_bytes=2_000_000))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client, data: bytes, name: str = "speech.wav", **fields):
    return client.post(URL, files={"file": (name, data, "audio/wav")}, data=fields)


@pytest.fixture(scope="module")
def speech(english_wav) -> bytes:
    return english_wav.read_bytes()


def test_json_default(client, speech):
    response = post(client, speech)
    assert response.status_code == 200
    assert "lazy dog" in response.json()["text"].lower()


def test_text(client, speech):
    response = post(client, speech, response_format="text", language="en")
    assert response.headers["content-type"].startswith("text/plain")
    assert "tomorrow morning" in response.text.lower()


def test_srt_and_vtt(client, speech):
    srt = post(client, speech, response_format="srt").text
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "fox" in srt.lower()
    vtt = post(client, speech, response_format="vtt").text
    assert vtt.startswith("WEBVTT\n\n00:00:0") and "fox" in vtt.lower()


def test_verbose_json_with_words(client, speech):
    response = post(
        client,
        speech,
        response_format="verbose_json",
        **{"timestamp_granularities[]": "word"},
    )
    body = response.json()
    assert body["language"] == "english"
    assert body["duration"] > 3
    assert body["segments"][0]["end"] > body["segments"][0]["start"]
    words = [w["word"].lower().strip(".,") for w in body["words"]]
    assert "fox" in words and "tomorrow" in words


def test_mandarin_upload(client, mandarin_wav):
    response = post(client, mandarin_wav.read_bytes(), language="zh")
    assert "明天" in response.json()["text"]


@pytest.fixture(scope="module")
def name_clip(speech_dir) -> bytes:
    clip = espeak_wav("Please call Xiaomeng Zhao about the CRISPR assay.", speech_dir / "xz.wav")
    return clip.read_bytes()


@pytest.mark.parametrize(
    "hotwords",
    ["Xiaomeng Zhao\nCRISPR\n", '{"Xiaomeng Zhao": 20, "CRISPR": 10}', "Xiaomeng Zhao\t肖梦\n"],
    ids=["lines", "funasr-json", "tsv"],
)
def test_hotwords_field(client, name_clip, hotwords):
    plain = post(client, name_clip, language="en").json()["text"]
    biased = post(client, name_clip, language="en", hotwords=hotwords).json()["text"]
    assert "Xiaomeng" not in plain
    assert "Xiaomeng Zhao" in biased


def test_bad_hotwords_field_names_the_line(client, speech):
    response = post(client, speech, hotwords="fine\n" + "x" * 80 + "\n")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "hotword_list_error"
    assert "line 2" in response.json()["error"]["message"]


def test_corrupt_upload_is_a_4xx_and_the_server_keeps_answering(client, speech):
    bad = post(client, b"\x00\x01 definitely not audio" * 100, name="broken.mp3")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "audio_decode_error"
    assert bad.json()["error"]["message"]
    assert post(client, speech).status_code == 200


def test_oversize_upload_is_refused(client):
    big = wav_bytes(tone(440, 70.0, 16_000), 16_000)  # 2.2 MB > the 2 MB limit
    response = post(client, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_oversize_streamed_upload_without_a_length_is_refused(client):
    def chunked_body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(30):
            yield bytes(100_000)
        yield b"\r\n--b--\r\n"

    response = client.post(
        URL, content=chunked_body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413


def test_silence_upload_gives_empty_text(client):
    assert post(client, wav_bytes(tone(0, 10.0, 16_000), 16_000)).json() == {"text": ""}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"language": "fr"}, "unsupported_language"),
        ({"model": "gpt-4o-transcribe"}, "model_not_found"),
        ({"response_format": "docx"}, "invalid_request"),
        ({"temperature": "2"}, "invalid_request"),
    ],
)
def test_bad_parameters(client, speech, fields, code):
    response = post(client, speech, **fields)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] == code


def test_missing_file_field(client):
    response = client.post(URL, data={"model": "whisper-1"})
    assert response.status_code == 422
    assert "file" in response.json()["error"]["message"]


def test_health_metrics_and_docs(client, speech):
    post(client, speech)
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "engine": "whisper",
        "model": "whisper-base",
        "languages": ["en", "zh"],
        "load": {"streams": 0, "max_streams": 0, "finals_waiting": 0},
    }
    metrics = client.get("/metrics").text
    assert 'callscribe_transcription_requests_total{outcome="ok"}' in metrics
    assert client.get("/openapi.json").json()["paths"][URL]["post"]
    assert client.get("/docs").status_code == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_callscribe_serve_answers_a_curl_style_upload(speech, tmp_path):
    """What `make run` starts: a real server process, then an upload over TCP."""
    port = free_port()
    env = {
        **os.environ,
        "CALLSCRIBE_PORT": str(port),
        "CALLSCRIBE_LOG_FORMAT": "json",
        "CALLSCRIBE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "callscribe", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.3)
        response = httpx.post(f"{base}{URL}", files={"file": ("speech.wav", speech)}, timeout=120)
        assert response.status_code == 200
        assert "lazy dog" in response.json()["text"].lower()
        openai_client = OpenAI(base_url=f"{base}/v1", api_key="local", max_retries=0)
        verbose = openai_client.audio.transcriptions.create(
            model="whisper-1",
            file=("speech.wav", speech),
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
        assert "fox" in verbose.text.lower()
        assert verbose.words and verbose.words[0].start >= 0
        broken = httpx.post(f"{base}{URL}", files={"file": ("x.wav", b"junk")}, timeout=60)
        assert broken.status_code == 400
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{base}/v1/tenants", timeout=5).status_code == 401  # admin API is up
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
