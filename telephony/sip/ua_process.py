"""One user-agent process of the SIP gateway: `python -m telephony.sip.ua_process FD SETTINGS`,
started by the serve process (`ua_pool.AgentProcess`) with its end of a socket pair as FD.

It runs the pjsua2 `UserAgent` (at most `PJSUA_MAX_CALLS` dialogs: pjsua's per-process limit),
and `Link` is its `Bridge`: admissions, frames and releases go over the socket to the serve
process, where admission, the calls, recognisers and storage live. It imports none of those,
so it starts in a fraction of a second. It stops when told to, on SIGTERM, or when the serve
process is gone (the socket closes), hanging up its calls first.
"""

import concurrent.futures
import contextlib
import itertools
import json
import logging
import queue
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from functools import partial

from common.logs import configure_logging
from telephony.refusal import CallRefused
from telephony.sip import ipc
from telephony.sip.config import AgentConfig
from telephony.sip.invite import Invite
from telephony.sip.ua_thread import UserAgent

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 5.0


class RemoteCall:
    """An admitted dialog's call, which lives in the serve process."""

    def __init__(self, link: "Link", handle: int, call_id: str) -> None:
        self.link = link
        self.handle = handle
        self.id = call_id

    def feed(self, leg: str, data: bytes) -> None:
        """On pjmedia's clock thread: queued, never blocks (the serve process knows the leg)."""
        self.link.send(ipc.pack(ipc.FRAME, self.handle, data))


class Link:
    """The `Bridge` over the socket. One thread writes whatever is queued (frames from the
    clock thread, requests from the user agent's), one reads the serve process's answers."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending: dict[int, concurrent.futures.Future] = {}
        self._handles = itertools.count(1)
        self._writer = threading.Thread(target=self._write, name="link-out", daemon=True)

    def start(self, on_close: Callable[[], None]) -> None:
        self._writer.start()
        reader = threading.Thread(target=self._read, args=(on_close,), name="link-in", daemon=True)
        reader.start()

    def send(self, data: bytes) -> None:
        self._out.put(data)

    def close(self) -> None:
        """Send what is queued (the last releases), then close."""
        self._out.put(None)
        self._writer.join(FLUSH_TIMEOUT_S)
        self._sock.close()

    # -- Bridge ---------------------------------------------------------------------------------

    def admit(self, invite: Invite) -> concurrent.futures.Future[RemoteCall]:
        handle = next(self._handles)
        admission: concurrent.futures.Future[RemoteCall] = concurrent.futures.Future()
        self._pending[handle] = admission
        admission.add_done_callback(partial(self._settled, handle))
        self.send(ipc.pack_json(ipc.ADMIT, handle, asdict(invite)))
        return admission

    def release(self, session: RemoteCall, reason: str) -> None:
        self.send(ipc.pack(ipc.RELEASE, session.handle, reason.encode()))

    def _settled(self, handle: int, admission: concurrent.futures.Future) -> None:
        self._pending.pop(handle, None)
        if admission.cancelled():  # the user agent gave up: the serve process releases it
            self.send(ipc.pack(ipc.CANCEL, handle))

    # -- threads --------------------------------------------------------------------------------

    def _write(self) -> None:
        """Until `close()`: what is queued, many frames per system call."""
        done = False
        while not done:
            batch = [self._out.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 64 and batch[-1] is not None:
                    batch.append(self._out.get_nowait())
            done = batch[-1] is None
            try:
                self._sock.sendall(b"".join(item for item in batch if item is not None))
            except OSError:
                return

    def _read(self, on_close: Callable[[], None]) -> None:
        try:
            while (message := ipc.read(self._sock)) is not None:
                kind, handle, payload = message
                if kind == ipc.STOP:
                    break
                admission = self._pending.get(handle)
                if admission is None:
                    continue
                answer = json.loads(payload)
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    if kind == ipc.ADMITTED:
                        admission.set_result(RemoteCall(self, handle, answer["id"]))
                    elif kind == ipc.REFUSED:
                        refusal = CallRefused(
                            answer["reason"], answer["status"], answer.get("retry_after_s")
                        )
                        admission.set_exception(refusal)
        except (OSError, ipc.LinkError):
            pass
        on_close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the
    # serve process stops the gateway, and this process with it
    settings = json.loads(argv[2])
    configure_logging(settings["log_level"], settings["log_format"])
    link = Link(socket.socket(fileno=int(argv[1])))
    agent = UserAgent(AgentConfig(**settings["agent"]), link)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    link.start(on_close=agent.stop)
    thread = threading.Thread(target=agent.run, name="sip-ua", daemon=True)
    thread.start()
    if not agent.ready.wait(START_TIMEOUT_S) or agent.error is not None:
        logger.error("SIP user agent could not start: %s", agent.error or "timed out")
        link.close()
        return 1
    link.send(ipc.pack_json(ipc.READY, 0, {"port": agent.port}))
    while thread.is_alive():
        thread.join(0.5)
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
