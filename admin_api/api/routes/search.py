"""`GET /v1/search?q=...`: the calls and batch jobs whose transcripts say something, with the
matching segments, the time each match is said and a highlighted snippet; ranked, paginated,
and only ever the caller's tenant (admin keys: every tenant, or one with `tenant_id`)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, select

from admin_api.api.deps import PrincipalDep, SessionDep
from admin_api.api.deps import scoped_tenant as scope
from admin_api.crud import search as index
from admin_api.models import Call, Job
from admin_api.schemas import SearchMatch, SearchPage, SearchResult
from common.errors import ApiError

router = APIRouter(tags=["search"])

MAX_QUERY_CHARS = 200
MAX_PAGE = 50
MAX_OFFSET = 10_000
MATCHES_PER_RESULT = 5
PASSES = {"live": "live", "postcall": "post", "post": "post"}
"""The `pass` values taken, and what they are stored as (`post` as in the transcript API)."""


@router.get("/v1/search", response_model=SearchPage)
def search_transcripts(
    principal: PrincipalDep,
    session: SessionDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            description="What was said: a word, a phrase, or any part of one (退款, cancel my)",
        ),
    ],
    since: Annotated[
        datetime | None, Query(description="Calls started (jobs created) at or after this")
    ] = None,
    until: Annotated[datetime | None, Query(description="... and before this")] = None,
    leg: Annotated[str | None, Query(pattern=r"^[\w-]{1,32}$", description="One leg")] = None,
    pass_: Annotated[
        Literal["live", "postcall", "post"] | None,
        Query(alias="pass", description="live finals, or the post-call (and batch) pass"),
    ] = None,
    tenant_id: Annotated[
        str | None, Query(max_length=64, description="Admin keys: one tenant")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Calls and jobs per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SearchPage:
    query = index.normalise(q)
    if not query:
        raise ApiError(422, "invalid_query", "the query is empty")
    if not query.isprintable():
        raise ApiError(422, "invalid_query", "the query holds control characters")
    where = index.SearchFilter(
        query=query,
        tenant_id=scope(principal, session, tenant_id),
        since=since,
        until=until,
        leg=leg,
        kind=PASSES[pass_] if pass_ else None,
    )
    page = index.search(session, where, limit, offset, MATCHES_PER_RESULT)
    calls = {c.id: c for c in _rows(session, Call, [r.call_id for r in page.results])}
    batch = {j.id: j for j in _rows(session, Job, [r.job_id for r in page.results])}
    return SearchPage(
        query=query,
        total=page.total,
        limit=limit,
        offset=offset,
        complete=page.complete,
        results=[_result(r, calls, batch) for r in page.results],
    )


def _rows(session, table, ids: list[str | None]) -> list:
    wanted = [i for i in ids if i is not None]
    return list(session.exec(select(table).where(col(table.id).in_(wanted)))) if wanted else []


def _result(result: index.Result, calls: dict[str, Call], batch: dict[str, Job]) -> SearchResult:
    matches = [
        SearchMatch(
            segment_id=m.row.segment_id,
            pass_="live" if m.row.kind == "live" else "postcall",
            leg=m.row.leg,
            start_ms=m.row.start_ms,
            end_ms=m.row.end_ms,
            time_ms=m.time_ms,
            text=m.row.text,
            snippet=m.snippet,
            highlights=m.highlights,
        )
        for m in result.matches
    ]
    if result.call_id is not None:
        call = calls[result.call_id]
        return SearchResult(
            type="call",
            id=call.id,
            tenant_id=call.tenant_id,
            at=call.started_at,
            status=call.status,
            source=call.source,
            file_name=None,
            language=call.language,
            match_count=result.match_count,
            matches=matches,
        )
    job = batch[result.job_id or ""]
    return SearchResult(
        type="job",
        id=job.id,
        tenant_id=job.tenant_id,
        at=job.created_at,
        status=job.status,
        source=None,
        file_name=job.file_name,
        language=job.language,
        match_count=result.match_count,
        matches=matches,
    )
