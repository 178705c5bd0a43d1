"""`Settings` mapped into each part's own plain config: the parts never read settings (or the
environment) themselves, so each stays usable alone and this file is where a setting reaches
the code that honours it."""

import sys
from pathlib import Path

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
from service.config import Authenticator, HotwordsFor, ServiceConfig
from service.quotas import QuotaLimits
from telephony.asr_pool import AsrPoolConfig
from telephony.hub import CallsConfig
from telephony.sip.config import SipConfig
from worker.config import BrokerConfig, WorkerConfig

WORKER_COMMAND = [sys.executable, "-m", "callscribe", "worker"]


def service_config(
    settings: Settings,
    rules: RequestRules,
    authenticate: Authenticator | None,
    hotwords_for: HotwordsFor | None,
) -> ServiceConfig:
    return ServiceConfig(
        max_upload_bytes=int(settings.max_upload_mb * 1_000_000),
        rules=rules,
        max_concurrent_transcriptions=settings.max_concurrent_transcriptions,
        decode_workers=settings.decode_plan("serve").workers,
        first_partial_lane=True,
        final_batch=settings.stream_final_batch,
        authenticate=authenticate,
        hotwords_for=hotwords_for,
        max_streams=settings.max_streams,
        quota_limits=QuotaLimits(
            settings.tenant_max_streams,
            settings.tenant_max_transcriptions,
            settings.tenant_requests_per_minute,
        ),
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
