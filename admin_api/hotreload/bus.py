"""The hot-word bus: the admin API announces `{tenant, list, version}` after each committed
change; every ASR process listens and swaps that tenant's index.

Two implementations with one interface: `InProcessBus` for the embedded default (admin API and
ASR in one process) and `RedisBus` (Redis pub/sub) when several processes serve. Messages are
only hints: a process that missed some (Redis restarted, network split) is told to resync, and
resyncs compare versions in the database, so nothing depends on every message arriving.
"""

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)

CHANNEL = "callscribe:hotwords"


@dataclass(frozen=True)
class HotwordChange:
    tenant: str
    list: str
    version: int
    """The tenant's hot-word version after the change (`Tenant.hotword_version`)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> "HotwordChange":
        data = json.loads(text)
        return cls(str(data["tenant"]), str(data["list"]), int(data["version"]))


OnChange = Callable[[HotwordChange], None]
OnResync = Callable[[], None]


class HotwordBus(ABC):
    """Publish from any thread; listeners run in a worker thread (they may query)."""

    @abstractmethod
    def publish(self, change: HotwordChange) -> None:
        """Announce a committed change. Never raises: the change is in the database already,
        and listeners that miss it catch up at their next resync."""

    @abstractmethod
    async def start(self, on_change: OnChange, on_resync: OnResync) -> None:
        """Begin delivering changes to `on_change`; `on_resync` runs whenever messages may
        have been missed (after connecting and reconnecting)."""

    @abstractmethod
    async def stop(self) -> None: ...


class InProcessBus(HotwordBus):
    """Admin API and ASR in one process: a change is applied before `publish` returns."""

    def __init__(self) -> None:
        self._listeners: list[OnChange] = []

    def publish(self, change: HotwordChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                logger.exception("hot-word listener failed", extra={"tenant": change.tenant})

    async def start(self, on_change: OnChange, on_resync: OnResync) -> None:
        self._listeners.append(on_change)

    async def stop(self) -> None:
        self._listeners.clear()


class RedisBus(HotwordBus):
    """Redis pub/sub on one channel; reconnects with backoff and asks for a resync on every
    (re)connection, since pub/sub keeps nothing for absent subscribers."""

    def __init__(self, url: str, channel: str = CHANNEL, publish_timeout_s: float = 1.0) -> None:
        import redis

        self.url = url
        self.channel = channel
        self._publisher = redis.Redis.from_url(
            url, socket_timeout=publish_timeout_s, socket_connect_timeout=publish_timeout_s
        )
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()
        """Set while subscribed (tests wait on it)."""

    def publish(self, change: HotwordChange) -> None:
        import redis

        try:
            self._publisher.publish(self.channel, change.to_json())
        except redis.RedisError as exc:
            logger.warning(
                "hot-word change not announced (Redis unreachable); ASR processes pick it up "
                "at their next resync",
                extra={"tenant": change.tenant, "version": change.version, "error": str(exc)},
            )

    async def start(self, on_change: OnChange, on_resync: OnResync) -> None:
        self._task = asyncio.create_task(self._listen(on_change, on_resync))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._publisher.close()

    async def _listen(self, on_change: OnChange, on_resync: OnResync) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        backoff = 0.1
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2.0)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.connected.set()
                    backoff = 0.1
                    logger.info("hot-word bus subscribed", extra={"channel": self.channel})
                    await asyncio.to_thread(on_resync)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._deliver(message["data"], on_change)
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    logger.warning(
                        "hot-word bus lost Redis; reconnecting", extra={"error": str(exc)}
                    )
                self.connected.clear()
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    @staticmethod
    async def _deliver(data: bytes, on_change: OnChange) -> None:
        try:
            change = HotwordChange.from_json(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed hot-word message", extra={"data": repr(data[:200])})
            return
        try:
            await asyncio.to_thread(on_change, change)
        except Exception:
            logger.exception("hot-word listener failed", extra={"tenant": change.tenant})
