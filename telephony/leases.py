"""Node leases: which processes holding calls are alive.

A process that holds calls (`Call.node`) and is killed leaves them "active". When it starts
again under the same name, its hub closes them; but a process that never comes back (a
container replaced under a new host name, a machine taken out) would leave them active for
ever. So every such process renews a lease while it runs, and also sweeps: the calls of a node
whose lease ran out `expiry_s` ago are marked interrupted, and that lease is dropped.

Leases compare the clocks of different machines: keep them in sync (NTP), and `expiry_s` well
above any skew and any pause of a process (a stalled process is taken for dead; its calls are
then marked interrupted, and closed normally if it recovers).
"""

import asyncio
import contextlib
import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.crud import calls, leases
from admin_api.models import utcnow

logger = logging.getLogger(__name__)


class NodeLeases:
    """A background service (start/stop) of a process that holds calls."""

    def __init__(self, database: Engine, node: str, expiry_s: float = 60.0) -> None:
        self.database = database
        self.node = node
        self.expiry_s = expiry_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.renew_and_sweep)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Give the lease up: the calls were ended by the hub, nobody needs to sweep them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._release)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_s / 3)
            try:
                await asyncio.to_thread(self.renew_and_sweep)
            except Exception:  # the database may be away for a moment: try again next round
                logger.exception("renewing the node lease failed")

    def renew_and_sweep(self) -> int:
        """Renew this node's lease; mark the calls of expired nodes interrupted. Returns how
        many calls were marked."""
        now = utcnow()
        with Session(self.database) as session:
            leases.renew(session, self.node, now)
            expired = leases.expired(session, self.node, now, self.expiry_s)
            marked = calls.interrupt_active(session, expired)
            if expired:
                leases.drop(session, expired)
            session.commit()
        if marked:
            logger.warning(
                "calls of expired nodes marked interrupted",
                extra={"nodes": expired, "calls": marked},
            )
        return marked

    def _release(self) -> None:
        with Session(self.database) as session:
            leases.drop(session, [self.node])
            session.commit()
