"""The Celery app: Redis as broker and result backend in production, the embedded SQLite broker
(`worker.broker`) otherwise. Every task is acknowledged late: a worker that dies mid-task leaves
it to be delivered again (after the visibility timeout), and the tasks are idempotent.

The tasks register on `app` when imported; `configure` gives it its broker and the tasks what
they need (a `WorkerConfig` and how to build the ASR engine) before a worker starts. `callscribe
worker` does both; `callscribe serve` runs one itself unless `CALLSCRIBE_WORKER_EMBEDDED=false`.
"""

import functools
import logging
from collections.abc import Callable

from celery import Celery
from sqlalchemy.engine import Engine

import worker.broker  # noqa: F401  (registers the `sqlite://` transport)
from asr_core.engines import Engine as AsrEngine
from asr_core.transcribe import Transcriber
from worker.config import BrokerConfig, WorkerConfig

logger = logging.getLogger(__name__)

QUEUE = "callscribe"
TASK_MODULES = ["worker.tasks.postcall", "worker.tasks.jobs", "worker.tasks.webhooks"]


def configure_celery(app: Celery, broker: BrokerConfig) -> Celery:
    visibility = broker.visibility_timeout_s
    transport_options: dict = {
        "visibility_timeout": visibility,
        # Look for tasks of dead workers often enough to honour a short visibility timeout.
        "unacked_restore_interval": min(10.0, max(1.0, visibility / 4)),
        "unacked_restore_throttle": 1,
    }
    if broker.url:
        url, backend = broker.url, broker.url
    else:
        url, backend = "sqlite://localhost", None
        transport_options["path"] = str(broker.path.resolve())
    app.conf.update(
        broker_url=url,
        result_backend=backend,
        task_ignore_result=backend is None,
        result_expires=86_400,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=broker.concurrency,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def make_celery(broker: BrokerConfig) -> Celery:
    """A Celery app on `broker`, e.g. the server's, which only sends tasks (by name)."""
    return configure_celery(Celery("callscribe", include=TASK_MODULES), broker)


app = Celery("callscribe", include=TASK_MODULES)
"""The workers' app (configured by `configure`)."""


class WorkerContext:
    """What tasks share within one worker process: the config, the database, the model."""

    def __init__(self, config: WorkerConfig, build_engine: Callable[[], AsrEngine]) -> None:
        self.config = config
        self._build_engine = build_engine

    @functools.cached_property
    def database(self) -> Engine:
        """Made in the process that uses it (a connection pool must not cross a fork)."""
        from admin_api.db import make_engine

        return make_engine(self.config.database_url)

    @functools.cached_property
    def transcriber(self) -> Transcriber:
        """Loaded on the first task, in the process that runs it (CTranslate2 does not survive
        a fork)."""
        return Transcriber(self._build_engine())


_context: WorkerContext | None = None


def configure(
    config: WorkerConfig, broker: BrokerConfig, build_engine: Callable[[], AsrEngine]
) -> None:
    """Give this process's worker its broker and its tasks' context (before it starts)."""
    global _context
    configure_celery(app, broker)
    _context = WorkerContext(config, build_engine)


def context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("the worker is not configured: start it with `callscribe worker`")
    return _context
