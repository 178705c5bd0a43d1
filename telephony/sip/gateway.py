"""`SipGateway`: the app's SIP front door, a background service (started after the call hub,
stopped before it) that runs the pjsua2 user agent in its own thread and bridges it to the
event loop, where calls are admitted, fed and ended."""

import asyncio
import concurrent.futures
import logging
import threading

from telephony.session import CallSession
from telephony.sip.admission import Admission
from telephony.sip.config import SipConfig
from telephony.sip.invite import Invite
from telephony.sip.useragent import UserAgent

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0


class SipGateway:
    def __init__(self, app_state, config: SipConfig) -> None:
        self.config = config
        self.admission = Admission(app_state, config.allow)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._agent: UserAgent | None = None
        self._thread: threading.Thread | None = None
        self._endings: set[concurrent.futures.Future] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._agent = UserAgent(self.config, self)
        self._thread = threading.Thread(target=self._agent.run, name="sip-ua", daemon=True)
        self._thread.start()
        if not await asyncio.to_thread(self._agent.ready.wait, START_TIMEOUT_S):
            raise RuntimeError("the SIP user agent did not start in time")
        if self._agent.error is not None:
            await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_S)
            raise RuntimeError(f"the SIP gateway could not start: {self._agent.error}")
        tcp = self.config.tcp_port or self.config.port
        logger.info(
            "SIP gateway listening",
            extra={"host": self.config.host, "udp": self.config.port, "tcp": tcp},
        )

    async def stop(self) -> None:
        """Hang up every call (each ends with its last finals stored), then shut pjsua down."""
        if self._agent is None or self._thread is None:
            return
        self._agent.stop()
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_S)
        if self._endings:
            await asyncio.wait([asyncio.wrap_future(f) for f in self._endings], timeout=30)
        self._agent = self._thread = None

    # -- Bridge: called from the user agent's thread ---------------------------------------------

    def admit(self, invite: Invite) -> concurrent.futures.Future[CallSession]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(self.admission.admit(invite), self._loop)

    def release(self, session: CallSession, reason: str) -> None:
        assert self._loop is not None
        ending = asyncio.run_coroutine_threadsafe(
            self.admission.release(session, reason), self._loop
        )
        self._endings.add(ending)
        ending.add_done_callback(self._ended)

    def _ended(self, ending: concurrent.futures.Future) -> None:
        self._endings.discard(ending)
        if not ending.cancelled() and ending.exception() is not None:
            logger.error("ending a SIP call failed", exc_info=ending.exception())
