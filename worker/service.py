"""The server's side of the worker: queueing tasks, and the embedded worker process that
`callscribe serve` runs beside itself (the one-machine default, no external service)."""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.crud.jobs import postcall_id, set_status
from admin_api.models import Call, Job
from callscribe.config import Settings
from worker import broker
from worker.app import broker_path
from worker.tasks import jobs, postcall

logger = logging.getLogger(__name__)

STOP_WAIT_S = 10.0
"""How long a stopping worker may finish its task before it is killed (the task then runs
again from the start at the next worker start)."""
RESTART_DELAY_S = 2.0
PARENT_ENV = "CALLSCRIBE_WORKER_PARENT_PID"
"""Set for an embedded worker: it stops when that process is gone (a server killed outright
must not leave its worker behind)."""


def exit_with_parent() -> None:
    """In an embedded worker: stop (warm, then for good) once the server that started it is
    gone. A thread polls, since the server may die without running any code."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        logger.warning("the server is gone; the worker stops")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_WAIT_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@dataclass
class TaskQueue:
    """Sends jobs to the workers (from the server process, by task name)."""

    celery: Celery
    database: Engine

    def postcall(self, call_id: str) -> None:
        """Queue (or queue again) the call's post-call pass; one job row per call."""
        with Session(self.database) as session:
            call = session.get(Call, call_id)
            if call is None:
                return
            job_id = postcall_id(call_id)
            job = session.get(Job, job_id) or Job(
                id=job_id, tenant_id=call.tenant_id, kind="postcall", call_id=call_id
            )
            set_status(job, "queued")
            job.progress = 0.0
            session.add(job)
            session.commit()
        self.celery.send_task(postcall.TASK, [call_id])

    def batch(self, job_id: str) -> None:
        self.celery.send_task(jobs.TASK, [job_id])


class EmbeddedWorker:
    """A `callscribe worker` process started and stopped with the server, and started again
    if it dies. With the embedded broker, the tasks a dead worker had taken are released
    before the next one starts: no other worker can hold them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._spawn)
        self._watch = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.to_thread(self._terminate)

    def _spawn(self) -> None:
        if not self.settings.broker_url:
            released = broker.release_leases(broker_path(self.settings))
            if released:
                logger.warning("tasks of a stopped worker queued again", extra={"n": released})
        env = {
            **os.environ,
            "CALLSCRIBE_DATABASE_URL": self.settings.database_url,
            "CALLSCRIBE_VAR_DIR": str(Path(self.settings.var_dir).resolve()),
            "CALLSCRIBE_MODEL": self.settings.model,
            "CALLSCRIBE_BROKER_URL": self.settings.broker_url or "",
            PARENT_ENV: str(os.getpid()),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callscribe", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the server, which stops the worker
        )
        logger.info("worker started", extra={"pid": self.process.pid})

    async def _supervise(self) -> None:
        while True:
            code = await asyncio.to_thread(self.process.wait)
            logger.error("worker exited; starting another", extra={"code": code})
            await asyncio.sleep(RESTART_DELAY_S)
            await asyncio.to_thread(self._spawn)

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
