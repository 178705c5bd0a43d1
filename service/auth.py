"""The authentication hook of the ASR service.

The service itself keeps no users: whoever deploys it passes `ServiceConfig.authenticate`, a
coroutine that looks at a request or WebSocket (headers, query token) and returns who is
calling, or raises `Unauthorized`. The admin backend fills it with tenant API keys and
short-lived browser tokens; without a hook (the embedded default, bound to localhost) every
caller is let in.
"""

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection

Authenticator = Callable[[HTTPConnection], Awaitable[object]]

UNAUTHORIZED_CLOSE = 4401


async def authenticate(connection: HTTPConnection) -> object:
    """Who is calling, per the configured hook (None when there is no hook); also kept on
    `connection.state.principal` for what the request does next."""
    hook = connection.app.state.config.authenticate
    principal = None if hook is None else await hook(connection)
    connection.state.principal = principal
    return principal
