import json

from sqlmodel import Session, col, select

from admin_api.models import AuditEvent


def record(
    session: Session, actor: str, action: str, tenant_id: str | None, target: str = "", **detail
) -> None:
    """Add an audit event to the session (committed with the change it describes)."""
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            target=target,
            detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else "",
        )
    )


def events(session: Session, tenant_id: str, limit: int = 200) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant_id)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))
