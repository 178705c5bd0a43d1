"""`Settings` mapped into each part's own plain config: the parts never read settings (or the
environment) themselves, so each stays usable alone and this file is where a setting reaches
the code that honours it."""

from pathlib import Path

from admin_api.state import JobsConfig
from callscribe.config import Settings
from common.rules import RequestRules
from service.config import Authenticator, HotwordsFor, ServiceConfig
from service.quotas import QuotaLimits
from telephony.hub import CallsConfig
from telephony.sip.config import SipConfig


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
        authenticate=authenticate,
        hotwords_for=hotwords_for,
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
