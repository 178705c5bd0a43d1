"""Per-tenant limits: live streams and file transcriptions at once, and new requests per
minute, so one tenant's burst cannot take the box from the others.

Counted per process (each ASR process enforces its share). Callers without a tenant (no auth
hook, admin keys) are not limited here; the service's global limits still apply to them.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.errors import TooManyRequests


@dataclass(frozen=True)
class QuotaLimits:
    max_streams: int = 20
    """Live streams one tenant may have open at once."""
    max_transcriptions: int = 4
    """File transcriptions one tenant may have running (or waiting) at once."""
    requests_per_minute: int = 600
    """New streams and transcriptions per tenant per minute (bursts up to this many)."""


def tenant_of(principal: object) -> str | None:
    """The tenant a caller acts for (principals of the admin backend carry `tenant_id`)."""
    return getattr(principal, "tenant_id", None)


class Slot:
    """One admitted stream or transcription; `release` exactly once (idempotent)."""

    def __init__(self, *releases: Callable[[], None]) -> None:
        self._releases = list(releases)

    def release(self) -> None:
        releases, self._releases = self._releases, []
        for release in reversed(releases):
            release()

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class TenantQuotas:
    def __init__(self, limits: QuotaLimits | None = None) -> None:
        self.limits = limits or QuotaLimits()
        self._lock = threading.Lock()
        self._in_use: dict[tuple[str, str], int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        """tenant -> (tokens left, when counted): a token bucket refilled at the per-minute
        rate."""

    def stream(self, principal: object) -> Slot:
        return self._admit(principal, "stream", self.limits.max_streams)

    def transcription(self, principal: object) -> Slot:
        return self._admit(principal, "transcription", self.limits.max_transcriptions)

    def _admit(self, principal: object, kind: str, limit: int) -> Slot:
        tenant = tenant_of(principal)
        if tenant is None:
            return Slot()
        key = (tenant, kind)
        with self._lock:
            if self._in_use.get(key, 0) >= limit:
                raise TooManyRequests(
                    f"tenant {tenant!r} already has {limit} {kind}s running (its limit); "
                    "retry when one ends",
                    retry_after_s=1.0,
                )
            self._take_token(tenant)
            self._in_use[key] = self._in_use.get(key, 0) + 1
        return Slot(lambda: self._release(key))

    def in_use(self, tenant: str, kind: str) -> int:
        return self._in_use.get((tenant, kind), 0)

    def _take_token(self, tenant: str) -> None:
        rate = self.limits.requests_per_minute / 60.0
        capacity = float(self.limits.requests_per_minute)
        now = time.monotonic()
        tokens, counted = self._buckets.get(tenant, (capacity, now))
        tokens = min(capacity, tokens + (now - counted) * rate)
        if tokens < 1.0:
            self._buckets[tenant] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / rate)
            raise TooManyRequests(
                f"tenant {tenant!r} is over {self.limits.requests_per_minute} requests per "
                f"minute; retry in {wait} s",
                retry_after_s=wait,
            )
        self._buckets[tenant] = (tokens - 1.0, now)

    def _release(self, key: tuple[str, str]) -> None:
        with self._lock:
            left = self._in_use.get(key, 0) - 1
            if left > 0:
                self._in_use[key] = left
            else:
                self._in_use.pop(key, None)


BUSY_RETRY_S = 5


class ProcessStreams:
    """The live streams this process carries, all callers together. A gateway's pool of ASR
    cores reads the count from `/healthz` to place new streams; past `limit` a new stream is
    refused (4429) so that the pool moves on to another core instead of overloading this one."""

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        """Most streams at once (0: no limit)."""
        self._lock = threading.Lock()
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def take(self) -> Slot:
        with self._lock:
            if self.limit and self._open >= self.limit:
                raise TooManyRequests(
                    f"busy: this ASR process already carries {self.limit} live streams "
                    "(its limit); retry on another",
                    retry_after_s=BUSY_RETRY_S,
                )
            self._open += 1
        return Slot(self._release)

    def _release(self) -> None:
        with self._lock:
            self._open -= 1
