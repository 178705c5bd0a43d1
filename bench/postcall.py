"""Post-call throughput: audio hours per wall hour through the real worker path, against plain
faster-whisper on the same files in the same run.

    python -m bench.postcall [--calls 3] [--call-minutes 1.5] [--model whisper-base]

Builds two-leg calls (agent, customer) from the shared speech clips, taking turns with pauses,
as the gateways record them (one 16 kHz WAV per leg). The post-call side is what production
runs: call rows in a database, `TaskQueue.postcall` on the embedded broker, a `callscribe
worker` process (one task at a time, all cores), timed from queueing to the last job completed
(the worker and its model are warmed up first). The baseline transcribes every leg with
`WhisperModel.transcribe(beam_size=5, vad_filter=True)` in this process, all cores. Prints JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from admin_api import migrate
from admin_api.db import make_engine
from admin_api.models import Call, Job, Tenant
from asr_core.audio import decode_audio
from asr_core.evaluation import read_manifest
from asr_core.model_registry import resolve_model
from bench.common import REPO, plain_faster_whisper, testdata_dir, threads
from callscribe.config import Settings
from callscribe.parts import broker_config
from worker.app import make_celery
from worker.service import TaskQueue

SR = 16_000


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def build_calls(folder: Path, calls: int, minutes: float) -> list[Path]:
    """Folders of `agent.wav` + `customer.wav`: English clips in turns, 0.5-2 s apart."""
    clips = [
        decode_audio(u.path)
        for u in read_manifest(testdata_dir() / "manifest.tsv")
        if u.language == "en"
    ]
    rng = np.random.default_rng(0)
    folders = []
    for number in range(calls):
        legs = {"agent": [], "customer": []}
        length = 0
        speaker = "agent"
        while length < minutes * 60 * SR:
            clip = clips[int(rng.integers(len(clips)))]
            gap = np.zeros(int(rng.uniform(0.5, 2.0) * SR), np.float32)
            other = "customer" if speaker == "agent" else "agent"
            legs[speaker] += [clip, gap]
            legs[other] += [np.zeros(len(clip) + len(gap), np.float32)]
            length += len(clip) + len(gap)
            speaker = other
        call = folder / f"call-{number}"
        call.mkdir(parents=True)
        for leg, parts in legs.items():
            write_wav(call / f"{leg}.wav", np.concatenate(parts))
        folders.append(call)
    return folders


def leg_seconds(folders: list[Path]) -> float:
    total = 0.0
    for folder in folders:
        for path in folder.glob("*.wav"):
            with wave.open(str(path)) as recording:
                total += recording.getnframes() / SR
    return total


def run_postcall(work: Path, folders: list[Path], model: str) -> float:
    """Queue every call's post-call pass on a warm worker; seconds until all completed."""
    url = f"sqlite:///{work}/bench.db"
    migrate.upgrade(url)
    database = make_engine(url)
    settings = Settings(_env_file=None, database_url=url, var_dir=work, model=model)
    env = {
        **os.environ,
        "CALLSCRIBE_DATABASE_URL": url,
        "CALLSCRIBE_VAR_DIR": str(work),
        "CALLSCRIBE_MODEL": model,
        "CALLSCRIBE_CPU_THREADS": str(threads()),
        "CALLSCRIBE_LOG_LEVEL": "warning",
    }
    with Session(database) as session:
        session.add(Tenant(id="bench", name="bench"))
        session.flush()
        calls = [("warmup", folders[0])] + [(folder.name, folder) for folder in folders]
        for call_id, folder in calls:
            session.add(
                Call(
                    id=call_id,
                    tenant_id="bench",
                    source="bench",
                    status="ended",
                    recording_path=str(folder),
                    language="en",
                )
            )
        session.commit()
    queue = TaskQueue(make_celery(broker_config(settings)), database)
    worker = subprocess.Popen(
        [sys.executable, "-m", "callscribe", "worker"],
        env=env,
        cwd=REPO,
        stdout=sys.stderr,  # its banner; stdout is the JSON result
        start_new_session=True,
    )
    try:
        queue.postcall("warmup")
        wait_completed(database, 1)
        started = time.perf_counter()
        for folder in folders:
            queue.postcall(folder.name)
        wait_completed(database, 1 + len(folders))
        return time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(60)
        database.dispose()


def wait_completed(database, count: int) -> None:
    while True:
        with Session(database) as session:
            jobs = session.exec(select(Job)).all()
        failed = [j for j in jobs if j.status == "failed"]
        if failed:
            sys.exit(f"post-call job failed: {failed[0].error}")
        if sum(j.status == "completed" for j in jobs) >= count:
            return
        time.sleep(0.2)


def run_baseline(folders: list[Path], model: str) -> float:
    whisper = plain_faster_whisper(resolve_model(model))
    started = time.perf_counter()
    for folder in folders:
        for path in sorted(folder.glob("*.wav")):
            segments, _ = whisper.transcribe(
                str(path), beam_size=5, vad_filter=True, language="en", word_timestamps=True
            )
            list(segments)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--call-minutes", type=float, default=1.5)
    parser.add_argument("--model", default="whisper-base")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-postcall-") as tmp:
        work = Path(tmp)
        folders = build_calls(work / "recordings", args.calls, args.call_minutes)
        audio_s = leg_seconds(folders)
        post_s = run_postcall(work, folders, args.model)
        plain_s = run_baseline(folders, args.model)
    post_rate, plain_rate = audio_s / post_s, audio_s / plain_s
    print(
        json.dumps(
            {
                "model": args.model,
                "calls": args.calls,
                "legs": 2 * args.calls,
                "audio_s": round(audio_s, 1),
                "threads": threads(),
                "postcall": {"wall_s": round(post_s, 2), "audio_h_per_wall_h": round(post_rate, 2)},
                "faster_whisper": {
                    "wall_s": round(plain_s, 2),
                    "audio_h_per_wall_h": round(plain_rate, 2),
                },
                "ratio": round(post_rate / plain_rate, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
