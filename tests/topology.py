"""The production topology of docker-compose.yml as plain processes on loopback: PostgreSQL,
Redis (hot-word bus and Celery broker), two ASR processes, the SIP gateway, the WebRTC gateway
and two workers, all sharing one database, one Redis and one var folder (the compose file's
`callscribe-var` volume). Each callscribe process is the command and environment its compose
service runs, with `whisper-tiny.en` where compose has the bigger model.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api import migrate
from admin_api.auth import ADMIN, TENANT
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.models import Tenant
from tests.services import CallscribeServer, CeleryWorker, PostgresServer, RedisServer, free_port

TENANT_ID = "acme"
MODEL = "whisper-tiny.en"
VISIBILITY_TIMEOUT_S = 30.0
"""A killed worker's task comes back within a minute, not the production hour; still longer
than the test's jobs take, so only a kill makes a task run twice."""


@dataclass
class Topology:
    postgres: PostgresServer
    redis: RedisServer
    folder: Path
    """The shared var folder: recordings and batch inputs, as the compose volume."""
    database_url: str = ""
    asr: list[CallscribeServer] = field(default_factory=list)
    sip: CallscribeServer | None = None
    webrtc: CallscribeServer | None = None
    workers: list[CeleryWorker] = field(default_factory=list)
    with_sip: bool = True
    """Without pjsua2 or sipp the SIP gateway's test skips; the rest runs without it."""
    sip_port: int = 0
    admin_key: str = ""
    tenant_key: str = ""
    database: Engine | None = None

    @property
    def processes(self) -> list:
        gateways = [p for p in (self.sip, self.webrtc) if p is not None]
        return [*self.asr, *gateways, *self.workers]

    @property
    def front(self) -> CallscribeServer:
        """The process whose admin and jobs API the tests call: not an ASR process, so
        what reaches the ASR processes can only have come over the bus."""
        assert self.webrtc is not None
        return self.webrtc

    def start(self) -> None:
        self.redis.start()
        self.redis.command("FLUSHALL")
        self.database_url = self.postgres.new_database()
        migrate.upgrade(self.database_url)  # `callscribe db upgrade`: the compose `migrate`
        self.database = make_engine(self.database_url)
        self._tenant_and_keys()
        common = self._environment()
        self.asr = [CallscribeServer(dict(common)) for _ in range(2)]
        if self.with_sip:
            self.sip_port = free_port()
            rtp = free_port()
            self.sip = CallscribeServer(
                {
                    **common,
                    "CALLSCRIBE_SIP_PORT": str(self.sip_port),
                    "CALLSCRIBE_RTP_PORT_MIN": str(rtp),
                    "CALLSCRIBE_RTP_PORT_MAX": str(rtp + 100),
                    "CALLSCRIBE_SIP_RTP_TIMEOUT_S": "10",
                }
            )
        # aioice offers no loopback candidate by itself (compose: the host's public address).
        self.webrtc = CallscribeServer({**common, "CALLSCRIBE_WEBRTC_HOSTS": "127.0.0.1"})
        self.workers = [CeleryWorker({**common, "PYTHONUNBUFFERED": "1"}) for _ in range(2)]
        # One after another, from this thread: the processes die with the thread that started
        # them (parent-death signal), and two cores load one model at a time best.
        for process in self.processes:
            process.start()

    def close(self) -> None:
        for process in self.processes:
            if process is not None:
                with contextlib.suppress(Exception):
                    process.close()
        if self.database is not None:
            self.database.dispose()
        if self.database_url:
            with contextlib.suppress(Exception):
                self.postgres.drop_database(self.database_url)

    def _tenant_and_keys(self) -> None:
        assert self.database is not None
        with Session(self.database) as session:
            session.add(Tenant(id=TENANT_ID, name="Acme"))
            session.flush()
            _, admin = keys.create(session, ADMIN, None, "topology")
            _, tenant = keys.create(session, TENANT, TENANT_ID, "topology")
            session.commit()
        self.admin_key, self.tenant_key = admin.secret, tenant.secret

    def _environment(self) -> dict[str, str]:
        """What every callscribe service of the compose file shares (`x-callscribe-env`)."""
        redis_base = self.redis.url.rsplit("/", 1)[0]
        return {
            "CALLSCRIBE_DATABASE_URL": self.database_url,
            "CALLSCRIBE_REDIS_URL": f"{redis_base}/0",
            "CALLSCRIBE_BROKER_URL": f"{redis_base}/1",
            "CALLSCRIBE_TOKEN_SECRET": "topology-test-secret",
            "CALLSCRIBE_AUTH": "keys",
            "CALLSCRIBE_WORKER_EMBEDDED": "false",
            "CALLSCRIBE_VAR_DIR": str(self.folder),
            "CALLSCRIBE_MODEL": MODEL,
            "CALLSCRIBE_LANGUAGES": "en",
            # Only the bus (or a reconnect) delivers hot-word edits.
            "CALLSCRIBE_HOTWORD_RESYNC_S": "3600",
            "CALLSCRIBE_WORKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
            "CALLSCRIBE_WORKER_RETRY_BASE_S": "0.5",
            "CALLSCRIBE_LOG_LEVEL": "info",
        }

    # -- clients -----------------------------------------------------------------------------

    def headers(self, admin: bool = False) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin_key if admin else self.tenant_key}"}

    def client(self, server: CallscribeServer | None = None) -> httpx.Client:
        """An HTTP client of one process (the front by default); close it after use."""
        return httpx.Client(base_url=(server or self.front).url, timeout=30)

    def logs(self) -> str:
        """Every process's log tail, for failure messages."""
        names = [f"asr-{i + 1}" for i in range(len(self.asr))]
        names += ["sip"] * (self.sip is not None) + ["webrtc"]
        names += [f"worker-{i + 1}" for i in range(len(self.workers))]
        return "\n".join(
            f"--- {name} ({'running' if p.running else 'NOT RUNNING'})\n{p.log_tail(30)}"
            for name, p in zip(names, self.processes, strict=True)
        )
