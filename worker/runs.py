"""What every job task does around its decoding: status and progress in the job row, the
tenant's redaction on the way into the database, the transcript stored in place of any earlier
one, and the completion webhook queued."""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Task
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from admin_api.crud import jobs, transcripts
from admin_api.models import Job, TenantSettings, TranscriptSegment, utcnow
from asr_core.errors import AsrError
from asr_core.hotwords import HotwordIndex
from asr_core.transcribe import TranscribeOptions
from asr_core.transcript import Segment, Word
from common.rules import RequestRules
from worker.app import context as app_context
from worker.redaction import Redactor
from worker.tasks import webhooks

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
"""Progress is written at most this often (a row update per decoded window would be noise)."""


@dataclass
class LegSegment:
    """A decoded segment and the leg (or speaker) it belongs to."""

    leg: str
    segment: Segment


@dataclass
class JobRun:
    """One run of a job by a worker (a redelivered or retried task is another run)."""

    database: Engine
    job_id: str
    total_s: float = 0.0
    """Audio to decode in all, for progress (0: unknown)."""
    _written_at: float = field(default=0.0, repr=False)

    def start(self) -> Job:
        """Mark the job running; returns a detached copy of its row. A completed job is left
        as it is: its task was delivered again after it finished (queue it anew to rerun)."""
        with Session(self.database, expire_on_commit=False) as session:
            job = session.get(Job, self.job_id)
            if job is None:
                raise LookupError(f"job {self.job_id} does not exist")
            if job.status == "completed":
                return job
            jobs.set_status(job, "running")
            job.attempts += 1
            job.progress = 0.0
            session.add(job)
            session.commit()
            return job

    def progress(self, done_s: float) -> None:
        now = time.monotonic()
        if not self.total_s or now - self._written_at < PROGRESS_EVERY_S:
            return
        self._written_at = now
        with Session(self.database) as session:
            job = session.get(Job, self.job_id)
            if job is not None:
                job.progress = round(min(0.99, done_s / self.total_s), 4)
                job.updated_at = utcnow()
                session.add(job)
                session.commit()

    def complete(
        self, segments: list[LegSegment], duration_s: float, engine: str, model: str
    ) -> int:
        """Store the transcript (redacted as the tenant asks) in place of any earlier one and
        mark the job completed, with the engine and model that decoded it, in one
        transaction; returns the segments stored."""
        with Session(self.database) as session:
            # Lock the job row: two runs of one job (a redelivery racing a slow first run)
            # then replace the transcript one after the other, never interleaved.
            job = session.exec(select(Job).where(Job.id == self.job_id).with_for_update()).one()
            settings = session.get(TenantSettings, job.tenant_id)
            rows = [_row(item, settings) for item in segments]
            if job.call_id is not None:
                transcripts.replace(session, rows, call_id=job.call_id)
            else:
                transcripts.replace(session, rows, job_id=job.id)
            jobs.set_status(job, "completed")
            job.progress = 1.0
            job.duration_s = round(duration_s, 3)
            job.engine, job.model = engine, model
            session.add(job)
            session.commit()
        return len(rows)

    def fail(self, reason: str) -> None:
        with Session(self.database) as session:
            job = session.get(Job, self.job_id)
            if job is not None:
                jobs.set_status(job, "failed", reason[:2000])
                session.add(job)
                session.commit()
        logger.warning("job failed", extra={"job": self.job_id, "reason": reason})


def _row(item: LegSegment, settings: TenantSettings | None) -> TranscriptSegment:
    segment = item.segment
    text, words = segment.text.strip(), segment.words or []
    original = None
    if settings is not None and settings.redact:
        redactor = Redactor(tuple(k for k in settings.redact_kinds.split(",") if k))
        redacted = redactor.text(text)
        if redacted != text:
            original = text if settings.keep_original else None
            text, words = redacted, redactor.words(words)
    return TranscriptSegment(
        leg=item.leg,
        start_ms=round(segment.start * 1000),
        end_ms=round(segment.end * 1000),
        text=text,
        words=json.dumps([_word(w) for w in words], ensure_ascii=False),
        language=segment.language,
        hotword_version=segment.hotword_version,
        original_text=original,
    )


def _word(word: Word) -> dict:
    return {
        "word": word.word.strip(),
        "start_ms": round(word.start * 1000),
        "end_ms": round(word.end * 1000),
        "confidence": round(word.probability, 4),
    }


def merged(legs: dict[str, list[Segment]]) -> list[LegSegment]:
    """The legs' segments on one timeline (all legs start together), labelled by leg."""
    items = [LegSegment(leg, s) for leg, segments in legs.items() for s in segments]
    return sorted(items, key=lambda item: (item.segment.start, item.leg))


def decode_options(
    rules: RequestRules, language: str | None, hotwords: HotwordIndex | None = None
) -> TranscribeOptions:
    """The post-call pass: whole recordings with full context, beam 5, VAD, word times."""
    return rules.file_options(language, hotwords, beam_size=5, word_timestamps=True)


Body = Callable[[JobRun, Job], tuple[list[LegSegment], float]]
"""A job's own work: decode, report progress on the run, return the segments and duration."""


class JobInputError(Exception):
    """The job's input cannot be used (too large, not reachable, not audio): no retry helps."""


def run_job(task: Task, job_id: str, body: Body) -> dict:
    """Run `body` as a run of the job, then store its result or record why it failed.

    Bad input fails the job at once; anything else (the database away, a crash in decoding)
    is retried with exponential backoff, and fails the job when the retries run out.
    """
    context = app_context()
    run = JobRun(context.database, job_id)
    job = run.start()
    if job.status == "completed":
        return {"job_id": job_id, "status": "completed"}
    try:
        segments, duration = body(run, job)
        engine = context.transcriber.engine
        stored = run.complete(segments, duration, engine.name, engine.model_name)
    except (AsrError, JobInputError) as exc:
        run.fail(getattr(exc, "reason", None) or str(exc))
        webhooks.notify(job_id, "job.failed")
        return {"job_id": job_id, "status": "failed"}
    except Exception as exc:
        if task.request.retries < context.config.max_retries:
            delay = context.config.retry_base_s * 2**task.request.retries
            logger.warning("job run failed; retrying", extra={"job": job_id, "in_s": delay})
            raise task.retry(exc=exc, countdown=delay) from exc
        logger.exception("job run failed", extra={"job": job_id})
        run.fail(f"internal error ({exc.__class__.__name__}); the operator's logs have more")
        webhooks.notify(job_id, "job.failed")
        raise
    webhooks.notify(job_id, "job.completed")
    return {"job_id": job_id, "status": "completed", "segments": stored}
