"""The combined server of `callscribe serve`: the ASR service with the admin backend, tenant
authentication, per-tenant limits and hot-word reload, wired from `Settings`."""

import ipaddress
import logging
import os
import secrets
import socket
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

import admin_api.main
import telephony.adapters
import telephony.api
import telephony.webrtc
from admin_api.api.routes.jobs import JobsConfig
from admin_api.auth import key_authenticator
from admin_api.hotreload import HotwordBus, HotwordChange, InProcessBus, RedisBus, TenantHotwords
from admin_api.models import Tenant
from asr_core.service import ServiceConfig, create_app
from asr_core.service.quotas import QuotaLimits
from asr_core.streaming import StreamingOptions
from asr_core.transcribe import Transcriber
from callscribe.config import Settings
from telephony.leases import NodeLeases
from telephony.session import CallHub
from worker.app import make_celery
from worker.service import EmbeddedWorker, TaskQueue

logger = logging.getLogger(__name__)

LOCAL_TENANT = "local"


def build_app(settings: Settings, transcriber: Transcriber, database: Engine) -> FastAPI:
    bus: HotwordBus = RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()
    tenant_hotwords = TenantHotwords(database, bus, settings.hotword_resync_s)
    local_tenant = LOCAL_TENANT if auth_mode(settings) == "local" else None
    if local_tenant is not None:
        ensure_tenant(database, local_tenant, "Callers on this machine without a key")
    secret = token_secret(settings)
    app = create_app(
        transcriber,
        ServiceConfig(
            max_upload_bytes=int(settings.max_upload_mb * 1_000_000),
            languages=settings.languages,
            max_concurrent_transcriptions=settings.max_concurrent_transcriptions,
            decode_workers=settings.workers(serving=True),
            first_partial_lane=True,
            final_batch=settings.stream_final_batch,
            hotword_limits=settings.hotword_limits(),
            hotword_top_k=settings.hotwords_top_k,
            authenticate=key_authenticator(database, secret, local_tenant),
            hotwords_for=tenant_hotwords,
            quota_limits=QuotaLimits(
                settings.tenant_max_streams,
                settings.tenant_max_transcriptions,
                settings.tenant_requests_per_minute,
            ),
            services=(tenant_hotwords,),
            streaming=streaming_options(settings),
        ),
    )
    tasks = TaskQueue(make_celery(settings), database)
    admin_api.main.install(
        app,
        database,
        settings.hotword_limits(),
        publish=lambda tenant, name, version: bus.publish(HotwordChange(tenant, name, version)),
        token_secret=secret,
        jobs_config=JobsConfig(
            directory=Path(settings.var_dir) / "jobs",
            max_mb=settings.job_max_mb,
            max_active=settings.tenant_max_active_jobs,
            languages=settings.languages,
            allow_private=settings.outbound_allow_private,
            enqueue=tasks.batch,
        ),
    )
    app.state.tenant_hotwords = tenant_hotwords
    node = f"{socket.gethostname()}:{settings.port}"
    hub = CallHub(
        app.state,
        database,
        Path(settings.var_dir) / "recordings" if settings.record_calls else None,
        node=node,
        max_calls=settings.max_calls,
        after_call=tasks.postcall if settings.postcall else None,
    )
    app.state.call_hub = hub
    leases = NodeLeases(database, node, settings.node_lease_s)
    app.state.config.services = (*app.state.config.services, hub, leases)
    if settings.worker_embedded:
        app.state.config.services = (*app.state.config.services, EmbeddedWorker(settings))
    if settings.sip_port is not None:
        app.state.config.services = (*app.state.config.services, sip_gateway(settings, app))
    app.include_router(telephony.api.router)
    telephony.adapters.install(app, settings.audiosocket_host, settings.audiosocket_port)
    app.include_router(telephony.webrtc.router)
    telephony.webrtc.install(
        app, settings.webrtc_ice_servers, settings.webrtc_hosts, settings.webrtc_origins
    )
    return app


def sip_gateway(settings: Settings, app: FastAPI):
    """The SIP front door (pjsua2, imported only when configured); after the hub in the
    services, so it starts after it and stops before it."""
    from telephony.sip.config import AllowList, SipConfig
    from telephony.sip.gateway import SipGateway

    assert settings.sip_port is not None
    config = SipConfig(
        port=settings.sip_port,
        tcp_port=settings.sip_tcp_port,
        host=settings.sip_host,
        rtp_port_min=settings.rtp_port_min,
        rtp_port_max=settings.rtp_port_max,
        allow=AllowList(settings.sip_allow),
        rtp_timeout_s=settings.sip_rtp_timeout_s,
        max_calls=settings.max_calls,
        processes=settings.sip_processes,
    )
    gateway = SipGateway(app.state, config, settings.log_format)
    app.state.sip_gateway = gateway
    return gateway


def streaming_options(settings: Settings) -> StreamingOptions:
    defaults = StreamingOptions()
    return replace(
        defaults,
        decoding=replace(defaults.decoding, beam_size=settings.stream_beam_size),
        final_window_s=settings.stream_final_window_s,
        partial_window_s=settings.stream_partial_window_s,
        tail_finals=settings.stream_tail_finals,
    )


def auth_mode(settings: Settings) -> str:
    """`auto` trusts this machine's callers only when nothing else can reach the server."""
    if settings.auth != "auto":
        if settings.auth == "local" and not is_loopback_host(settings.host):
            raise ValueError(
                f"CALLSCRIBE_AUTH=local needs a loopback bind address, not {settings.host!r}: "
                "behind a proxy every caller would look local"
            )
        return settings.auth
    return "local" if is_loopback_host(settings.host) else "keys"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_tenant(database: Engine, tenant_id: str, name: str) -> None:
    with Session(database) as session:
        if session.get(Tenant, tenant_id) is None:
            session.add(Tenant(id=tenant_id, name=name))
            session.commit()


def token_secret(settings: Settings) -> bytes:
    """The configured secret, else one kept in var_dir (made on first start, owner-only), so
    tokens survive restarts and processes on one machine agree."""
    if settings.token_secret:
        return settings.token_secret.encode()
    path = Path(settings.var_dir) / "token-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
