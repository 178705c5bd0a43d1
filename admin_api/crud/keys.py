from sqlmodel import Session, col, select

from admin_api.models import ApiKey, utcnow
from admin_api.security import NewKey, generate_key


def create(
    session: Session, scope: str, tenant_id: str | None, name: str = ""
) -> tuple[ApiKey, NewKey]:
    new = generate_key()
    key = ApiKey(
        prefix=new.prefix, secret_hash=new.secret_hash, scope=scope, tenant_id=tenant_id, name=name
    )
    session.add(key)
    return key, new


def for_tenant(session: Session, tenant_id: str | None) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(col(ApiKey.id))
    return list(session.exec(query))


def find(session: Session, prefix: str, tenant_id: str | None) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.tenant_id == tenant_id)
    return session.exec(query).first()


def revoke(key: ApiKey) -> None:
    key.revoked_at = key.revoked_at or utcnow()
