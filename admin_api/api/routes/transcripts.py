"""Stored transcripts: `GET /v1/calls/{id}/transcript` (a call's live finals or its post-call
pass, the legs on one timeline) and `GET /v1/jobs/{id}/transcript` (a batch job's), as json, srt,
vtt or txt. A tenant sees only its own; another tenant's is simply not found."""

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from admin_api.api.deps import PrincipalDep, SessionDep
from admin_api.crud import jobs, transcripts
from admin_api.models import Call, Job, TranscriptSegment
from asr_core.formats import render, to_json
from asr_core.transcript import Segment, Transcript, Word
from common.errors import ApiError

router = APIRouter(tags=["transcripts"])

Format = Literal["json", "srt", "vtt", "txt"]
MEDIA_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt", "txt": "text/plain"}


@router.get("/v1/calls/{call_id}/transcript", response_model=None)
def call_transcript(
    call_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Format, Query()] = "json",
    pass_: Annotated[
        Literal["live", "post"],
        Query(alias="pass", description="live: finals as sent; post: the post-call pass"),
    ] = "post",
) -> Response:
    call = session.get(Call, call_id)
    if call is None or not principal.can_access(call.tenant_id):
        raise ApiError(404, "call_not_found", f"no call {call_id!r}")
    rows = transcripts.segments(session, call_id=call_id, kind=pass_)
    about = {"call_id": call_id, "pass": pass_, "status": call.status}
    if pass_ == "post":
        job = session.get(Job, jobs.postcall_id(call_id))
        if not rows:
            _not_ready(job)
        about |= _decoded_by(job)
    return _respond(rows, format, about)


@router.get("/v1/jobs/{job_id}/transcript", response_model=None)
def job_transcript(
    job_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    format: Annotated[Format, Query()] = "json",
) -> Response:
    job = jobs.for_tenant(session, None if principal.is_admin else principal.tenant_id, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r}")
    if job.call_id is not None:
        rows = transcripts.segments(session, call_id=job.call_id)
    else:
        rows = transcripts.segments(session, job_id=job_id)
    if job.status != "completed":
        _not_ready(job)
    about = {"job_id": job_id, "pass": "post", "status": job.status, **_decoded_by(job)}
    return _respond(rows, format, about)


def _decoded_by(job: Job | None) -> dict:
    """The engine and model of a post-call or batch pass (json metadata; the model goes into
    the transcript's own `model`)."""
    return {"engine": job.engine, "model": job.model} if job is not None else {}


def _not_ready(job: Job | None) -> None:
    if job is None:
        raise ApiError(404, "transcript_not_ready", "no post-call pass has been queued for this")
    detail = job.error if job.status == "failed" else f"progress {job.progress:.0%}"
    raise ApiError(404, "transcript_not_ready", f"the post-call pass is {job.status}: {detail}")


def _respond(rows: list[TranscriptSegment], fmt: str, about: dict) -> Response:
    """Render with the service's formatters; with several legs, srt/vtt/txt label each line
    with its leg and json gives each segment's `leg`."""
    labelled = len({row.leg for row in rows}) > 1
    if fmt == "json":
        body = to_json(_transcript(rows, labelled=False, model=about.get("model")))
        for segment, row in zip(body["segments"], rows, strict=True):
            segment["leg"] = row.leg
            segment["hotword_version"] = row.hotword_version
            if row.original_text is not None:
                segment["original_text"] = row.original_text
        return JSONResponse({**about, **body})
    if fmt == "txt" and labelled:
        text = "".join(f"{row.leg}: {row.text.strip()}\n" for row in rows if row.text.strip())
        return PlainTextResponse(text)
    return PlainTextResponse(render(_transcript(rows, labelled), fmt), media_type=MEDIA_TYPES[fmt])


def _transcript(
    rows: list[TranscriptSegment], labelled: bool, model: str | None = None
) -> Transcript:
    segments = [
        Segment(
            start=row.start_ms / 1000,
            end=row.end_ms / 1000,
            text=f"{row.leg}: {row.text.strip()}" if labelled else row.text,
            words=[
                Word(w["start_ms"] / 1000, w["end_ms"] / 1000, w["word"], w["confidence"])
                for w in json.loads(row.words)
            ],
            language=row.language,
        )
        for row in rows
    ]
    languages = [row.language for row in rows if row.language]
    duration = max((row.end_ms for row in rows), default=0) / 1000
    language = max(set(languages), key=languages.count, default=None)
    return Transcript(segments, duration, language, model=model)
