"""Stored transcripts: a call's live finals and post-call pass, a batch job's result."""

from sqlalchemy import delete
from sqlmodel import Session, col, select

from admin_api.models import TranscriptSegment

PASSES = ("live", "post")


def segments(
    session: Session, *, call_id: str | None = None, job_id: str | None = None, kind: str = "post"
) -> list[TranscriptSegment]:
    """One pass of a call (or a job's transcript), on one timeline: by start, then leg."""
    query = select(TranscriptSegment).where(TranscriptSegment.kind == kind)
    if call_id is not None:
        query = query.where(TranscriptSegment.call_id == call_id)
    else:
        query = query.where(TranscriptSegment.job_id == job_id)
    order = (col(TranscriptSegment.start_ms), col(TranscriptSegment.leg), col(TranscriptSegment.id))
    return list(session.exec(query.order_by(*order)))


def replace(
    session: Session,
    rows: list[TranscriptSegment],
    *,
    call_id: str | None = None,
    job_id: str | None = None,
) -> None:
    """Put `rows` in place of the call's (or job's) post-call transcript, in the session's
    transaction: a task that runs again replaces its earlier result, never adds to it."""
    owner = (
        TranscriptSegment.call_id == call_id
        if call_id is not None
        else TranscriptSegment.job_id == job_id
    )
    session.execute(delete(TranscriptSegment).where(owner, col(TranscriptSegment.kind) == "post"))
    for row in rows:
        row.call_id, row.job_id, row.kind = call_id, job_id, "post"
        session.add(row)
