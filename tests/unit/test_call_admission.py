"""Call admission: a new call is refused, with a SIP-style status and a reason, rather than
degrading the calls in progress; an admitted one holds a stream slot of its tenant."""

import asyncio
from types import SimpleNamespace

import pytest

from common.errors import TooManyRequests
from service.quotas import QuotaLimits, TenantQuotas
from telephony.admission import CallAdmission
from telephony.refusal import CallRefused
from telephony.registry import CallRegistry

KNOWN = {"acme"}
USED = {"old-call"}


def lookup(tenant_id: str, call_id: str) -> tuple[bool, bool]:
    """The stand-in of `CallStorage.lookup` (tested against real databases elsewhere)."""
    return tenant_id in KNOWN, call_id in USED


def admission(max_calls=2, finals=0, streams=20):
    registry = CallRegistry()
    quotas = TenantQuotas(QuotaLimits(max_streams=streams))
    gate = CallAdmission(registry, quotas, lambda: finals, lookup, max_calls, max_waiting_finals=3)
    return gate, registry, quotas


def admit(gate, tenant="acme", call_id=None):
    return asyncio.run(gate.admit(tenant, call_id))


def refusal(gate, tenant="acme", call_id=None) -> CallRefused:
    with pytest.raises(CallRefused) as refused:
        admit(gate, tenant, call_id)
    return refused.value


def test_an_admitted_call_gets_an_id_and_its_tenant_slot():
    gate, _, quotas = admission()
    call_id, slot = admit(gate)
    assert len(call_id) == 32 and quotas.in_use("acme", "stream") == 1
    assert admit(gate, call_id="CA1234.leg-2")[0] == "CA1234.leg-2"
    slot.release()
    assert quotas.in_use("acme", "stream") == 1


def test_a_full_process_or_a_decoder_backlog_refuses_with_503():
    gate, registry, _ = admission(max_calls=1)
    registry.add(SimpleNamespace(id="live", source="test"))
    busy = refusal(gate)
    assert busy.status == 503 and busy.retry_after_s == 5 and "1 calls" in busy.reason
    backlog, _, _ = admission(finals=3)
    assert refusal(backlog).status == 503


@pytest.mark.parametrize(
    ("tenant", "call_id", "status", "reason"),
    [
        ("acme", "../../etc", 400, "call id '../../etc'"),
        ("acme", "x" * 65, 400, "1 to 64"),
        ("acme", "live", 486, "in progress"),
        ("nobody", None, 404, "no tenant 'nobody'"),
        ("acme", "old-call", 409, "used by an earlier call"),
    ],
)
def test_refusals(tenant, call_id, status, reason):
    gate, registry, quotas = admission()
    registry.add(SimpleNamespace(id="live", source="test", tenant_id="acme"))
    refused = refusal(gate, tenant, call_id)
    assert refused.status == status and reason in refused.reason
    assert quotas.in_use(tenant, "stream") == 0  # a refused call holds nothing


def test_a_tenant_over_its_stream_limit_is_told_so():
    gate, _, _ = admission(streams=1)
    admit(gate)
    with pytest.raises(TooManyRequests):
        admit(gate)
