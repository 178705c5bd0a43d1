"""Batch jobs: `POST /v1/jobs` (an upload, or a URL the server fetches), `GET /v1/jobs/{id}`
(status and progress), `GET /v1/jobs` (paginated), `GET /v1/jobs/{id}/deliveries` (the webhook
log). Jobs run on the Celery worker; each tenant has a size limit and a limit on jobs queued or
running at once."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from admin_api.api.deps import PrincipalDep, SessionDep
from admin_api.batch import submit_batch
from admin_api.crud import jobs
from admin_api.models import Job
from admin_api.schemas import DeliveryPublic, JobPublic
from admin_api.state import AdminDep
from common.errors import ApiError

router = APIRouter(tags=["jobs"])


@router.post("/v1/jobs", status_code=202, response_model=JobPublic)
def create_job(
    admin: AdminDep,
    principal: PrincipalDep,
    session: SessionDep,
    file: Annotated[UploadFile | None, File(description="Audio in any format FFmpeg reads")] = None,
    url: Annotated[str | None, Form(description="Or an http(s) URL to fetch audio from")] = None,
    language: Annotated[str | None, Form(description="`en`, `zh`, or omit to detect")] = None,
    webhook_url: Annotated[
        str | None, Form(description="Notify this URL instead of the tenant's webhook")
    ] = None,
    tenant_id: Annotated[str | None, Form(description="Admin keys only: whose job")] = None,
) -> Job:
    return submit_batch(
        admin.jobs,
        session,
        principal,
        source=None if file is None else file.file,
        file_name=None if file is None else file.filename,
        url=url,
        language=language,
        webhook_url=webhook_url,
        tenant_id=tenant_id,
    )


@router.get("/v1/jobs", response_model=list[JobPublic])
def list_jobs(
    principal: PrincipalDep,
    session: SessionDep,
    since: Annotated[
        datetime | None, Query(description="Only jobs created at or after this")
    ] = None,
    status: str | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[Job]:
    tenant = None if principal.is_admin else principal.tenant_id
    return jobs.listing(session, tenant, since, status, limit, offset)


@router.get("/v1/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, principal: PrincipalDep, session: SessionDep) -> Job:
    return _job(session, principal, job_id)


@router.get("/v1/jobs/{job_id}/deliveries", response_model=list[DeliveryPublic])
def job_deliveries(job_id: str, principal: PrincipalDep, session: SessionDep) -> list:
    return jobs.deliveries(session, _job(session, principal, job_id).id)


def _job(session: SessionDep, principal: PrincipalDep, job_id: str) -> Job:
    job = jobs.for_tenant(session, None if principal.is_admin else principal.tenant_id, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r}")
    return job
