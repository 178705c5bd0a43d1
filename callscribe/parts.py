"""`Settings` mapped into each part's own plain config: the parts never read settings (or the
environment) themselves, so each stays usable alone and this file is where a setting reaches
the code that honours it."""

import functools
import sys
from pathlib import Path

from admin_api.outbound import read_url
from admin_api.state import JobsConfig
from callscribe.config import (
    EngineSettings,
    LogSettings,
    RequestSettings,
    Settings,
    StorageSettings,
    WorkerSettings,
)
from common.rules import RequestRules
from service.config import Authenticator, BodyLimit, HotwordsFor, ServiceConfig, SubmitJob
from service.quotas import QuotaLimits
from telephony.asr_pool import AsrPoolConfig
from telephony.hub import CallsConfig
from telephony.sip.config import SipConfig
from worker.config import BrokerConfig, WorkerConfig

URL_TIMEOUT_S = 60.0
"""How long a prerecorded request's URL may take to download."""
WORKER_COMMAND = [sys.executable, "-m", "callscribe", "worker"]


def service_config(
    settings: Settings,
    rules: RequestRules,
    authenticate: Authenticator | None,
    hotwords_for: HotwordsFor | None,
    submit_job: SubmitJob | None = None,
    local: bool = False,
) -> ServiceConfig:
    """`local`: keyless callers on loopback are let in, so browsers' origins are checked."""
    return ServiceConfig(
        max_upload_bytes=int(settings.max_upload_mb * 1_000_000),
        max_request_bytes=int(settings.max_request_kb * 1000),
        body_limits=body_limits(settings),
        rules=rules,
        max_concurrent_transcriptions=settings.max_concurrent_transcriptions,
        decode_workers=settings.decode_plan("serve").workers,
        first_partial_lane=True,
        final_batch=settings.stream_final_batch,
        authenticate=authenticate,
        hotwords_for=hotwords_for,
        local_origins=(*settings.allowed_origins, *settings.webrtc_origins) if local else None,
        submit_job=submit_job,
        fetch_audio=functools.partial(
            read_url,
            timeout_s=URL_TIMEOUT_S,
            allow_private=settings.outbound_allow_private,
            max_bytes=int(settings.max_upload_mb * 1_000_000),
        ),
        max_streams=settings.max_streams,
        quota_limits=QuotaLimits(
            settings.tenant_max_streams,
            settings.tenant_max_transcriptions,
            settings.tenant_requests_per_minute,
        ),
    )


def body_limits(settings: Settings) -> tuple[BodyLimit, ...]:
    """The routes whose bodies may be larger than a few KB: batch-job uploads and hot-word
    lists (and WebRTC offers, which may carry a list)."""
    hotwords = int(settings.hotwords_max_body_kb * 1000)
    # A list at its limits, written out as JSON entries, with room to spare.
    list_values = 4 * (settings.hotwords_max_phrases + settings.hotwords_max_aliases) + 1000
    setting = "CALLSCRIBE_HOTWORDS_MAX_BODY_KB"
    return (
        BodyLimit(
            "/v1/jobs",
            int(max(settings.job_max_mb, settings.max_upload_mb) * 1_000_000),
            "CALLSCRIBE_JOB_MAX_MB",
        ),
        BodyLimit(r"/v1/tenants/[^/]+/hotword-lists", hotwords, setting, list_values),
        BodyLimit("/v1/webrtc/offer", hotwords, setting, list_values),
    )


def jobs_config(settings: Settings, rules: RequestRules, enqueue) -> JobsConfig:
    return JobsConfig(
        directory=Path(settings.var_dir) / "jobs",
        max_mb=settings.job_max_mb,
        max_active=settings.tenant_max_active_jobs,
        rules=rules,
        allow_private=settings.outbound_allow_private,
        enqueue=enqueue,
    )


def calls_config(settings: Settings, node: str) -> CallsConfig:
    return CallsConfig(
        node=node,
        max_calls=settings.max_calls,
        recordings_dir=Path(settings.var_dir) / "recordings" if settings.record_calls else None,
    )


def asr_pool_config(settings: Settings) -> AsrPoolConfig | None:
    """Where this gateway's calls are decoded: None in this process, else on these cores."""
    if not settings.asr_urls:
        return None
    assert settings.asr_service_key is not None  # Settings checks it
    return AsrPoolConfig(urls=settings.asr_urls, service_key=settings.asr_service_key)


def sip_config(settings: Settings) -> SipConfig:
    assert settings.sip_port is not None
    return SipConfig(
        port=settings.sip_port,
        tcp_port=settings.sip_tcp_port,
        host=settings.sip_host,
        rtp_port_min=settings.rtp_port_min,
        rtp_port_max=settings.rtp_port_max,
        allow=settings.sip_allow,
        rtp_timeout_s=settings.sip_rtp_timeout_s,
        max_failures_per_minute=settings.sip_max_failures_per_minute,
        max_calls=settings.max_calls,
        processes=settings.sip_processes,
    )


def broker_config(settings: Settings) -> BrokerConfig:
    return BrokerConfig(
        url=settings.broker_url or None,
        path=(Path(settings.var_dir) / "broker.sqlite").resolve(),
        visibility_timeout_s=settings.worker_visibility_timeout_s,
        concurrency=settings.worker_concurrency,
    )


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        database_url=settings.database_url,
        jobs_dir=Path(settings.var_dir) / "jobs",
        rules=settings.request_rules(),
        job_keep_input=settings.job_keep_input,
        job_max_mb=settings.job_max_mb,
        outbound_allow_private=settings.outbound_allow_private,
        webhook_timeout_s=settings.webhook_timeout_s,
        webhook_max_attempts=settings.webhook_max_attempts,
        max_retries=settings.worker_max_retries,
        retry_base_s=settings.worker_retry_base_s,
    )


WORKER_GROUPS = (EngineSettings, RequestSettings, StorageSettings, WorkerSettings, LogSettings)
"""The settings a worker process reads."""


def worker_env(settings: Settings) -> dict[str, str]:
    """This process's settings that a worker reads, as `CALLSCRIBE_*` variables for the
    embedded worker process: the same model, engine and options (command-line flags
    included), database, files and broker."""
    env = {}
    for group in WORKER_GROUPS:
        for name in group.model_fields:
            value = getattr(settings, name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif name == "var_dir":
                value = Path(value).resolve()
            env[f"CALLSCRIBE_{name.upper()}"] = str(value)
    return env
