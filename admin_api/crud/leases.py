"""Node leases: each process holding calls renews its own; the others find the expired ones (see
`telephony.leases`)."""

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from admin_api.models import NodeLease


def renew(session: Session, node: str, now: datetime) -> None:
    lease = session.get(NodeLease, node)
    if lease is None:
        session.add(NodeLease(node=node, renewed_at=now))
    else:
        lease.renewed_at = now


def expired(session: Session, node: str, now: datetime, expiry_s: float) -> list[str]:
    """The other nodes whose lease was last renewed more than `expiry_s` ago."""
    query = select(NodeLease.node).where(
        NodeLease.node != node, NodeLease.renewed_at < now - timedelta(seconds=expiry_s)
    )
    return list(session.exec(query))


def drop(session: Session, nodes: list[str]) -> None:
    session.execute(delete(NodeLease).where(NodeLease.node.in_(nodes)))  # type: ignore[attr-defined]
