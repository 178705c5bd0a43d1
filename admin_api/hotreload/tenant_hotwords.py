"""Each tenant's standing hot-word index, as this ASR process applies it.

The index of a tenant is built from its active lists on first use and kept with the tenant's
hot-word version. A bus message, a reconnect or the periodic resync rebuilds the indexes whose
version moved; the new index replaces the old one in a single assignment, so a decode uses
either the old list or the new one, never a mix. Live calls look their tenant up again at each
new segment, which is how a change reaches calls in progress.
"""

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from admin_api.crud import hotword_lists
from admin_api.hotreload.bus import HotwordBus, HotwordChange
from admin_api.models import Tenant
from asr_core.hotwords import HotwordIndex, HotwordList

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    version: int
    index: HotwordIndex | None
    """None when the tenant has no active phrases."""
    applied_at: float
    """`time.time()` when this process swapped it in."""


class TenantHotwords:
    """`ServiceConfig.hotwords_for`: principal -> that tenant's index; with `start`/`stop` it
    follows the bus and resyncs every `resync_s` seconds."""

    def __init__(self, database: Engine, bus: HotwordBus, resync_s: float = 30.0) -> None:
        self.database = database
        self.bus = bus
        self.resync_s = resync_s
        self._applied: dict[str, Applied] = {}
        self._locks_lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        """One per tenant: a tenant's long rebuild never holds up another tenant's."""
        self._task: asyncio.Task | None = None

    def __call__(self, principal: object) -> HotwordIndex | None:
        tenant_id = getattr(principal, "tenant_id", None)
        if tenant_id is None:
            return None
        applied = self._applied.get(tenant_id)
        if applied is None:
            applied = self._load(tenant_id)
        return applied.index if applied is not None else None

    def applied(self, tenant_id: str) -> Applied | None:
        return self._applied.get(tenant_id)

    # -- keeping up --------------------------------------------------------------------------

    def on_change(self, change: HotwordChange) -> None:
        """A bus message: rebuild if this process holds an older version of the tenant."""
        current = self._applied.get(change.tenant)
        if current is not None and current.version < change.version:
            self._load(change.tenant)

    def resync(self) -> int:
        """Compare every held tenant with the database; rebuild the stale ones. Returns how
        many were rebuilt."""
        held = list(self._applied)
        if not held:
            return 0
        with Session(self.database) as session:
            rows = session.exec(
                select(Tenant.id, Tenant.hotword_version).where(Tenant.id.in_(held))
            ).all()
        versions = dict(rows)
        stale = [t for t in held if versions.get(t, -1) != self._applied[t].version]
        for tenant_id in stale:
            self._load(tenant_id)
        if stale:
            logger.info("hot-words resynced", extra={"tenants": stale})
        return len(stale)

    def _lock(self, tenant_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._load_locks.setdefault(tenant_id, threading.Lock())

    def _load(self, tenant_id: str) -> Applied | None:
        with self._lock(tenant_id):
            with Session(self.database) as session:
                tenant = session.get(Tenant, tenant_id)
                if tenant is None:
                    self._applied.pop(tenant_id, None)
                    return None
                current = self._applied.get(tenant_id)
                if current is not None and current.version == tenant.hotword_version:
                    return current
                entries = hotword_lists.active_entries(session, tenant_id)
                version = tenant.hotword_version
            index = HotwordIndex(HotwordList(entries, version)) if entries else None
            applied = Applied(version, index, time.time())
            self._applied[tenant_id] = applied
        logger.info(
            "hot-words applied",
            extra={"tenant": tenant_id, "version": version, "phrases": len(entries)},
        )
        return applied

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self.on_change, self._resync_quietly)
        self._task = asyncio.create_task(self._resync_periodically())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.bus.stop()

    async def _resync_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.resync_s)
            await asyncio.to_thread(self._resync_quietly)

    def _resync_quietly(self) -> None:
        try:
            self.resync()
        except Exception:
            logger.exception("hot-word resync failed; keeping the lists held")
