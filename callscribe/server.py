"""The composition root of `callscribe serve`: every part built once from `Settings` into one
typed `Services` container, and the app whose routes reach it through FastAPI dependencies.

Read `build_services` to know what runs in the server, and `Services.background` for the order
it starts in. The parts (`service`, `admin_api`, `telephony`) declare what their routes need as
a dependency (`service_state`, `admin_state`, `telephony_state`); `build_app` provides each from
the app's `Services`, the only thing ever kept on `app.state`.
"""

import ipaddress
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.requests import HTTPConnection

import admin_api.main
import service
import telephony.routes
from admin_api.auth import gateway_authenticator, key_authenticator
from admin_api.batch import batch_submitter
from admin_api.hotreload import HotwordBus, HotwordChange, InProcessBus, RedisBus, TenantHotwords
from admin_api.models import Tenant
from admin_api.state import AdminState, admin_state
from asr_core.transcribe import Transcriber
from callscribe import parts
from callscribe.config import Settings
from service.app import API_INFO
from service.state import ServiceState, service_state
from telephony.adapters.audiosocket import AudioSocketServer
from telephony.adapters.reservations import Reservations
from telephony.asr_pool import AsrPool
from telephony.hub import CallHub
from telephony.leases import NodeLeases
from telephony.state import TelephonyState, telephony_state
from telephony.webrtc.gateway import WebrtcGateway
from worker.app import make_celery
from worker.service import EmbeddedWorker, TaskQueue

if TYPE_CHECKING:
    from telephony.sip.gateway import SipGateway

logger = logging.getLogger(__name__)

LOCAL_TENANT = "local"


class BackgroundService(Protocol):
    """Something that runs beside the routes (the hot-word bus listener, a gateway)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    """Everything one `callscribe serve` process runs, built once (`build_services`)."""

    settings: Settings
    database: Engine
    """The admin database (SQLAlchemy engine)."""
    asr: ServiceState
    """The ASR engine (`asr.transcriber`), the decode scheduler, metrics and tenant quotas."""
    bus: HotwordBus
    hotwords: TenantHotwords
    """Each tenant's standing hot-words, kept current from the bus."""
    tasks: TaskQueue
    """Post-call passes and batch jobs, sent to the workers."""
    admin: AdminState
    hub: CallHub
    leases: NodeLeases
    telephony: TelephonyState
    """The hub and the gateways' state: WebRTC peers, the AudioSocket server, reservations."""
    sip: "SipGateway | None" = None
    """Only when `CALLSCRIBE_SIP_PORT` is set (pjsua2 is imported only then)."""
    worker: EmbeddedWorker | None = None

    @property
    def background(self) -> tuple[BackgroundService, ...]:
        """What runs beside the routes, in the order it starts (it stops in reverse): the
        hot-word lists before the calls that use them, the hub before the lease that vouches
        for its calls and the gateways that feed it, so the gateways stop first."""
        candidates = (
            self.hotwords,
            self.hub,
            self.leases,
            self.worker,
            self.sip,
            self.telephony.audiosocket,
            self.telephony.webrtc,
        )
        return tuple(service for service in candidates if service is not None)

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """The decode scheduler, then `background` in order; stopped in reverse."""
        self.asr.scheduler.start()
        started: list[BackgroundService] = []
        try:
            for part in self.background:
                await part.start()
                started.append(part)
            yield
        finally:
            for part in reversed(started):
                await part.stop()
            self.asr.scheduler.stop()


