"""Batch jobs: an uploaded file, or a URL fetched here, transcribed like a call's leg."""

import http.client
import shutil
from pathlib import Path

from sqlmodel import Session

from admin_api.crud import jobs
from admin_api.models import Job
from admin_api.outbound import describe_failure, open_url
from asr_core.audio import probe_duration
from worker.app import app, context
from worker.runs import JobInputError, JobRun, decode_options, merged, run_job

TASK = "callscribe.batch"
CHUNK = 1 << 16


@app.task(bind=True, name=TASK)
def transcribe_job(self, job_id: str) -> dict:
    result = run_job(self, job_id, _transcribe)
    if not context().config.job_keep_input:
        # Done either way (its transcript is stored, or its input is unusable): the copy would
        # only fill the disk. Runs that crashed past their retries keep it, to look into.
        shutil.rmtree(_input_path(job_id).parent, ignore_errors=True)
    return result


def _input_path(job_id: str) -> Path:
    return jobs.input_path(context().config.jobs_dir, job_id)


def _transcribe(run: JobRun, job: Job):
    config = context().config
    path = _input_path(job.id)
    if job.source_url:
        with Session(run.database) as session:
            limit_mb = jobs.settings_of(session, job.tenant_id).job_max_mb or config.job_max_mb
        fetch(
            job.source_url,
            path,
            int(limit_mb * 1_000_000),
            config.webhook_timeout_s,
            config.outbound_allow_private,
        )
    if not path.is_file():
        raise JobInputError("the job's input is gone (an upload is kept until its job is done)")
    run.total_s = probe_duration(path) or 0.0
    transcript = context().transcriber.transcribe(
        path, decode_options(config.rules, job.language), progress=run.progress
    )
    return merged({"mixed": transcript.segments}), transcript.duration


def fetch(url: str, path: Path, max_bytes: int, timeout_s: float, allow_private: bool) -> None:
    """Download `url` to `path`, refusing more than `max_bytes` (counted, not trusted) and
    private addresses unless allowed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    try:
        with open_url(url, timeout_s, allow_private) as response:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise JobInputError(_too_large(max_bytes))
            received = 0
            with partial.open("wb") as out:
                while chunk := response.read(CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise JobInputError(_too_large(max_bytes))
                    out.write(chunk)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError: an OSError
        partial.unlink(missing_ok=True)
        raise JobInputError(f"could not fetch {url[:200]}: {describe_failure(exc)}") from exc
    except JobInputError:
        partial.unlink(missing_ok=True)
        raise
    shutil.move(partial, path)


def _too_large(max_bytes: int) -> str:
    return f"the input is larger than this tenant's limit of {max_bytes / 1_000_000:g} MB"
