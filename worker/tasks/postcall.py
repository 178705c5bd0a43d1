"""The post-call pass: each leg's recording decoded again offline, with full context, beam 5 and
VAD, with the hot-words the call ended with; the legs merged into one timeline by leg."""

import wave
from pathlib import Path

from sqlmodel import Session

from admin_api.crud.hotword_lists import decode
from admin_api.crud.jobs import postcall_id
from admin_api.models import Call, Job
from asr_core.hotwords import HotwordIndex, HotwordList
from worker.app import app, context
from worker.runs import JobInputError, JobRun, decode_options, merged, run_job

TASK = "callscribe.postcall"


@app.task(bind=True, name=TASK)
def transcribe_call(self, call_id: str) -> dict:
    return run_job(self, postcall_id(call_id), _transcribe)


def _transcribe(run: JobRun, job: Job):
    with Session(run.database) as session:
        call = session.get(Call, job.call_id)
    if call is None or not call.recording_path:
        raise JobInputError(f"call {job.call_id} has no recordings")
    recordings = sorted(Path(call.recording_path).glob("*.wav"))
    if not recordings:
        raise JobInputError(f"no recordings of call {call.id} in {call.recording_path}")
    hotwords = None
    if call.hotwords:
        hotwords = HotwordIndex(HotwordList(decode(call.hotwords), call.hotword_version))
    options = decode_options(context().config.rules, call.language, hotwords)
    transcriber = context().transcriber
    run.total_s = sum(_seconds(path) for path in recordings)
    legs, done, duration = {}, 0.0, 0.0
    for path in recordings:
        transcript = transcriber.transcribe(
            path, options, progress=lambda seconds, before=done: run.progress(before + seconds)
        )
        legs[path.stem] = transcript.segments
        done += transcript.duration
        duration = max(duration, transcript.duration)
    return merged(legs), duration


def _seconds(path: Path) -> float:
    """A leg's length from its WAV header (0 when a crash left the header unwritten)."""
    try:
        with wave.open(str(path)) as recording:
            return recording.getnframes() / recording.getframerate()
    except (wave.Error, EOFError, OSError):
        return 0.0