def build_services(settings: Settings, transcriber: Transcriber, database: Engine) -> Services:
    rules = settings.request_rules()
    bus: HotwordBus = RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()
    hotwords = TenantHotwords(database, bus, settings.hotword_resync_s)
    local_tenant = LOCAL_TENANT if auth_mode(settings) == "local" else None
    if local_tenant is not None:
        ensure_tenant(database, local_tenant, "Callers on this machine without a key")
    secret = token_secret(settings)
    authenticate = key_authenticator(database, secret, local_tenant)
    # Only the ASR service's routes let a gateway's service key act for the tenant it names.
    streams_authenticate = gateway_authenticator(authenticate, database, settings.asr_service_key)
    broker = parts.broker_config(settings)
    tasks = TaskQueue(make_celery(broker), database)
    admin = AdminState(
        database,
        token_secret=secret,
        hotword_limits=settings.hotword_limits(),
        max_active_lists=settings.hotwords_max_active_lists,
        publish=lambda tenant, name, version: bus.publish(HotwordChange(tenant, name, version)),
        jobs=parts.jobs_config(settings, rules, tasks.batch),
    )
    asr = ServiceState.build(
        transcriber,
        parts.service_config(
            settings,
            rules,
            streams_authenticate,
            hotwords,
            batch_submitter(database, admin.jobs),
            local=local_tenant is not None,
        ),
    )
    node = f"{socket.gethostname()}:{settings.port}"
    hub = CallHub(
        parts.calls_config(settings, node),
        database,
        asr.scheduler,
        asr.quotas,
        asr.metrics.streams,
        rules,
        hotwords_for=hotwords,
        after_call=tasks.postcall if settings.postcall else None,
        pool=asr_pool(settings, asr),
    )
    reservations = Reservations(max_per_tenant=settings.tenant_max_reservations)
    gateways = TelephonyState(
        hub,
        authenticate,
        WebrtcGateway(settings.webrtc_ice_servers, settings.webrtc_hosts),
        AudioSocketServer(hub, reservations, settings.audiosocket_host, settings.audiosocket_port),
        reservations,
    )
    return Services(
        settings,
        database,
        asr,
        bus,
        hotwords,
        tasks,
        admin,
        hub,
        NodeLeases(database, node, settings.node_lease_s),
        gateways,
        sip=sip_gateway(settings, hub, database) if settings.sip_port is not None else None,
        worker=embedded_worker(settings) if settings.worker_embedded else None,
    )


def asr_pool(settings: Settings, asr: ServiceState) -> AsrPool | None:
    """The ASR cores this process's calls are decoded on (`CALLSCRIBE_ASR_URLS`); None: on its
    own scheduler. The hop's metrics join the process's `/metrics`."""
    config = parts.asr_pool_config(settings)
    return AsrPool(config, asr.metrics.registry) if config is not None else None


def sip_gateway(settings: Settings, hub: CallHub, database: Engine) -> "SipGateway":
    """The SIP front door (pjsua2, imported only when configured)."""
    from telephony.sip.gateway import SipGateway

    return SipGateway(hub, database, parts.sip_config(settings), settings.log_format)


def embedded_worker(settings: Settings) -> EmbeddedWorker:
    """`callscribe worker` beside the server, with this process's settings (serve's flags
    included): the post-call pass runs the engine and options the live calls ran."""
    return EmbeddedWorker(
        parts.WORKER_COMMAND, parts.worker_env(settings), parts.broker_config(settings)
    )


def build_app(settings: Settings, transcriber: Transcriber, database: Engine) -> FastAPI:
    """The app of `callscribe serve`: the ASR service, the admin API and the telephony routes
    on one set of `Services`."""
    services = build_services(settings, transcriber, database)
    app = FastAPI(**API_INFO, lifespan=services.lifespan)
    app.state.services = services  # read only by the providers below
    service.install(app, services.asr.config)
    admin_api.main.install(app)
    telephony.routes.install(app, settings.webrtc_origins)
    app.dependency_overrides.update(
        {service_state: _asr, admin_state: _admin, telephony_state: _telephony}
    )
    return app


# -- the root's dependency providers: each part's state, from the app's Services --------------


def services_of(connection: HTTPConnection) -> Services:
    return connection.app.state.services


def _asr(connection: HTTPConnection) -> ServiceState:
    return services_of(connection).asr


def _admin(connection: HTTPConnection) -> AdminState:
    return services_of(connection).admin


def _telephony(connection: HTTPConnection) -> TelephonyState:
    return services_of(connection).telephony


# -- settings the root resolves itself ---------------------------------------------------------


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
