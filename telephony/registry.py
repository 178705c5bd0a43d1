"""The calls active in this process, by id; each counted in the `call-<source>` active-streams
gauge while it is here."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import Gauge

if TYPE_CHECKING:
    from telephony.session import CallSession


class CallRegistry:
    def __init__(self, active: Gauge | None = None) -> None:
        self._calls: dict[str, CallSession] = {}
        self._active = active
        """Labelled by `protocol` (the gauge of live streams, shared with the ASR service)."""

    def add(self, session: "CallSession") -> None:
        if session.id in self._calls:
            raise ValueError(f"call {session.id} is already registered")
        self._calls[session.id] = session
        if self._active is not None:
            self._active.labels(protocol=f"call-{session.source}").inc()

    def remove(self, call_id: str) -> "CallSession | None":
        session = self._calls.pop(call_id, None)
        if session is not None and self._active is not None:
            self._active.labels(protocol=f"call-{session.source}").dec()
        return session

    def get(self, call_id: str) -> "CallSession | None":
        return self._calls.get(call_id)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator["CallSession"]:
        """The sessions (a snapshot: one may end while the caller goes through them)."""
        return iter(list(self._calls.values()))
