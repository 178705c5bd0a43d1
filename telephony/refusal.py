"""`CallRefused`, in a module of its own: the SIP user-agent processes raise it too, and they
must not import the call hub (numpy, the database, the recognisers) to do so."""


class CallRefused(Exception):
    """A call that cannot be taken: `status` is the SIP-style answer (403, 404, 486, 503)."""

    def __init__(self, reason: str, status: int, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after_s = retry_after_s
