"""`GET /v1/calls`: a tenant's calls (live and past), newest first; `?active=true` for the
ones in progress. `?since=` gives the calls started from then on, oldest first, a page of
`limit` at a time (`offset` for the next): what a back office syncing transcripts walks. Admin
keys see every tenant's, or one with `?tenant_id=`."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from admin_api.api.deps import PrincipalDep, SessionDep
from admin_api.models import Call
from admin_api.schemas import CallPublic

router = APIRouter(tags=["calls"])


@router.get("/v1/calls", response_model=list[CallPublic])
def list_calls(
    principal: PrincipalDep,
    session: SessionDep,
    active: bool | None = Query(None, description="true: in progress; false: finished"),
    tenant_id: str | None = Query(None, description="Admin keys only: one tenant's calls"),
    since: Annotated[
        datetime | None, Query(description="Calls started at or after this, oldest first")
    ] = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[Call]:
    order = col(Call.started_at).desc() if since is None else col(Call.started_at).asc()
    query = select(Call).order_by(order, col(Call.id)).offset(offset).limit(limit)
    if since is not None:
        query = query.where(Call.started_at >= since)
    if not principal.is_admin:
        query = query.where(Call.tenant_id == principal.tenant_id)
    elif tenant_id is not None:
        query = query.where(Call.tenant_id == tenant_id)
    if active is not None:
        query = (
            query.where(Call.status == "active") if active else query.where(Call.status != "active")
        )
    return list(session.exec(query).all())
