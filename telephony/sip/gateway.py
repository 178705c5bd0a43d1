"""`SipGateway`: the app's SIP front door, a background service (started after the call hub,
stopped before it).

The pjsua2 wheel answers at most 4 calls per process (`PJSUA_MAX_CALLS`), so the gateway is
one public SIP port (UDP and TCP, `front.SipFront`) before `SipConfig.agents` user-agent
processes (`ua_pool.AgentProcess`), each answering up to 4 dialogs on loopback and taking RTP
directly in its own slice of the port range. Admission, the calls, their recognisers and
storage stay here, on the event loop, as for every other gateway.
"""

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from telephony.sip.admission import Admission
from telephony.sip.config import SipConfig
from telephony.sip.front import SipFront
from telephony.sip.ua_pool import AgentProcess

if TYPE_CHECKING:
    from telephony.hub import CallHub

logger = logging.getLogger(__name__)

ENDING_TIMEOUT_S = 30.0


class SipGateway:
    def __init__(
        self, hub: "CallHub", database: Engine, config: SipConfig, log_format: str = "text"
    ) -> None:
        self.config = config
        self.admission = Admission(hub, database, config.allow)
        self.front = SipFront(config)
        self.agents = [
            AgentProcess(i, config, self.admission, self.front, log_format)
            for i in range(config.agents)
        ]

    async def start(self) -> None:
        try:
            await self.front.start()
        except OSError as exc:
            await self.front.stop()
            raise RuntimeError(f"the SIP gateway could not listen: {exc}") from exc
        started = await asyncio.gather(
            *(agent.start() for agent in self.agents), return_exceptions=True
        )
        failed = [result for result in started if isinstance(result, BaseException)]
        if failed:
            await self.stop()
            raise RuntimeError(f"the SIP gateway could not start: {failed[0]}")
        logger.info(
            "SIP gateway listening",
            extra={
                "host": self.config.host,
                "udp": self.front.udp_port,
                "tcp": self.front.tcp_port,
                "user_agents": len(self.agents),
            },
        )

    async def stop(self) -> None:
        """Hang up every call (each ends with its last finals stored), then stop the user
        agents and the front (which routes their BYEs until then)."""
        self.front.draining = True
        await asyncio.gather(*(agent.stop() for agent in self.agents))
        endings = [ending for agent in self.agents for ending in agent.endings]
        if endings:
            await asyncio.wait(endings, timeout=ENDING_TIMEOUT_S)
        await self.front.stop()
