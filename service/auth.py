"""The authentication hook of the ASR service.

The service itself keeps no users: whoever deploys it passes `ServiceConfig.authenticate`, a
coroutine that looks at a request or WebSocket (headers, query token) and returns who is
calling, or raises `common.errors.Unauthorized`. The admin backend fills it with tenant API
keys and short-lived browser tokens; without a hook (the embedded default, bound to localhost)
every caller is let in.
"""

from starlette.requests import HTTPConnection

from service.config import Authenticator
from service.state import StateDep

UNAUTHORIZED_CLOSE = 4401


async def identify(connection: HTTPConnection, hook: Authenticator | None) -> object:
    """Who is calling, per `hook` (None when there is no hook); also kept on
    `connection.state.principal` for what the request does next."""
    principal = None if hook is None else await hook(connection)
    connection.state.principal = principal
    return principal


async def authenticate(connection: HTTPConnection, state: StateDep) -> object:
    """`identify` with the service's hook, as a route dependency."""
    return await identify(connection, state.config.authenticate)
