"""The ASR cores a gateway streams to, and where a new leg goes.

Every `health_interval_s` each core's `/healthz` is read: whether it answers, and its `load`
(live streams open, the most it takes, finals waiting for a decoder). A new leg goes to the
least-loaded core with room; a core that refuses a stream (busy: 4429) counts as full and one
that cannot be reached as down until its next health check says otherwise, so a restarted core
takes streams again within one interval. When no core has room, `busy()` says why and the call
is refused at admission, never degraded once it runs.
"""

import asyncio
import contextlib
import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry

from telephony.asr_pool.config import AsrPoolConfig
from telephony.asr_pool.metrics import HopMetrics

logger = logging.getLogger(__name__)

MAX_HEALTH_BYTES = 64_000
"""A health answer is a few hundred bytes; more is not read."""


@dataclass
class Core:
    url: str
    """`ws://host:port`: streams go to `<url>/v1/stream`."""
    up: bool = False
    streams: int = 0
    """Live streams the core reported, plus the legs placed here since that report."""
    max_streams: int = 0
    """0: the core sets no limit."""
    finals_waiting: int = 0
    full: bool = False
    """It refused a stream as busy: no new legs until its next report."""
    mine: int = 0
    """Legs of this gateway streaming to it now."""

    @property
    def name(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def health_url(self) -> str:
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return urlunsplit((scheme, parts.netloc, "/healthz", "", ""))

    def room(self, max_finals_waiting: int) -> bool:
        if not self.up or self.full or self.finals_waiting >= max_finals_waiting:
            return False
        return not self.max_streams or self.streams < self.max_streams

    def load(self) -> tuple[float, int, int]:
        """Sort key: share of its limit in use (or streams, without one), finals waiting."""
        share = self.streams / self.max_streams if self.max_streams else float(self.streams)
        return (share, self.finals_waiting, self.mine)

    def describe(self) -> str:
        if not self.up:
            return f"{self.name} down"
        limit = f"/{self.max_streams}" if self.max_streams else ""
        state = "full" if self.full else f"{self.streams}{limit} streams"
        return f"{self.name} {state}, {self.finals_waiting} finals waiting"


class AsrPool:
    def __init__(
        self,
        config: AsrPoolConfig,
        registry: CollectorRegistry | None = None,
        read_health: Callable[[str, float], dict] | None = None,
    ) -> None:
        if not config.urls:
            raise ValueError("an ASR pool needs at least one core URL")
        self.config = config
        self.cores = [Core(url.rstrip("/")) for url in config.urls]
        self.metrics = HopMetrics(registry)
        self._read_health = read_health or _read_health
        self._task: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Read every core's health once (a call admitted right away is placed by it), then
        keep reading it."""
        await self.check()
        for core in self.cores:
            if not core.up:
                logger.warning("ASR core not answering", extra={"core": core.url})
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_interval_s)
            try:
                await self.check()
            except Exception:  # a bad answer must not stop the checks
                logger.exception("ASR core health check failed")

    async def check(self) -> None:
        await asyncio.gather(*(self._check(core) for core in self.cores))

    async def _check(self, core: Core) -> None:
        try:
            health = await asyncio.to_thread(
                self._read_health, core.health_url, self.config.health_timeout_s
            )
            load = health.get("load") or {}
            streams, limit = int(load.get("streams", 0)), int(load.get("max_streams", 0))
            waiting = int(load.get("finals_waiting", 0))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            if core.up:
                logger.warning("ASR core down", extra={"core": core.url, "error": str(exc)})
            core.up = False
        else:
            if not core.up:
                logger.info("ASR core up", extra={"core": core.url, "streams": streams})
            core.up, core.full = True, False
            core.streams, core.max_streams, core.finals_waiting = streams, limit, waiting
        self.metrics.healthy.labels(core=core.name).set(1 if core.up else 0)

    # -- placement ---------------------------------------------------------------------------

    def busy(self) -> str | None:
        """Why no core can take a new call now (None: one can)."""
        if any(core.room(self.config.max_finals_waiting) for core in self.cores):
            return None
        return "no ASR core has room (" + "; ".join(c.describe() for c in self.cores) + ")"

    def candidates(self, avoid: Core | None = None) -> list[Core]:
        """Cores with room, least loaded first; `avoid` (the core a leg just lost) last."""
        ready = [c for c in self.cores if c.room(self.config.max_finals_waiting)]
        ready.sort(key=lambda c: (c is avoid, c.load()))
        return ready

    def placed(self, core: Core) -> None:
        """A leg now streams to `core`: counted until its next report includes it."""
        core.streams += 1
        core.mine += 1
        self.metrics.streams.labels(core=core.name).set(core.mine)

    def left(self, core: Core) -> None:
        """A leg no longer streams to `core` (its last report counted it, or `placed` did)."""
        core.streams = max(0, core.streams - 1)
        core.mine = max(0, core.mine - 1)
        self.metrics.streams.labels(core=core.name).set(core.mine)

    def refused(self, core: Core, reason: str) -> None:
        """`core` would not take a stream: `busy` (full until its next report) or
        `unreachable` / `lost` (down until it answers its health check again)."""
        if reason == "busy":
            core.full = True
        else:
            core.up = False
            self.metrics.healthy.labels(core=core.name).set(0)
        self.metrics.refusals.labels(core=core.name, reason=reason).inc()


def _read_health(url: str, timeout_s: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body = json.loads(response.read(MAX_HEALTH_BYTES))
    if not isinstance(body, dict) or body.get("status") != "ok":
        raise ValueError(f"unexpected health answer from {url}")
    return body
