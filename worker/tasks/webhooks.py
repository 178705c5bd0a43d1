"""Completion webhooks: the job's status POSTed to the tenant's (or the job's) URL, signed with
HMAC-SHA256, retried with exponential backoff; every attempt is logged in `webhook_delivery`.

Headers: `X-Callscribe-Event`, `X-Callscribe-Delivery` (the same on every attempt of one
delivery: receivers drop repeats by it), `X-Callscribe-Timestamp` (unix seconds) and
`X-Callscribe-Signature: sha256=<hex HMAC of "<timestamp>.<raw body>">`.
"""

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
import uuid

from sqlmodel import Session

from admin_api.crud import jobs
from admin_api.models import Job, WebhookDelivery
from admin_api.outbound import describe_failure, open_url
from worker.app import app, context

logger = logging.getLogger(__name__)

TASK = "callscribe.webhook"
SIGNATURE_HEADER = "X-Callscribe-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, tolerance_s=300.0) -> bool:
    """What a receiver checks: the signature, and that the timestamp is recent."""
    fresh = abs(time.time() - float(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def notify(job_id: str, event: str) -> None:
    """Queue the job's webhook if its tenant (or the job) has a URL."""
    with Session(context().database) as session:
        job = session.get(Job, job_id)
        if job is not None and _target(session, job)[0]:
            deliver.delay(job_id, event, uuid.uuid4().hex)


def _target(session: Session, job: Job) -> tuple[str | None, str]:
    """The URL (the job's own, else the tenant's) and the tenant's signing secret (made on
    first use: never an empty one)."""
    url = job.webhook_url or jobs.settings_of(session, job.tenant_id).webhook_url
    if not url:
        return None, ""
    secret = jobs.webhook_secret(session, job.tenant_id)
    session.commit()
    return url, secret


@app.task(bind=True, name=TASK, max_retries=None)
def deliver(self, job_id: str, event: str, delivery_id: str) -> dict:
    config = context().config
    with Session(context().database) as session:
        job = session.get(Job, job_id)
        url, secret = _target(session, job)
        payload = {"event": event, "delivery_id": delivery_id, "job": _job_body(job)}
    body = json.dumps(payload).encode()
    attempt = self.request.retries + 1
    status, error, started = None, None, time.perf_counter()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "callscribe-webhook/1",
            "X-Callscribe-Event": event,
            "X-Callscribe-Delivery": delivery_id,
            "X-Callscribe-Timestamp": timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        },
    )
    try:
        with open_url(request, config.webhook_timeout_s, config.outbound_allow_private) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, describe_failure(exc)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        error = describe_failure(exc)
    delivered = status is not None and 200 <= status < 300
    with Session(context().database) as session:
        session.add(
            WebhookDelivery(
                job_id=job_id,
                event=event,
                url=url,
                attempt=attempt,
                status_code=status,
                error=error,
                delivered=delivered,
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
        )
        session.commit()
    if not delivered and attempt < config.webhook_max_attempts:
        raise self.retry(countdown=config.retry_base_s * 2 ** (attempt - 1))
    return {"job_id": job_id, "delivered": delivered, "attempts": attempt}


def _job_body(job: Job) -> dict:
    owner = f"calls/{job.call_id}" if job.call_id else f"jobs/{job.id}"
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "kind": job.kind,
        "call_id": job.call_id,
        "status": job.status,
        "error": job.error,
        "duration_s": job.duration_s,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "transcript": f"/v1/{owner}/transcript",
    }
