"""`POST /v1/media-streams/audiosocket/reservations`: a tenant reserves the UUID of its next
AudioSocket call (AudioSocket carries no credentials, only that UUID).

`{"call_id": "<uuid>", "expires_in": 120}` comes back; the dialplan then runs
`AudioSocket(<uuid>,HOST:PORT)`. A reservation is used once, by the first connection that
presents its UUID before it expires, and lives in this process's memory: reserve on the
process whose AudioSocket port the PBX connects to.
"""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from common.errors import ApiError
from service.quotas import tenant_of
from telephony.state import TelephonyDep, authenticate

RESERVATION_TTL_S = 120.0
MAX_RESERVATIONS = 10_000
"""Reservations waiting at once (each is tiny; this only stops a runaway script)."""
MAX_PER_TENANT = 100
"""Reservations one tenant may have waiting: one tenant cannot take the whole process's."""


class TenantOverLimit(OverflowError):
    """A tenant has as many reservations waiting as it may."""


@dataclass(frozen=True)
class Reservation:
    tenant_id: str
    language: str | None
    expires_at: float


class Reservations:
    """Call UUIDs reserved by tenants, each usable once until it expires (thread-safe)."""

    def __init__(
        self,
        ttl_s: float = RESERVATION_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_per_tenant: int = MAX_PER_TENANT,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_per_tenant = max_per_tenant
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[str, Reservation] = {}

    def reserve(
        self, tenant_id: str, language: str | None = None, call_id: str | None = None
    ) -> str:
        """A new reservation (for `call_id` when given: an id the PBX made up itself);
        raises `ValueError` when that id is already reserved, `TenantOverLimit` or
        `OverflowError` when the tenant or the process has too many waiting."""
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            if len(self._waiting) >= MAX_RESERVATIONS:
                raise OverflowError("too many AudioSocket reservations are waiting")
            tenants = sum(1 for r in self._waiting.values() if r.tenant_id == tenant_id)
            if tenants >= self.max_per_tenant:
                raise TenantOverLimit(
                    f"tenant {tenant_id!r} has {tenants} AudioSocket reservations waiting, its "
                    f"limit (CALLSCRIBE_TENANT_MAX_RESERVATIONS); let some be used or expire"
                )
            call_id = call_id or str(uuid.uuid4())
            if call_id in self._waiting:
                raise ValueError(f"call {call_id} is already reserved")
            self._waiting[call_id] = Reservation(tenant_id, language, now + self.ttl_s)
        return call_id

    def take(self, call_id: str) -> Reservation | None:
        """The live reservation of `call_id`, which is used up; None if unknown or expired."""
        with self._lock:
            reservation = self._waiting.pop(call_id, None)
        if reservation is None or reservation.expires_at <= self._clock():
            return None
        return reservation

    def _drop_expired(self, now: float) -> None:
        for call_id in [c for c, r in self._waiting.items() if r.expires_at <= now]:
            del self._waiting[call_id]

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired(self._clock())
            return len(self._waiting)


class ReservationRequest(BaseModel):
    call_id: uuid.UUID | None = Field(
        None, description="Reserve this UUID (e.g. the dialplan's own); default: a new one"
    )
    language: str | None = Field(None, description="en, zh or auto (detect per segment)")
    tenant_id: str | None = Field(None, description="Admin keys only: the call's tenant")


class ReservationResponse(BaseModel):
    call_id: str
    """The UUID to pass to `AudioSocket(...)`; also the call's id."""
    expires_in: int
    """Seconds within which the AudioSocket connection must arrive."""


router = APIRouter(tags=["media streams"], dependencies=[Depends(authenticate)])


@router.post(
    "/v1/media-streams/audiosocket/reservations",
    response_model=ReservationResponse,
    status_code=201,
    summary="Reserve the UUID of an Asterisk AudioSocket call for the caller's tenant",
)
async def reserve_audiosocket_call(
    request: Request, state: TelephonyDep, body: ReservationRequest | None = None
) -> ReservationResponse:
    body = body or ReservationRequest()
    principal = request.state.principal
    tenant = tenant_of(principal)
    if tenant is None:
        tenant = body.tenant_id
        if tenant is None or not getattr(principal, "is_admin", False):
            raise ApiError(403, "tenant_required", "name the call's tenant (tenant_id)")
    elif body.tenant_id not in (None, tenant):
        raise ApiError(403, "forbidden", "a tenant key reserves calls for its own tenant only")
    language = state.rules.language(body.language)
    if not state.audiosocket.running:
        raise ApiError(503, "audiosocket_off", "this server runs no AudioSocket listener")
    reservations = state.reservations
    call_id = str(body.call_id) if body.call_id else None
    live = state.hub.calls.get(call_id) if call_id is not None else None
    if live is not None and live.tenant_id == tenant:
        raise ApiError(409, "call_in_progress", f"call {call_id} is in progress")
    if live is not None:  # another tenant's call: the answer of any id already taken
        raise ApiError(409, "already_reserved", f"call {call_id} is already reserved")
    try:
        call_id = reservations.reserve(tenant, language, call_id)
    except ValueError as exc:
        raise ApiError(409, "already_reserved", str(exc)) from None
    except TenantOverLimit as exc:
        raise ApiError(429, "too_many_reservations", str(exc)) from None
    except OverflowError as exc:
        raise ApiError(503, "too_many_reservations", str(exc)) from None
    return ReservationResponse(call_id=call_id, expires_in=round(reservations.ttl_s))
