"""Calls, jobs and transcript segments written straight into the admin database, as the call
hub (live finals) and the worker (post-call and batch passes) write them: the search index's
triggers see exactly what they see in production."""

import json
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.crud import transcripts
from admin_api.models import Call, Job, TranscriptSegment


def words_of(text: str, start_ms: int, end_ms: int) -> list[dict]:
    """Word times spread evenly over the segment (space-separated words, else characters)."""
    tokens = text.split() if " " in text else list(text)
    step = (end_ms - start_ms) // max(len(tokens), 1)
    return [
        {
            "word": token,
            "start_ms": start_ms + i * step,
            "end_ms": start_ms + (i + 1) * step,
            "confidence": 0.9,
        }
        for i, token in enumerate(tokens)
    ]


def segment(leg: str, start_ms: int, end_ms: int, text: str, **fields) -> TranscriptSegment:
    words = fields.pop("words", None)
    if words is None:
        words = words_of(text, start_ms, end_ms)
    return TranscriptSegment(
        leg=leg,
        start_ms=start_ms,
        end_ms=end_ms,
        text=text,
        words=json.dumps(words, ensure_ascii=False),
        **fields,
    )


def store_call(
    engine: Engine,
    tenant: str,
    call_id: str,
    live: list[TranscriptSegment] = (),
    post: list[TranscriptSegment] = (),
    started_at: datetime | None = None,
    **fields,
) -> None:
    """A call with its live finals (one commit each, as the hub stores them) and post-call
    pass (replaced in one transaction, as the worker stores it)."""
    with Session(engine) as session:
        session.add(
            Call(
                id=call_id,
                tenant_id=tenant,
                source=fields.pop("source", "sip"),
                status=fields.pop("status", "ended"),
                started_at=started_at or datetime.now(UTC),
                **fields,
            )
        )
        session.commit()
    for row in live:
        with Session(engine) as session:
            row.call_id, row.kind = call_id, "live"
            session.add(row)
            session.commit()
    if post:
        with Session(engine) as session:
            transcripts.replace(session, list(post), call_id=call_id)
            session.commit()


def store_job(
    engine: Engine, tenant: str, job_id: str, post: list[TranscriptSegment], **fields
) -> None:
    with Session(engine) as session:
        session.add(Job(id=job_id, tenant_id=tenant, kind="batch", status="completed", **fields))
        session.flush()
        transcripts.replace(session, list(post), job_id=job_id)
        session.commit()
