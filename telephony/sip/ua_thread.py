"""The pjsua2 user agent server of one user-agent process (see `ua_process`). pjsua2 is not
thread-safe from Python, so one dedicated thread owns the `Endpoint` and makes every pjsua2
call: it polls `libHandleEvents`, answers INVITEs once they are admitted, hangs up silent
calls, and shuts down.

SIP reaches it on a loopback port, from the SIP front only; RTP on `AgentConfig.host`, in the
process's own port range. Admission and release are behind `Bridge` (the serve process); this
thread never waits on it. Frames arrive on pjmedia's own clock thread (see `media.FrameTap`).
"""

import concurrent.futures
import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import pjsua2 as pj

from telephony.refusal import CallRefused
from telephony.sip.config import PJSUA_MAX_CALLS, AgentConfig
from telephony.sip.invite import BadInvite, Invite, parse_invite
from telephony.sip.media import CLOCK_RATE, FrameTap, frame_format
from telephony.sip.message import reason_phrase

logger = logging.getLogger(__name__)

POLL_MS = 10
"""How long one poll may wait while calls are up: an admitted call is answered within it."""
IDLE_POLL_MS = 100
"""The same with no call: a packet ends the wait at once, so only the idle CPU changes (a
tenth of the wake-ups; the gateway runs a process per 4 calls)."""
_DROPPED_REFS = 3
"""References to a dropped object while `_free_dropped` looks at it: the list, the
comprehension's variable and `sys.getrefcount`'s argument."""
LOOPBACK = "127.0.0.1"
CODECS = ("PCMU/8000", "PCMA/8000", "L16/16000/1", "L16/8000/1", "opus/48000")
"""Offered in this order; the build's others (speex, iLBC, GSM, G.722) are turned off."""


class Session(Protocol):
    """The call an admitted dialog feeds."""

    id: str

    def feed(self, leg: str, data: bytes) -> None: ...


class Bridge(Protocol):
    """What the user agent asks of the serve process (both return at once)."""

    def admit(self, invite: Invite) -> concurrent.futures.Future[Session]: ...

    def release(self, session: Session, reason: str) -> None: ...


@dataclass
class _Answer:
    status: int
    reason: str = ""
    retry_after_s: int | None = None


