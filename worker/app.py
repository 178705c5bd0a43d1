"""The Celery app: Redis as broker and result backend in production, the embedded SQLite broker
(`worker.broker`) otherwise. Every task is acknowledged late: a worker that dies mid-task leaves
it to be delivered again (after the visibility timeout), and the tasks are idempotent.

Run a worker with `callscribe worker` (or `celery -A worker.app worker`); `callscribe serve`
runs one itself unless `CALLSCRIBE_WORKER_EMBEDDED=false`.
"""

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from sqlalchemy.engine import Engine

import worker.broker  # noqa: F401  (registers the `sqlite://` transport)
from asr_core.transcribe import Transcriber
from callscribe.config import Settings, get_settings

logger = logging.getLogger(__name__)

QUEUE = "callscribe"
TASK_MODULES = ["worker.tasks.postcall", "worker.tasks.jobs", "worker.tasks.webhooks"]


def broker_path(settings: Settings) -> Path:
    return Path(settings.var_dir) / "broker.sqlite"


def make_celery(settings: Settings) -> Celery:
    app = Celery("callscribe", include=TASK_MODULES)
    visibility = settings.worker_visibility_timeout_s
    transport_options: dict = {
        "visibility_timeout": visibility,
        # Look for tasks of dead workers often enough to honour a short visibility timeout.
        "unacked_restore_interval": min(10.0, max(1.0, visibility / 4)),
        "unacked_restore_throttle": 1,
    }
    if settings.broker_url:
        broker, backend = settings.broker_url, settings.broker_url
    else:
        broker, backend = "sqlite://localhost", None
        transport_options["path"] = str(broker_path(settings).resolve())
    app.conf.update(
        broker_url=broker,
        result_backend=backend,
        task_ignore_result=backend is None,
        result_expires=86_400,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


app = make_celery(get_settings())


@dataclass
class WorkerContext:
    """What tasks share within one worker process: settings, the database, the model."""

    settings: Settings
    database: Engine

    @functools.cached_property
    def transcriber(self) -> Transcriber:
        """Loaded on the first task, in the process that runs it (CTranslate2 does not survive
        a fork)."""
        from asr_core.engines import load_engine

        settings = self.settings
        threads = settings.cpu_threads or max(
            1, (os.cpu_count() or 1) // settings.worker_concurrency
        )
        engine = load_engine(
            settings.model,
            cache_dir=settings.model_cache_dir,
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=threads,
            num_workers=1,
        )
        return Transcriber(engine)


@functools.cache
def context() -> WorkerContext:
    from admin_api.db import make_engine

    settings = get_settings()
    return WorkerContext(settings, make_engine(settings.database_url))
