"""SIP gateway: a pjsua2 user agent server that answers calls and feeds their audio to
`CallSession`s (see `gateway.SipGateway`)."""

from telephony.sip.config import AllowList, SipConfig
from telephony.sip.gateway import SipGateway

__all__ = ["AllowList", "SipConfig", "SipGateway"]
