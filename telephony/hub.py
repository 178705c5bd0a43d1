"""`CallHub`: the calls of this process, from admission to the stored transcript. Every gateway
(SIP, media-stream adapters, WebRTC) opens its calls here, and each `CallSession` reports back
when it ends. The hub ties four small parts together:

- `CallAdmission` (admission.py): may this call start here, now?
- `CallRegistry` (registry.py): the calls in progress, by id;
- `CallListeners` (listeners.py): their live listeners;
- `CallStorage` (storage.py): their rows and finals in the admin database.

Legs are recognised on this process's decode scheduler, or, with a pool of ASR cores
(`CALLSCRIBE_ASR_URLS`), by `RemoteRecognizer`s streaming to those cores (`asr_pool/`): then
admission also needs a core with room.

At start it marks the calls a killed earlier run of this node left active as interrupted; at
stop it ends the calls in progress.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from asr_core.hotwords import HotwordIndex, render_hotwords
from asr_core.streaming import DecodeScheduler, StreamingRecognizer
from common.rules import RequestRules
from service.config import HotwordsFor
from service.hotwords import combined
from service.metrics import StreamMetrics
from service.quotas import TenantQuotas
from telephony.admission import CallAdmission, TenantCaller
from telephony.asr_pool import AsrPool, RemoteRecognizer
from telephony.asr_pool.client import StreamRequest
from telephony.listeners import CallListeners
from telephony.registry import CallRegistry
from telephony.session import CallSession
from telephony.storage import CallStorage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallsConfig:
    node: str
    """This process's name in `Call.node` (host:port): at start, its calls still active are
    stale; other processes sweep them when its lease runs out."""
    max_calls: int = 32
    max_waiting_finals: int = 8
    """Finals queued in the decoder beyond which new calls are refused."""
    recordings_dir: Path | None = None
    """A 16 kHz WAV per leg under `<dir>/<tenant>/<call>/` (None: calls are not recorded)."""


class CallHub:
    def __init__(
        self,
        config: CallsConfig,
        database: Engine,
        scheduler: DecodeScheduler,
        quotas: TenantQuotas,
        metrics: StreamMetrics,
        rules: RequestRules,
        hotwords_for: HotwordsFor | None = None,
        after_call: Callable[[str], None] | None = None,
        pool: AsrPool | None = None,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.metrics = metrics
        self.rules = rules
        self.hotwords_for = hotwords_for
        """The tenant's standing hot-words (looked up again at every segment start)."""
        self.after_call = after_call
        """Called (in a thread) with the id of every recorded call once its recordings are
        closed and its row updated: the post-call pass is queued from here."""
        self.pool = pool
        """The ASR cores legs are recognised on (None: this process's scheduler)."""
        self.storage = CallStorage(database, config.node)
        self.calls = CallRegistry(metrics.active_streams)
        self.listeners = CallListeners()
        self.admission = CallAdmission(
            self.calls,
            quotas,
            lambda: scheduler.pending[0],
            self.storage.lookup,
            config.max_calls,
            config.max_waiting_finals,
            pool.busy if pool is not None else None,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.pool is not None:
            await self.pool.start()
        stale = await asyncio.to_thread(self.storage.close_stale)
        if stale:
            logger.warning("calls left active by a previous run closed", extra={"calls": stale})

    async def stop(self) -> None:
        for session in self.calls:
            await session.abort("the gateway is shutting down")
        if self.pool is not None:
            await self.pool.stop()

    # -- calls -------------------------------------------------------------------------------

    async def open_call(
        self,
        tenant_id: str,
        source: str,
        call_id: str | None = None,
        language: str | None = None,
        hotwords: HotwordIndex | None = None,
    ) -> CallSession:
        """Admit a new call of `tenant_id` (raises `CallRefused`); add legs to it next.
        `hotwords`: phrases for this call only, on top of the tenant's lists."""
        call_id, slot = await self.admission.admit(tenant_id, call_id)
        try:
            call_hotwords = await self._hotwords(TenantCaller(tenant_id), hotwords)
            recordings = None
            if self.config.recordings_dir is not None:
                recordings = self.config.recordings_dir / tenant_id / call_id
                recordings.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(
                self.storage.open, call_id, tenant_id, source, recordings, language
            )
        except BaseException:
            slot.release()
            raise
        session = CallSession(
            self, call_id, tenant_id, source, language, call_hotwords, recordings, slot, hotwords
        )
        self.calls.add(session)
        logger.info("call started", extra={"call": call_id, "tenant": tenant_id, "source": source})
        return session

    async def _hotwords(
        self, caller: TenantCaller, extra: HotwordIndex | None
    ) -> Callable[[], HotwordIndex | None]:
        """The call's hot-words as a lookup: the tenant's lists as they are now (an admin's
        edit reaches the call at its next segment), with the call's own phrases."""
        hook = self.hotwords_for
        if hook is not None:
            await asyncio.to_thread(hook, caller)  # the first lookup may query

        def current() -> HotwordIndex | None:
            return combined(hook(caller) if hook is not None else None, extra)

        return current

    def new_recognizer(
        self, events: asyncio.Queue, session: CallSession, leg: str
    ) -> StreamingRecognizer | RemoteRecognizer:
        """A leg's recogniser: on this process's scheduler, or streaming to a core of the pool
        (which applies the tenant's lists; the call's own phrases go with the stream)."""
        if self.pool is None:
            return StreamingRecognizer(
                self.scheduler,
                self.rules.stream_options(session.language),
                self.metrics,
                events=events,
            )
        phrases = session.phrases
        request = StreamRequest(
            session.tenant_id,
            session.id,
            leg,
            session.language,
            render_hotwords(phrases.hotwords, "json") if phrases is not None else None,
        )
        return RemoteRecognizer(self.pool, request, events)

    async def closed(self, session: CallSession, status: str, reason: str) -> None:
        """A session is over (`status` ended or interrupted): release it, close its row, tell
        its listeners, and queue its post-call pass."""
        self.calls.remove(session.id)
        session.slot.release()
        await asyncio.to_thread(self.storage.close, session.id, status, session.hotwords())
        self.listeners.publish(
            session.id, {"type": "call_ended", "status": status, "reason": reason}
        )
        self.listeners.close(session.id)
        logger.info("call ended", extra={"call": session.id, "status": status, "reason": reason})
        if self.after_call is not None and session.recordings is not None and session.legs:
            try:
                await asyncio.to_thread(self.after_call, session.id)
            except Exception:  # the broker being down must not fail a hang-up
                logger.exception("post-call pass not queued", extra={"call": session.id})
