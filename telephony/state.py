"""What the telephony routes share, typed: the call hub, the caller check and the gateways'
own state. The composition root builds one per app and provides it through the
`telephony_state` dependency."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from common.rules import RequestRules
from service.auth import identify
from service.config import Authenticator

if TYPE_CHECKING:
    from telephony.adapters.audiosocket import AudioSocketServer
    from telephony.adapters.reservations import Reservations
    from telephony.hub import CallHub
    from telephony.webrtc.gateway import WebrtcGateway


@dataclass
class TelephonyState:
    hub: "CallHub"
    authenticate: Authenticator | None
    """Who is calling (the ASR service's hook: tenant keys and stream tokens)."""
    webrtc: "WebrtcGateway"
    audiosocket: "AudioSocketServer"
    reservations: "Reservations"

    @property
    def rules(self) -> RequestRules:
        return self.hub.rules


def telephony_state() -> TelephonyState:
    """Provided by the composition root (`callscribe.server`)."""
    raise RuntimeError("the telephony routes need their TelephonyState: provide telephony_state")


TelephonyDep = Annotated[TelephonyState, Depends(telephony_state)]


async def authenticate(connection: HTTPConnection, state: TelephonyDep) -> object:
    """Who is calling, as a route dependency (see `service.auth.identify`)."""
    return await identify(connection, state.authenticate)
