"""Call rows as the gateways keep them: opened when a call is admitted, each final added as it
is sent, closed with the hot-words the call ended with; calls left active by a process that is
gone are marked interrupted."""

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session

from admin_api.models import Call, Tenant, TranscriptSegment, utcnow


def tenant_exists(session: Session, tenant_id: str) -> bool:
    return session.get(Tenant, tenant_id) is not None


def id_used(session: Session, call_id: str) -> bool:
    """Whether a call (live or past) already has this id: ids are never reused."""
    return session.get(Call, call_id) is not None


def open_call(
    session: Session,
    call_id: str,
    tenant_id: str,
    source: str,
    node: str,
    recordings: Path | None,
    language: str | None,
) -> None:
    session.add(
        Call(
            id=call_id,
            tenant_id=tenant_id,
            source=source,
            node=node,
            recording_path=str(recordings) if recordings else None,
            language=language,
        )
    )


def add_final(session: Session, call_id: str, segment: TranscriptSegment) -> None:
    """A live final, as it was sent (`kind` live)."""
    segment.call_id, segment.kind = call_id, "live"
    session.add(segment)


def close_call(
    session: Session,
    call_id: str,
    status: str,
    hotwords: str | None = None,
    hotword_version: int | None = None,
) -> None:
    """`status` ended or interrupted; `hotwords` (JSON entries) are what the post-call pass
    decodes with."""
    call = session.get(Call, call_id)
    if call is None:
        return
    call.status = status
    call.ended_at = utcnow()
    if hotwords is not None:
        call.hotwords = hotwords
        call.hotword_version = hotword_version
    session.add(call)


def interrupt_active(session: Session, nodes: Sequence[str]) -> int:
    """Mark the active calls of `nodes` (processes that are gone) interrupted; how many."""
    if not nodes:
        return 0
    result = session.execute(
        update(Call)
        .where(Call.node.in_(nodes), Call.status == "active")  # type: ignore[union-attr]
        .values(status="interrupted", ended_at=utcnow())
    )
    return result.rowcount or 0
