"""Submitting a batch job: one place for the checks and the bookkeeping, whether the job comes
from `POST /v1/jobs` or from a Deepgram-style prerecorded request with a `callback`."""

import io
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from sqlalchemy import Engine
from sqlmodel import Session

from admin_api.auth import Principal
from admin_api.crud import audit, jobs
from admin_api.models import Job, Tenant
from admin_api.outbound import ForbiddenAddress, check_public
from admin_api.state import JobsConfig
from common.errors import ApiError

CHUNK = 1 << 20


def check_outbound(config: JobsConfig, name: str, url: str) -> None:
    """422 for a URL the workers must not reach for a tenant (see `admin_api.outbound`)."""
    if config.allow_private:
        return
    try:
        check_public(url)
    except ForbiddenAddress as exc:
        raise ApiError(422, "forbidden_address", f"{name}: {exc}") from exc


def submit_batch(
    config: JobsConfig,
    session: Session,
    principal: Principal,
    *,
    source: BinaryIO | None,
    file_name: str | None,
    url: str | None,
    language: str | None,
    webhook_url: str | None,
    tenant_id: str | None = None,
) -> Job:
    """Queue a batch job on `source` (an open binary file) or `url`; its webhook goes to
    `webhook_url`, else to the tenant's. Raises `ApiError` for a request it refuses."""
    owner = tenant_id if principal.is_admin else principal.tenant_id
    if owner is None or session.get(Tenant, owner) is None:
        raise ApiError(422, "tenant_required", "admin keys name the tenant (tenant_id)")
    if (source is None) == (url is None):
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
        file_name=file_name if source is not None else Path(urlparse(url).path).name or None,
        language=language,
        webhook_url=webhook_url,
    )
    if source is not None:
        max_bytes = int((limits.job_max_mb or config.max_mb) * 1_000_000)
        _save(source, jobs.input_path(config.directory, job.id), max_bytes)
    if webhook_url is not None:
        jobs.webhook_secret(session, owner)  # made now, so the tenant can read it first
    session.add(job)
    audit.record(session, principal.key_prefix, "job.create", owner, job.id)
    session.commit()
    session.refresh(job)
    if config.enqueue is not None:
        config.enqueue(job.id)
    return job


def _save(source: BinaryIO, path: Path, max_bytes: int) -> None:
    """Copy the input next to the job, refusing more than the tenant's limit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    with path.open("wb") as out:
        while chunk := source.read(CHUNK):
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


def batch_submitter(database: Engine, config: JobsConfig):
    """`submit(principal, audio, url, language, webhook_url) -> job id`: a batch job on
    `audio` (bytes) or `url`, for services that take jobs on the admin backend's behalf (the
    ASR service's Deepgram `callback` requests)."""

    def submit(
        principal: Principal,
        audio: bytes | None,
        url: str | None,
        language: str | None,
        webhook_url: str,
    ) -> str:
        with Session(database) as session:
            job = submit_batch(
                config,
                session,
                principal,
                source=None if audio is None else io.BytesIO(audio),
                file_name=None if audio is None else "request",
                url=url,
                language=language,
                webhook_url=webhook_url,
            )
            return job.id

    return submit
