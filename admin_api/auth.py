"""Who is calling: API keys from the `Authorization: Bearer` or `X-API-Key` header."""

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.requests import HTTPConnection

from admin_api.models import ApiKey
from admin_api.security import matches, split_prefix
from asr_core.service.auth import Unauthorized

ADMIN = "admin"
TENANT = "tenant"


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
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
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


def key_authenticator(engine: Engine):
    """An `asr_core` authentication hook backed by this database's keys."""

    async def authenticate(connection: HTTPConnection) -> Principal:
        with Session(engine) as session:
            return principal_for(session, presented_key(connection))

    return authenticate
