"""Per-tenant limits: concurrency slots and a per-minute token bucket."""

from dataclasses import dataclass

import pytest

from common.errors import TooManyRequests
from service.quotas import QuotaLimits, TenantQuotas


@dataclass
class Caller:
    tenant_id: str | None


def test_concurrency_is_counted_per_tenant_and_kind():
    quotas = TenantQuotas(QuotaLimits(max_streams=2, max_transcriptions=1))
    acme, globex = Caller("acme"), Caller("globex")
    first, second = quotas.stream(acme), quotas.stream(acme)
    with pytest.raises(TooManyRequests, match="2 streams"):
        quotas.stream(acme)
    quotas.stream(globex).release()  # another tenant is not held back
    with quotas.transcription(acme):  # nor is another kind of work
        assert quotas.in_use("acme", "transcription") == 1
    first.release()
    first.release()  # releasing twice frees one slot, not two
    assert quotas.in_use("acme", "stream") == 1
    quotas.stream(acme)
    second.release()


def test_requests_per_minute_refill_over_time(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("service.quotas.time.monotonic", lambda: now[0])
    quotas = TenantQuotas(QuotaLimits(requests_per_minute=2))
    caller = Caller("acme")
    quotas.transcription(caller).release()
    quotas.transcription(caller).release()
    with pytest.raises(TooManyRequests) as refused:
        quotas.transcription(caller)
    assert refused.value.retry_after_s == 30  # one request every 30 s at 2 a minute
    now[0] += 30
    quotas.transcription(caller).release()


def test_callers_without_a_tenant_are_not_limited():
    quotas = TenantQuotas(QuotaLimits(max_streams=1, requests_per_minute=1))
    for _ in range(5):
        quotas.stream(Caller(None))
        quotas.stream(None)
