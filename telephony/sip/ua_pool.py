"""The SIP gateway's user-agent processes, seen from the serve process.

`AgentProcess` starts one (`python -m telephony.sip.ua_process`, see there) and serves its link:
admits the INVITEs it forwards (`Admission`, on this event loop, as every other gateway's
calls), feeds each admitted dialog's frames to its `CallSession`, and ends the call when the
process releases the dialog. When the process dies, its calls end ("interrupted", their last
finals kept), the front hangs up their callers, and the process is started again; the other
processes and their calls are not touched.
"""

import asyncio
import contextlib
import json
import logging
import socket
import sys
from dataclasses import asdict, dataclass

from telephony.refusal import CallRefused
from telephony.session import CallSession
from telephony.sip import ipc
from telephony.sip.admission import Admission
from telephony.sip.config import SipConfig
from telephony.sip.front import SipFront
from telephony.sip.invite import Invite

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0
"""How long a stopping process may take to hang up its calls before it is killed."""
RESTART_DELAY_S = 1.0


@dataclass
class _Dialog:
    session: CallSession
    leg: str
    sip_call_id: str


class AgentProcess:
    def __init__(
        self,
        index: int,
        config: SipConfig,
        admission: Admission,
        front: SipFront,
        log_format: str,
    ) -> None:
        self.index = index
        self.config = config
        self.admission = admission
        self.front = front
        self.log_format = log_format
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._admitting: dict[int, asyncio.Task] = {}
        self._dialogs: dict[int, _Dialog] = {}
        self.endings: set[asyncio.Task] = set()
        """Calls being ended (their last finals decoded and stored)."""
        self._supervisor: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Have the process hang up its calls and exit (killed if it does not in time)."""
        self._stopping = True
        self._tell(ipc.STOP, 0)
        if self._supervisor is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._supervisor), STOP_TIMEOUT_S)
        except TimeoutError:
            logger.warning("SIP user agent %d did not stop in time: killed", self.index)
            self._kill()
            await self._supervisor

    # -- the process ----------------------------------------------------------------------------

    async def _spawn(self) -> None:
        settings = {
            "agent": asdict(self.config.agent(self.index, self.front.relay)),
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            "log_format": self.log_format,
        }
        ours, theirs = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "telephony.sip.ua_process",
                str(theirs.fileno()),
                json.dumps(settings),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,  # only pjlib's start-up chatter; logs: stderr
            )
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        try:
            ready = await asyncio.wait_for(ipc.receive(self._reader), START_TIMEOUT_S)
        except TimeoutError:
            ready = None
        if ready is None or ready[0] != ipc.READY:
            self._writer.close()
            self._kill()
            code = await self.process.wait()
            raise RuntimeError(f"SIP user agent {self.index} did not start (exit code {code})")
        port = json.loads(ready[2])["port"]
        self.front.agent_up(self.index, port)
        logger.info(
            "SIP user agent started",
            extra={"agent": self.index, "pid": self.process.pid, "sip_port": port},
        )

    async def _supervise(self) -> None:
        while True:
            await self._serve()
            await self._lost()
            if self._stopping:
                return
            code = self.process.returncode if self.process else None
            logger.error(
                "SIP user agent %d exited (code %s): its calls ended; starting it again",
                self.index,
                code,
            )
            if not await self._restart():
                return

    async def _serve(self) -> None:
        """The link's messages, until it closes."""
        assert self._reader is not None
        while (message := await ipc.receive(self._reader)) is not None:
            try:
                self._handle(*message)
            except Exception:
                logger.exception("SIP user agent %d: a message failed", self.index)

    async def _restart(self) -> bool:
        """False if the gateway stops first."""
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY_S)
            try:
                await self._spawn()
            except Exception:
                logger.exception("SIP user agent %d: restart failed", self.index)
                continue
            if self._stopping:  # stop() came while it started
                self._tell(ipc.STOP, 0)
            return True
        return False

    async def _lost(self) -> None:
        """The link closed: the process exited, or is about to."""
        self.front.agent_down(self.index)
        for task in list(self._admitting.values()):
            task.cancel()
        reason = "shutdown" if self._stopping else "interrupted"
        for handle in list(self._dialogs):
            self._release(handle, reason)
        if self._writer is not None:
            self._writer.close()
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self._kill()
                await self.process.wait()

    def _kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    # -- the link -------------------------------------------------------------------------------

    def _handle(self, kind: bytes, handle: int, payload: bytes) -> None:
        if kind == ipc.FRAME:
            dialog = self._dialogs.get(handle)
            if dialog is not None:
                dialog.session.feed(dialog.leg, payload)
        elif kind == ipc.ADMIT:
            task = asyncio.create_task(self._admit(handle, Invite(**json.loads(payload))))
            self._admitting[handle] = task
            task.add_done_callback(lambda _: self._admitting.pop(handle, None))
        elif kind == ipc.RELEASE:
            self._release(handle, payload.decode(errors="replace"))
        elif kind == ipc.CANCEL:
            admitting = self._admitting.pop(handle, None)
            if admitting is not None:
                admitting.cancel()
            else:
                self._release(handle, "cancelled")

    async def _admit(self, handle: int, invite: Invite) -> None:
        try:
            session = await self.admission.admit(invite)
        except CallRefused as refusal:
            answer = {
                "status": refusal.status,
                "reason": refusal.reason,
                "retry_after_s": refusal.retry_after_s,
            }
            self._tell(ipc.REFUSED, handle, answer)
            return
        except Exception as error:
            logger.exception("SIP call admission failed")
            self._tell(ipc.REFUSED, handle, {"status": 500, "reason": type(error).__name__})
            return
        self._dialogs[handle] = _Dialog(session, invite.leg, invite.dialog)
        if not self._tell(ipc.ADMITTED, handle, {"id": session.id}):
            self._release(handle, "interrupted")

    def _release(self, handle: int, reason: str) -> None:
        dialog = self._dialogs.pop(handle, None)
        if dialog is None:
            return
        self.front.dialog_ended(dialog.sip_call_id)
        ending = asyncio.create_task(self.admission.release(dialog.session, reason))
        self.endings.add(ending)
        ending.add_done_callback(self._ended)

    def _ended(self, ending: asyncio.Task) -> None:
        self.endings.discard(ending)
        if not ending.cancelled() and ending.exception() is not None:
            logger.error("ending a SIP call failed", exc_info=ending.exception())

    def _tell(self, kind: bytes, handle: int, answer: dict | None = None) -> bool:
        """False when the process is gone."""
        if self._writer is None or self._writer.is_closing():
            return False
        self._writer.write(
            ipc.pack_json(kind, handle, answer) if answer else ipc.pack(kind, handle)
        )
        return True
