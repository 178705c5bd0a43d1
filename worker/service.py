"""The server's side of the worker: queueing tasks, and the embedded worker process that
`callscribe serve` runs beside itself (the one-machine default, no external service)."""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from celery import Celery
from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.crud.jobs import queue_postcall
from worker import broker
from worker.config import BrokerConfig
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
            if queue_postcall(session, call_id) is None:
                return
            session.commit()
        self.celery.send_task(postcall.TASK, [call_id])

    def batch(self, job_id: str) -> None:
        self.celery.send_task(jobs.TASK, [job_id])


class EmbeddedWorker:
    """A worker process (`command`, e.g. `callscribe worker`, with `env` on top of this
    process's environment) started and stopped with the server, and started again if it dies.
    With the embedded broker, the tasks a dead worker had taken are released before the next
    one starts: no other worker can hold them."""

    def __init__(self, command: list[str], env: dict[str, str], broker: BrokerConfig) -> None:
        self.command = command
        self.env = env
        self.broker = broker
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
        if not self.broker.url:
            released = broker.release_leases(self.broker.path)
            if released:
                logger.warning("tasks of a stopped worker queued again", extra={"n": released})
        self.process = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env, PARENT_ENV: str(os.getpid())},
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
