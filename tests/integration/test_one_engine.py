"""One engine per deployment: `callscribe serve --model <Fun-ASR-Nano folder>` (a tiny random
checkpoint in the released layout) decodes live calls with the FunAudio engine, and its
embedded worker re-transcribes them after hang-up with the same engine, not the default
Whisper model: the post-call transcript says which engine made it."""

import json
import time

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from tests.combined_server import bearer, tenant_database
from tests.helpers import espeak_audio, to_int16
from tests.services import CallscribeServer

pytest.importorskip("torch")
from tests.tiny_funaudio import write_tiny_checkpoint

POSTCALL_S = 240  # the worker process starts (torch), loads the checkpoint, decodes


def test_serve_with_a_funaudio_folder_runs_funaudio_after_the_call_too(tmp_path):
    folder = write_tiny_checkpoint(tmp_path / "Fun-ASR-Nano-tiny")
    url = f"sqlite:///{tmp_path}/admin.db"
    key = tenant_database(url)
    speech = espeak_audio("Please call me tomorrow morning.", tmp_path)
    audio = np.concatenate([speech, np.zeros(16_000, np.float32)])
    settings = {"CALLSCRIBE_DATABASE_URL": url, "CALLSCRIBE_WORKER_EMBEDDED": "true"}
    headers = bearer(key)

    server = CallscribeServer(settings, model=str(folder))
    with server, httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        assert client.get("/healthz").json()["engine"] == "funaudio"
        ws_url = server.url.replace("http", "ws") + "/v1/media-streams/audio-fork"
        with connect(ws_url, additional_headers=headers) as fork:
            fork.send(json.dumps({"callId": "fun-1", "sampleRate": 16000}))
            assert json.loads(fork.recv(30))["type"] == "started"
            pcm = to_int16(audio).tobytes()
            for offset in range(0, len(pcm), 6400):  # 200 ms frames
                fork.send(pcm[offset : offset + 6400])
            fork.send(json.dumps({"type": "end"}))
            assert json.loads(fork.recv(120))["type"] == "ended"

        deadline = time.monotonic() + POSTCALL_S
        while (job := client.get("/v1/jobs/postcall-fun-1").json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["status"] == "completed", job
        assert job["engine"] == "funaudio" and job["model"] == str(folder), job
        transcript = client.get("/v1/calls/fun-1/transcript")
        assert transcript.status_code == 200, transcript.text
        assert transcript.json()["engine"] == "funaudio"
