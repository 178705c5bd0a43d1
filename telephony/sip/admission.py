"""Who may place a call, and which `CallSession` an answered INVITE feeds. Runs on the app's
event loop: the pjsua2 thread never waits on the database."""

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.auth import principal_for
from admin_api.crud import calls
from asr_core.audio import RawFormat
from common.errors import Unauthorized
from telephony.refusal import CallRefused
from telephony.session import CallSession
from telephony.sip.config import AllowList
from telephony.sip.invite import Invite

if TYPE_CHECKING:
    from telephony.hub import CallHub

FRAME_FORMAT = RawFormat("pcm_s16le", 16_000)
"""What the media port hands over: pjmedia's bridge resamples every codec to it."""


@dataclass
class _Dialogs:
    session: CallSession
    count: int


class Admission:
    """Checks an INVITE's tenant and credentials, opens (or joins, by X-Callscribe-Call-Id)
    the call, and ends it when its last SIP dialog is gone."""

    def __init__(self, hub: "CallHub", database: Engine, allow: AllowList) -> None:
        self.hub = hub
        self.database = database
        self.allow = allow
        self._calls: dict[str, _Dialogs] = {}
        self._shared = asyncio.Lock()

    async def admit(self, invite: Invite) -> CallSession:
        """The session the dialog's audio goes to (leg `invite.leg`); raises `CallRefused`."""
        if not invite.tenant_id:
            raise CallRefused("no tenant: put it in the request URI or X-Callscribe-Tenant", 404)
        await asyncio.to_thread(self._authorize, invite)
        if invite.call_id is None:
            return await self._open(invite)
        async with self._shared:  # two legs of one call may arrive together
            joined = self._calls.get(invite.call_id)
            if joined is None:
                return await self._open(invite)
            session = joined.session
            if session.tenant_id != invite.tenant_id:
                raise CallRefused(f"call {invite.call_id} is already in progress", 486)
            if invite.leg in session.legs or session.ended:
                raise CallRefused(f"call {invite.call_id} already has leg {invite.leg}", 486)
            session.add_leg(invite.leg, FRAME_FORMAT)
            joined.count += 1
            return session

    async def _open(self, invite: Invite) -> CallSession:
        session = await self.hub.open_call(invite.tenant_id, source="sip", call_id=invite.call_id)
        session.add_leg(invite.leg, FRAME_FORMAT)
        self._calls[session.id] = _Dialogs(session, 1)
        return session

    async def release(self, session: CallSession, reason: str) -> None:
        """One dialog of `session` ended; the call ends with its last one."""
        dialogs = self._calls.get(session.id)
        if dialogs is not None:
            dialogs.count -= 1
            if dialogs.count > 0:
                return
            del self._calls[session.id]
        await session.end(reason)

    def _authorize(self, invite: Invite) -> None:
        """404 for an unknown tenant; 403 unless the source is allowed or the key is the
        tenant's own (admin keys do not place calls: a call always belongs to a tenant)."""
        tenant_id = invite.tenant_id
        with Session(self.database) as db:
            if not calls.tenant_exists(db, tenant_id):
                raise CallRefused(f"no tenant {tenant_id!r}", 404)
            if self.allow.allows(tenant_id, invite.source_ip):
                return
            if not invite.key:
                raise CallRefused("X-Callscribe-Key is required from this address", 403)
            try:
                principal = principal_for(db, invite.key)
            except Unauthorized:
                raise CallRefused("the X-Callscribe-Key is not valid", 403) from None
        if principal.tenant_id != tenant_id:
            raise CallRefused(f"the key is not a key of tenant {tenant_id!r}", 403)
