"""Whether a new call may start in this process. Calls in progress are never degraded to make
room: a new one is refused (`CallRefused`, SIP-style status) when this process already holds
its maximum, when finals are queueing in the decoder or no ASR core it streams to has room,
for a malformed, live or already used call id, or an unknown tenant; an admitted call holds one
of its tenant's stream slots."""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common.rules import InvalidRequest, check_call_id
from service.quotas import Slot, TenantQuotas
from telephony.refusal import CallRefused
from telephony.registry import CallRegistry

BUSY_RETRY_S = 5


@dataclass(frozen=True)
class TenantCaller:
    """Who a call belongs to, in the shape the service's quotas and hot-word hook expect."""

    tenant_id: str


def id_taken(call_id: str) -> str:
    """The one answer for an id that cannot be used again, whoever used it: it tells a
    tenant nothing of other tenants' calls (not whether one is live)."""
    return f"call id {call_id} was used by an earlier call; call ids are never reused"


class CallAdmission:
    def __init__(
        self,
        registry: CallRegistry,
        quotas: TenantQuotas,
        finals_waiting: Callable[[], int],
        lookup: Callable[[str, str], tuple[bool, bool]],
        max_calls: int = 32,
        max_waiting_finals: int = 8,
        decoders_busy: Callable[[], str | None] | None = None,
    ) -> None:
        self.registry = registry
        self.quotas = quotas
        self.finals_waiting = finals_waiting
        """Finals queued in the decoder now (the scheduler's backlog)."""
        self.lookup = lookup
        """(tenant id, call id) -> (the tenant exists, the id was used); it queries (a thread)."""
        self.max_calls = max_calls
        self.max_waiting_finals = max_waiting_finals
        self.decoders_busy = decoders_busy
        """Why the ASR cores this process streams to cannot take a call now (None: they
        can); unset when calls are decoded here."""

    async def admit(self, tenant_id: str, call_id: str | None) -> tuple[str, Slot]:
        """The call's id (a new one unless given) and the tenant's stream slot it holds;
        raises `CallRefused`, or `TooManyRequests` when the tenant is over its limits."""
        waiting = self.finals_waiting()
        if len(self.registry) >= self.max_calls or waiting >= self.max_waiting_finals:
            raise CallRefused(
                f"busy: {len(self.registry)} calls and {waiting} finals waiting here",
                503,
                retry_after_s=BUSY_RETRY_S,
            )
        busy = self.decoders_busy() if self.decoders_busy is not None else None
        if busy is not None:
            raise CallRefused(f"busy: {busy}", 503, retry_after_s=BUSY_RETRY_S)
        try:
            call_id = check_call_id(call_id) or uuid.uuid4().hex
        except InvalidRequest as broken:
            raise CallRefused(broken.message, broken.status) from None
        live = self.registry.get(call_id)
        if live is not None and live.tenant_id == tenant_id:
            raise CallRefused(f"call {call_id} is already in progress", 486)
        if live is not None:  # another tenant's: answered as any used id, nothing more
            raise CallRefused(id_taken(call_id), 409)
        tenant_exists, id_used = await asyncio.to_thread(self.lookup, tenant_id, call_id)
        if not tenant_exists:
            raise CallRefused(f"no tenant {tenant_id!r}", 404)
        if id_used:
            raise CallRefused(id_taken(call_id), 409)
        return call_id, self.quotas.stream(TenantCaller(tenant_id))
