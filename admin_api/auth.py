"""Who is calling: API keys from the `Authorization: Bearer` or `X-API-Key` header, and
short-lived tokens in the query (`?token=`) for browsers on the ASR endpoints."""

import hmac
import ipaddress
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from admin_api import tokens
from admin_api.models import ApiKey, Tenant
from admin_api.security import matches, split_prefix
from common.errors import Unauthorized

ADMIN = "admin"
TENANT = "tenant"
LOCAL_KEY = "local"
"""The key an OpenAI SDK (which always sends one) passes in local mode to act as the local
tenant; any other key must be a valid callscribe key."""
GATEWAY = "gateway"
"""A gateway streaming a call to an ASR core with the service key, for the tenant it names."""
GATEWAY_TENANT_HEADER = "x-callscribe-tenant"
MAX_TENANT_ID_CHARS = 64


@dataclass(frozen=True)
class Principal:
    key_prefix: str
    scope: str
    tenant_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.scope == ADMIN

    def can_access(self, tenant_id: str) -> bool:
        return self.is_admin or self.tenant_id == tenant_id


def presented_key(connection: HTTPConnection) -> str | None:
    """A key or token from `Authorization: Bearer|Token <secret>` (Deepgram clients send
    `Token`), `X-API-Key`, or the browser form of Deepgram's sockets,
    `Sec-WebSocket-Protocol: token, <secret>` (browsers cannot set headers)."""
    scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return secret.strip() or None
    protocols = connection.headers.get("sec-websocket-protocol", "").split(",")
    if len(protocols) == 2 and protocols[0].strip().lower() in ("token", "bearer"):
        return protocols[1].strip() or None
    return connection.headers.get("x-api-key") or None


def principal_for(session: Session, secret: str | None) -> Principal:
    """The key's owner; unknown, malformed or revoked keys are refused alike."""
    if not secret:
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    prefix = split_prefix(secret)
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
    if key is None or key.revoked_at is not None or not matches(secret, key.secret_hash):
        raise Unauthorized("the API key is not valid")
    return Principal(key.prefix, key.scope, key.tenant_id)


def principal_for_token(session: Session, secret: bytes, token: str) -> Principal:
    """A stream token's owner, while the key it was minted from is still valid. A token acts
    for one tenant, even one an admin key minted (for a supervisor's browser)."""
    claims = tokens.verify(secret, token)
    key = session.exec(select(ApiKey).where(ApiKey.prefix == claims.key_prefix)).first()
    minted_by = key is not None and (key.scope == ADMIN or key.tenant_id == claims.tenant_id)
    if key is None or key.revoked_at is not None or not minted_by:
        raise Unauthorized("the token's key has been revoked")
    return Principal(key.prefix, TENANT, claims.tenant_id)


def is_loopback(connection: HTTPConnection) -> bool:
    host = connection.client.host if connection.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def key_authenticator(database: Engine, token_secret: bytes, local_tenant: str | None = None):
    """The ASR service's authentication hook: a key in a header, or a stream token in the
    query. With `local_tenant` (the embedded default, serving this machine only), callers on
    loopback that present neither (or the key `local`) act as that tenant; a key or token that
    is present is checked, and refused when it is not valid, never taken for no key."""

    def check(connection: HTTPConnection) -> Principal:
        key = presented_key(connection)
        token = connection.query_params.get("token")
        if key and key.startswith(tokens.TOKEN_PREFIX):  # a stream token as a bearer secret
            key, token = None, key
        keyless = not token and (not key or key == LOCAL_KEY)
        if local_tenant is not None and keyless and is_loopback(connection):
            return Principal("local", TENANT, local_tenant)
        with Session(database) as session:
            if key:
                return principal_for(session, key)
            if token:
                return principal_for_token(session, token_secret, token)
        raise Unauthorized(
            "an API key (Authorization: Bearer <key>) or a stream token (?token=) is required"
        )

    async def authenticate(connection: HTTPConnection) -> Principal:
        return await run_in_threadpool(check, connection)

    return authenticate


def gateway_authenticator(inner, database: Engine, service_key: str | None):
    """The ASR service's hook on an ASR core: a request naming a tenant
    (`X-Callscribe-Tenant`) is a gateway's stream, let in only with the deployment's service key
    (`CALLSCRIBE_ASR_SERVICE_KEY`) and acting for that tenant alone (its quotas, its hot-word
    lists); every other request goes to `inner` (tenant keys, tokens). A tenant key naming a
    tenant, even its own, is refused: only gateways act for a tenant they name."""

    def check(connection: HTTPConnection) -> Principal:
        tenant_id = connection.headers.get(GATEWAY_TENANT_HEADER, "")
        presented = presented_key(connection) or ""
        if not service_key:
            raise Unauthorized("this ASR core takes no gateway streams (no service key is set)")
        if not hmac.compare_digest(presented.encode(), service_key.encode()):
            raise Unauthorized(
                f"{GATEWAY_TENANT_HEADER} is for gateways: the service key is not valid"
            )
        if not tenant_id or len(tenant_id) > MAX_TENANT_ID_CHARS:
            raise Unauthorized(f"a gateway names its tenant in {GATEWAY_TENANT_HEADER}")
        with Session(database) as session:
            if session.get(Tenant, tenant_id) is None:
                raise Unauthorized(f"no tenant {tenant_id[:MAX_TENANT_ID_CHARS]!r}")
        return Principal(GATEWAY, GATEWAY, tenant_id)

    async def authenticate(connection: HTTPConnection) -> object:
        named = GATEWAY_TENANT_HEADER in connection.headers
        if not named:
            if service_key and hmac.compare_digest(
                (presented_key(connection) or "").encode(), service_key.encode()
            ):
                raise Unauthorized(f"a gateway names its tenant in {GATEWAY_TENANT_HEADER}")
            return await inner(connection)
        return await run_in_threadpool(check, connection)

    return authenticate
