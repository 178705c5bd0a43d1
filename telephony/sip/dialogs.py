"""The SIP front's only state: which user-agent process holds each dialog, by Call-ID, and how
its caller is reached. Entries go when the dialog ends (BYE answered, INVITE refused, the
process reports the call over, or lost), after a short linger for retransmissions."""

from dataclasses import dataclass

from telephony.sip.message import Message

LINGER_S = 32.0
"""64 x T1: an ended dialog's last retransmissions (BYE, a refused INVITE's) still reach the
process that answers them."""
EARLY_S = 64.0
"""An INVITE that got no final answer by then (the process hung, the caller left) is
forgotten."""


@dataclass(frozen=True)
class Flow:
    """Where a message came from, and so where the front's answer goes: a UDP address, a TCP
    connection (by id) and its peer, or (LOOP) a user agent on the front's loopback port."""

    transport: str
    """'UDP', 'TCP' or 'LOOP'."""
    address: tuple[str, int]
    connection: int | None = None


@dataclass
class Dialog:
    call_id: str
    agent: int
    caller: Flow
    invite: Message
    """The caller's INVITE as it arrived: the front answers it, or hangs up on its caller,
    when the process holding the dialog is lost."""
    started: float
    answered_to: str | None = None
    """The To header of the 2xx (with the user agent's tag): the dialog is confirmed."""
    agent_cseq: int = 0
    """The highest CSeq the user agent has sent in this dialog."""
    ended_at: float | None = None


class Dialogs:
    def __init__(self, agents: int, per_agent: int) -> None:
        self.per_agent = per_agent
        self.load = [0] * agents
        """Live dialogs per process (ended ones that linger do not count)."""
        self._dialogs: dict[str, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def find(self, call_id: str) -> Dialog | None:
        return self._dialogs.get(call_id)

    def place(
        self, call_id: str, caller: Flow, invite: Message, up: list[int], now: float
    ) -> Dialog | None:
        """A new dialog on the least busy process of `up`; None when every one is full."""
        free = [i for i in up if self.load[i] < self.per_agent]
        if not free:
            return None
        agent = min(free, key=lambda i: (self.load[i], i))
        self.load[agent] += 1
        dialog = Dialog(call_id, agent, caller, invite, now)
        self._dialogs[call_id] = dialog
        return dialog

    def end(self, call_id: str, now: float) -> None:
        dialog = self._dialogs.get(call_id)
        if dialog is not None and dialog.ended_at is None:
            dialog.ended_at = now
            self.load[dialog.agent] -= 1

    def lose(self, agent: int) -> list[Dialog]:
        """Forget every dialog of a process that is gone; the live ones are returned."""
        lost = [d for d in self._dialogs.values() if d.agent == agent]
        for dialog in lost:
            del self._dialogs[dialog.call_id]
        self.load[agent] = 0
        return [d for d in lost if d.ended_at is None]

    def sweep(self, now: float) -> None:
        for dialog in list(self._dialogs.values()):
            if dialog.ended_at is None and dialog.answered_to is None:
                if now - dialog.started > EARLY_S:
                    self.end(dialog.call_id, now)
            elif dialog.ended_at is not None and now - dialog.ended_at > LINGER_S:
                del self._dialogs[dialog.call_id]