class _Call(pj.Call):
    def __init__(self, agent: "UserAgent", account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.agent = agent
        self.invite: Invite | None = None
        self.admission: concurrent.futures.Future[Session] | None = None
        self.deadline = 0.0
        self.refusal: _Answer | None = None
        self.session: Session | None = None
        self.tap: FrameTap | None = None
        self.media_index = -1
        self.rx_packets = 0
        self.last_rx = 0.0
        self.end_reason = "hangup"
        self.disconnected = False

    # pjsua calls these with its locks held: an exception escaping into it would leave them
    # held and the whole user agent stuck, so every callback catches and logs its own.

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        with _contained("call state"):
            if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.agent.disconnected(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        with _contained("call media"):
            self.agent.media_changed(self)


class _Account(pj.Account):
    def __init__(self, agent: "UserAgent") -> None:
        super().__init__()
        self.agent = agent

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        with _contained("incoming call"):
            self.agent.incoming(self, prm)


class _LogWriter(pj.LogWriter):
    """pjsip's warnings and errors into Python logging."""

    def write(self, entry: pj.LogEntry) -> None:
        with _contained("log"):
            level = logging.ERROR if entry.level <= 1 else logging.WARNING
            logger.log(level, "pjsip: %s", entry.msg.strip())


@contextlib.contextmanager
def _contained(what: str):
    try:
        yield
    except Exception:
        logger.exception("SIP %s callback failed", what)


class UserAgent:
    def __init__(self, config: AgentConfig, bridge: Bridge) -> None:
        self.config = config
        self.bridge = bridge
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.port = 0
        """The loopback SIP port it listens on (any free one), once `ready`."""
        self._stop = threading.Event()
        self._calls: dict[int, _Call] = {}
        self._dropped: list[_Call] = []
        """Ended calls, freed by `_free_dropped` on this thread."""
        self._taps: list[FrameTap] = []
        self._idle_taps: list[FrameTap] = []
        self._next_check = 0.0
        self._next_collection = 0.0

    def stop(self) -> None:
        self._stop.set()

    # -- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        """The thread's body: start, poll until `stop()`, shut down."""
        endpoint = pj.Endpoint()
        writer = _LogWriter()
        account = None
        try:
            endpoint.libCreate()
            self._start(endpoint, writer)
            account = self._account()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            self._destroy(endpoint, account)
            return
        self.ready.set()
        try:
            while not self._stop.is_set():
                try:
                    endpoint.libHandleEvents(POLL_MS if self._calls else IDLE_POLL_MS)
                    self._tick()
                except Exception:  # one call's trouble must not stop the others' signalling
                    logger.exception("SIP user agent error; going on")
                    time.sleep(POLL_MS / 1000)
        finally:
            self._hang_up_all(endpoint)
            self._destroy(endpoint, account)
            del writer

    def _start(self, endpoint: pj.Endpoint, writer: _LogWriter) -> None:
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0  # this thread polls
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = PJSUA_MAX_CALLS
        config.uaConfig.userAgent = "callscribe"
        config.medConfig.clockRate = CLOCK_RATE
        config.medConfig.sndClockRate = CLOCK_RATE
        config.medConfig.noVad = True
        config.logConfig.writer = writer
        config.logConfig.level = 2
        config.logConfig.consoleLevel = 2
        config.logConfig.msgLogging = 0
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()  # no sound card: the conference bridge runs alone
        self._set_codecs(endpoint)
        transport = pj.TransportConfig()  # port 0: any free one
        transport.boundAddress = transport.publicAddress = LOOPBACK
        created = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.port = int(endpoint.transportGetInfo(created).localName.rsplit(":", 1)[1])
        endpoint.libStart()

    def _set_codecs(self, endpoint: pj.Endpoint) -> None:
        wanted = {name.lower(): len(CODECS) - i for i, name in enumerate(CODECS)}
        for codec in endpoint.codecEnum2():
            key = next((w for w in wanted if codec.codecId.lower().startswith(w)), None)
            endpoint.codecSetPriority(codec.codecId, 200 + wanted[key] if key else 0)

    def _account(self) -> _Account:
        config = pj.AccountConfig()
        config.idUri = f"sip:callscribe@{LOOPBACK}:{self.port}"
        media = config.mediaConfig.transportConfig
        media.boundAddress = media.publicAddress = self.config.host
        media.port = self.config.rtp_port_min
        media.portRange = self.config.rtp_port_max - self.config.rtp_port_min
        account = _Account(self)
        account.create(config, True)
        return account

    def _hang_up_all(self, endpoint: pj.Endpoint) -> None:
        for call in self._calls.values():
            call.end_reason = "shutdown"
        endpoint.hangupAllCalls()
        deadline = time.monotonic() + 2.0
        while self._calls and time.monotonic() < deadline:
            endpoint.libHandleEvents(POLL_MS)
            self._tick()
        for call in list(self._calls.values()):  # never disconnected: release them anyway
            self.disconnected(call)
        self._tick()

    def _destroy(self, endpoint: pj.Endpoint, account: _Account | None) -> None:
        """Every Call and port must be gone before libDestroy, or pjsua asserts at exit."""
        self._calls.clear()
        self._dropped.clear()
        if self._taps:  # stop the bridge's clock first: then no frame can reach a freed port
            endpoint.audDevManager().setNoDev()
        self._taps.clear()
        self._idle_taps.clear()
        gc.collect()
        if account is not None:
            account.shutdown()
        del account
        gc.collect()
        try:
            endpoint.libDestroy()
        except pj.Error as exc:
            logger.warning("pjsua shutdown: %s", exc.info())

    # -- callbacks (this thread, inside libHandleEvents) ---------------------------------------

    def incoming(self, account: _Account, prm: pj.OnIncomingCallParam) -> None:
        call = _Call(self, account, prm.callId)
        self._calls[prm.callId] = call
        if prm.rdata.srcAddress != self.config.relay:  # only the front says who is calling
            call.refusal = _Answer(403, "call the gateway's public SIP port")
            return
        try:
            call.invite = parse_invite(prm.rdata.wholeMsg)
        except BadInvite as exc:
            call.refusal = _Answer(400, str(exc))
            return
        call.admission = self.bridge.admit(call.invite)
        call.deadline = time.monotonic() + self.config.admit_timeout_s

    def media_changed(self, call: _Call) -> None:
        if call.session is None or call.disconnected:
            return
        info = call.getInfo()  # keep it: its media vector dies with it (SWIG)
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or (media.status != pj.PJSUA_CALL_MEDIA_ACTIVE):
                continue
            if call.tap is None:
                assert call.invite is not None
                call.tap = self._tap(partial(call.session.feed, call.invite.leg))
            call.getAudioMedia(media.index).startTransmit(call.tap)
            call.media_index = media.index
            call.last_rx = time.monotonic()
            return

    def disconnected(self, call: _Call) -> None:
        if call.disconnected:
            return
        call.disconnected = True
        self._calls.pop(call.getId(), None)
        self._dropped.append(call)
        if call.tap is not None:  # the call's media is gone with it: the port is free again
            call.tap.feed = None
            self._idle_taps.append(call.tap)
            call.tap = None
        if call.session is not None:
            self.bridge.release(call.session, call.end_reason)
        elif call.admission is not None:  # hung up while waiting: release what comes
            call.admission.add_done_callback(self._release_late)

    def _release_late(self, admission: concurrent.futures.Future) -> None:
        if not admission.cancelled() and admission.exception() is None:
            self.bridge.release(admission.result(), "cancelled")

    # -- between polls --------------------------------------------------------------------------

    def _tick(self) -> None:
        self._free_dropped()
        for call in list(self._calls.values()):
            if call.refusal is not None:
                self._refuse(call, call.refusal)
            elif call.admission is not None:
                self._decide(call)
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + 1.0
            self._check_silence(now)

    def _tap(self, feed: Callable[[bytes], None]) -> FrameTap:
        """An audio port for a call: an idle one, or a new one while none is idle.

        Ports are reused, never destroyed while pjsua runs: the conference bridge removes a
        port on its own clock thread some time after it is asked to, while pjsua2 frees the
        port's memory at once, so destroying one during a call can crash the bridge."""
        if self._idle_taps:
            tap = self._idle_taps.pop()
        else:
            tap = FrameTap(None)
            tap.createPort(f"tap{len(self._taps)}", frame_format())
            self._taps.append(tap)
        tap.feed = feed
        return tap

    def _free_dropped(self) -> None:
        """Free ended calls here, on this thread, and nowhere else.

        Python's cycle collector runs on whichever thread happens to allocate (a database
        thread, a decode worker), and a pjsua2 object freed there calls pjlib from a thread it
        does not know, which aborts the process ("Calling pjlib from unknown/external
        thread"), or races this thread inside pjsua. So an object is let go only when this
        list holds its last reference. One still held elsewhere (by a reference cycle: an
        exception's traceback is enough) waits, and a collection run here frees the cycle
        around it, never the object itself.
        """
        held = [item for item in self._dropped if sys.getrefcount(item) > _DROPPED_REFS]
        self._dropped = held  # the rest are freed now, by this assignment
        now = time.monotonic()
        if held and now >= self._next_collection:
            self._next_collection = now + 1.0
            gc.collect()

    def _decide(self, call: _Call) -> None:
        admission = call.admission
        assert admission is not None
        if not admission.done():
            if time.monotonic() > call.deadline and admission.cancel():
                call.admission = None
                self._refuse(call, _Answer(503, "admission timed out", 5))
            return
        call.admission = None
        # exception() rather than result(): re-raising here would put this frame (and `call`)
        # into the stored exception's traceback, a reference cycle (see `_free_dropped`).
        error = admission.exception()
        if isinstance(error, CallRefused):
            self._refuse(call, _Answer(error.status, error.reason, error.retry_after_s))
            return
        if error is not None:
            logger.error("SIP call admission failed", exc_info=error)
            self._refuse(call, _Answer(500, type(error).__name__))
            return
        call.session = admission.result()
        param = pj.CallOpParam()
        param.statusCode = 200
        try:
            call.answer(param)
        except pj.Error as exc:
            logger.warning("answering a SIP call failed: %s", exc.info())
            self.disconnected(call)

    def _refuse(self, call: _Call, answer: _Answer) -> None:
        call.refusal = None
        param = pj.CallOpParam()
        param.statusCode = answer.status
        param.reason = reason_phrase(answer.reason)
        if answer.retry_after_s:
            header = pj.SipHeader()
            header.hName, header.hValue = "Retry-After", str(answer.retry_after_s)
            param.txOption.headers.append(header)
        logger.info("SIP call refused", extra={"status": answer.status, "reason": answer.reason})
        try:
            call.hangup(param)
        except pj.Error as exc:
            logger.warning("refusing a SIP call failed: %s", exc.info())
            self.disconnected(call)

    def _check_silence(self, now: float) -> None:
        """Hang up answered calls that received no RTP for `rtp_timeout_s` (a caller that
        vanished without a BYE). Packets, not frames: the bridge makes frames regardless."""
        for call in list(self._calls.values()):
            if call.media_index < 0 or call.disconnected:
                continue
            try:
                packets = call.getStreamStat(call.media_index).rtcp.rxStat.pkt
            except pj.Error:
                continue
            if packets != call.rx_packets:
                call.rx_packets, call.last_rx = packets, now
            elif now - call.last_rx > self.config.rtp_timeout_s:
                call.end_reason = "timeout"
                session = call.session.id if call.session else None
                logger.info("SIP call without RTP: hanging up", extra={"call": session})
                try:
                    call.hangup(pj.CallOpParam())
                except pj.Error:
                    self.disconnected(call)
