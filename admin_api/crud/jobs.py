"""Jobs (batch and post-call), their webhook deliveries, and tenants' job settings."""

import secrets
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, func, select

from admin_api.models import Call, Job, TenantSettings, WebhookDelivery, utcnow

ACTIVE = ("queued", "running")


def postcall_id(call_id: str) -> str:
    """One post-call job per call: queueing it again reuses (and reruns) it."""
    return f"postcall-{call_id}"


def queue_postcall(session: Session, call_id: str) -> Job | None:
    """The call's post-call job, (again) queued at no progress; None when there is no call."""
    call = session.get(Call, call_id)
    if call is None:
        return None
    job_id = postcall_id(call_id)
    job = session.get(Job, job_id) or Job(
        id=job_id, tenant_id=call.tenant_id, kind="postcall", call_id=call_id
    )
    set_status(job, "queued")
    job.progress = 0.0
    session.add(job)
    return job


def for_tenant(session: Session, tenant_id: str | None, job_id: str) -> Job | None:
    """The job, if it is the tenant's (None: any tenant's, for admins)."""
    job = session.get(Job, job_id)
    if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
        return None
    return job


def listing(
    session: Session,
    tenant_id: str | None,
    since: datetime | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Job]:
    query = select(Job).order_by(col(Job.created_at).desc(), col(Job.id)).offset(offset)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    if since is not None:
        query = query.where(Job.created_at >= since)
    if status is not None:
        query = query.where(Job.status == status)
    return list(session.exec(query.limit(limit)))


def active_batch_jobs(session: Session, tenant_id: str) -> int:
    query = select(func.count()).where(
        Job.tenant_id == tenant_id, Job.kind == "batch", col(Job.status).in_(ACTIVE)
    )
    return session.exec(query).one()


def deliveries(session: Session, job_id: str) -> list[WebhookDelivery]:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id)
        .order_by(col(WebhookDelivery.at), col(WebhookDelivery.id))
    )
    return list(session.exec(query))


def settings_of(session: Session, tenant_id: str) -> TenantSettings:
    """The tenant's settings (defaults when never set; not added to the session)."""
    return session.get(TenantSettings, tenant_id) or TenantSettings(tenant_id=tenant_id)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def update_settings(session: Session, tenant_id: str, changes: dict) -> TenantSettings:
    """Apply `changes`; a webhook URL without a secret gets a new random one."""
    row = settings_of(session, tenant_id)
    for name, value in changes.items():
        setattr(row, name, value)
    if row.webhook_url and not row.webhook_secret:
        row.webhook_secret = new_webhook_secret()
    row.updated_at = utcnow()
    session.add(row)
    return row


def webhook_secret(session: Session, tenant_id: str) -> str:
    """The tenant's webhook signing secret, made (and stored, so its settings show it) the
    first time one is needed: a webhook is never signed with an empty key, which anyone
    could forge."""
    row = settings_of(session, tenant_id)
    if not row.webhook_secret:
        row.webhook_secret = new_webhook_secret()
        row.updated_at = utcnow()
        session.add(row)
    return row.webhook_secret


def set_status(job: Job, status: str, error: str | None = None) -> None:
    job.status = status
    job.error = error
    job.updated_at = utcnow()
    if status in ("completed", "failed"):
        job.finished_at = job.updated_at


def input_path(jobs_dir: Path, job_id: str) -> Path:
    """Where a batch job's input is kept until it is done (uploads are written here by the API,
    URLs fetched here by the worker): a folder both can reach."""
    return jobs_dir / job_id / "input"
