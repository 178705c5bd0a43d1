"""`GET /v1/calls`: a tenant's calls (live and past), newest first; `?active=true` for the
ones in progress. `?since=` gives the calls started from then on, oldest first, a page of
`limit` at a time (`offset` for the next): what a back office syncing transcripts walks. Admin
keys see every tenant's, or one with `?tenant_id=`. Filters by date, status, language and leg
serve the admin UI's call history; `X-Total-Count` says how many match.

`GET /v1/calls/{id}`: one call, with its recordings and its post-call pass.
`GET /v1/calls/{id}/recordings/{leg}`: a leg's recording (WAV, HTTP Range for seeking); it
takes a stream token (`?token=`) too, as an `<audio>` element sends no headers."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse
from sqlmodel import Session, col, exists, func, or_, select

from admin_api.api.deps import MediaPrincipalDep, PrincipalDep, SessionDep, scoped_tenant
from admin_api.auth import Principal
from admin_api.crud import jobs, recordings
from admin_api.models import Call, Job, Tenant, TranscriptSegment
from admin_api.schemas import CallDetail, CallPublic, JobPublic, RecordingPublic
from common.errors import ApiError

router = APIRouter(tags=["calls"])

Status = Literal["active", "ended", "interrupted"]
LegName = Annotated[str, Path(pattern=r"^[\w-]{1,32}$", description="`agent`, `customer`, ...")]


@router.get("/v1/calls", response_model=list[CallPublic])
def list_calls(
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    active: bool | None = Query(None, description="true: in progress; false: finished"),
    tenant_id: str | None = Query(
        None, max_length=64, description="Admin keys: one tenant's calls"
    ),
    since: Annotated[
        datetime | None, Query(description="Calls started at or after this, oldest first")
    ] = None,
    until: Annotated[datetime | None, Query(description="Calls started before this")] = None,
    status: Annotated[Status | None, Query(description="One status only")] = None,
    language: Annotated[
        str | None, Query(pattern=r"^[a-z]{2,8}$", description="Decoded in this language")
    ] = None,
    leg: Annotated[
        str | None, Query(pattern=r"^[\w-]{1,32}$", description="With finals on this leg")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="By start time; default newest first, oldest first with `since`"),
    ] = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[CallPublic]:
    tenant = scoped_tenant(principal, session, tenant_id)
    query = select(Call)
    if tenant is not None:
        query = query.where(Call.tenant_id == tenant)
    if since is not None:
        query = query.where(Call.started_at >= since)
    if until is not None:
        query = query.where(Call.started_at < until)
    if active is not None:
        query = query.where((Call.status == "active") if active else (Call.status != "active"))
    if status is not None:
        query = query.where(Call.status == status)
    if language is not None:
        spoken = exists().where(
            TranscriptSegment.call_id == Call.id, TranscriptSegment.language == language
        )
        query = query.where(or_(Call.language == language, col(Call.language).is_(None) & spoken))
    if leg is not None:
        query = query.where(
            exists().where(TranscriptSegment.call_id == Call.id, TranscriptSegment.leg == leg)
        )
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    response.headers["X-Total-Count"] = str(total)
    ascending = order == "asc" or (order is None and since is not None)
    started = col(Call.started_at).asc() if ascending else col(Call.started_at).desc()
    calls = list(session.exec(query.order_by(started, col(Call.id)).offset(offset).limit(limit)))
    return _public(session, calls)


@router.get("/v1/calls/{call_id}", response_model=CallDetail)
def get_call(call_id: str, principal: PrincipalDep, session: SessionDep) -> CallDetail:
    call = _call(session, principal, call_id)
    [public] = _public(session, [call])
    legs = {r.leg: r for r in recordings.of_call(call)}
    return CallDetail(
        **public.model_dump(),
        recordings=[
            RecordingPublic(
                leg=r.leg,
                url=f"/v1/calls/{call.id}/recordings/{r.leg}",
                bytes=r.bytes,
                duration_s=r.duration_s,
            )
            for r in legs.values()
        ],
        postcall=_job(session.get(Job, jobs.postcall_id(call.id))),
    )


@router.get(
    "/v1/calls/{call_id}/recordings/{leg}",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The whole recording"},
        206: {"content": {"audio/wav": {}}, "description": "The range asked for"},
    },
)
def get_recording(
    call_id: str, leg: LegName, principal: MediaPrincipalDep, session: SessionDep
) -> FileResponse:
    call = _call(session, principal, call_id)
    if call.status == "active":
        raise ApiError(409, "call_in_progress", "the recording is complete once the call ends")
    path = recordings.path_of(call, leg)
    if path is None:
        raise ApiError(404, "recording_not_found", f"call {call_id!r} has no {leg!r} recording")
    return FileResponse(
        path,
        media_type="audio/wav",
        filename=f"{call.id}-{leg}.wav",
        content_disposition_type="inline",
        headers={"cache-control": "private, no-store"},
    )


def _job(job: Job | None) -> JobPublic | None:
    return None if job is None else JobPublic.model_validate(job, from_attributes=True)


def _call(session: Session, principal: Principal, call_id: str) -> Call:
    """The call, if the caller may see it; another tenant's is simply not found."""
    call = session.get(Call, call_id)
    if call is None or not principal.can_access(call.tenant_id):
        raise ApiError(404, "call_not_found", f"no call {call_id!r}")
    return call


def _public(session: Session, calls: list[Call]) -> list[CallPublic]:
    """The rows with their legs, and a call in progress with its tenant's current version."""
    ids = [call.id for call in calls]
    legs: dict[str, list[str]] = {}
    if ids:
        pairs = session.exec(
            select(TranscriptSegment.call_id, TranscriptSegment.leg)
            .where(col(TranscriptSegment.call_id).in_(ids))
            .group_by(TranscriptSegment.call_id, TranscriptSegment.leg)
            .order_by(TranscriptSegment.leg)
        )
        for call_id, leg in pairs:
            legs.setdefault(call_id, []).append(leg)
    live = {call.tenant_id for call in calls if call.status == "active"}
    versions = {}
    if live:
        rows = session.exec(
            select(Tenant.id, Tenant.hotword_version).where(col(Tenant.id).in_(live))
        )
        versions = dict(rows.all())
    return [
        CallPublic(
            **call.model_dump(include=set(CallPublic.model_fields) - {"legs", "hotword_version"}),
            hotword_version=versions.get(call.tenant_id)
            if call.status == "active"
            else call.hotword_version,
            legs=legs.get(call.id, []),
        )
        for call in calls
    ]
