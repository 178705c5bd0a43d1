"""Batch jobs: `POST /v1/jobs` (an upload, or a URL the server fetches), `GET /v1/jobs/{id}`
(status and progress), `GET /v1/jobs` (paginated), `GET /v1/jobs/{id}/deliveries` (the webhook
log). Jobs run on the Celery worker; each tenant has a size limit and a limit on jobs queued or
running at once."""

import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, File, Form, Query, UploadFile

from admin_api.api.deps import PrincipalDep, SessionDep
from admin_api.crud import audit, jobs
from admin_api.models import Job, Tenant
from admin_api.outbound import ForbiddenAddress, check_public
from admin_api.schemas import DeliveryPublic, JobPublic
from admin_api.state import AdminDep, JobsConfig
from common.errors import ApiError

router = APIRouter(tags=["jobs"])

CHUNK = 1 << 20


def check_outbound(config: JobsConfig, name: str, url: str) -> None:
    """422 for a URL the workers must not reach for a tenant (see `admin_api.outbound`)."""
    if config.allow_private:
        return
    try:
        check_public(url)
    except ForbiddenAddress as exc:
        raise ApiError(422, "forbidden_address", f"{name}: {exc}") from exc


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
    config = admin.jobs
    owner = tenant_id if principal.is_admin else principal.tenant_id
    if owner is None or session.get(Tenant, owner) is None:
        raise ApiError(422, "tenant_required", "admin keys name the tenant (tenant_id)")
    if (file is None) == (url is None):
        raise ApiError(422, "invalid_request", "send either a file or a url")
    for name, value in (("url", url), ("webhook_url", webhook_url)):
        if value is not None and urlparse(value).scheme not in ("http", "https"):
            raise ApiError(422, "invalid_request", f"{name}: use an http or https URL")
        if value is not None:
            check_outbound(config, name, value)
    language = config.rules.language(language)
    limits = jobs.settings_of(session, owner)
    max_active = limits.max_active_jobs or config.max_active
    if jobs.active_batch_jobs(session, owner) >= max_active:
        raise ApiError(
            429, "too_many_jobs", f"{max_active} jobs are queued or running; wait for one to end"
        )
    job = Job(
        id=uuid.uuid4().hex,
        tenant_id=owner,
        kind="batch",
        source_url=url,
        file_name=file.filename if file is not None else Path(urlparse(url).path).name or None,
        language=language,
        webhook_url=webhook_url,
    )
    if file is not None:
        max_bytes = int((limits.job_max_mb or config.max_mb) * 1_000_000)
        _save(file, jobs.input_path(config.directory, job.id), max_bytes)
    if webhook_url is not None:
        jobs.webhook_secret(session, owner)  # made now, so the tenant can read it first
    session.add(job)
    audit.record(session, principal.key_prefix, "job.create", owner, job.id)
    session.commit()
    session.refresh(job)
    if config.enqueue is not None:
        config.enqueue(job.id)
    return job


def _save(file: UploadFile, path: Path, max_bytes: int) -> None:
    """Copy the upload next to the job, refusing more than the tenant's limit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    with path.open("wb") as out:
        while chunk := file.file.read(CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                out.close()
                shutil.rmtree(path.parent, ignore_errors=True)
                raise ApiError(
                    413,
                    "payload_too_large",
                    f"the upload exceeds this tenant's job limit of {max_bytes / 1_000_000:g} MB",
                )
            out.write(chunk)


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
