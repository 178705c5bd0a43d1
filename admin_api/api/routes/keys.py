"""API keys: created by admins, the secret shown once; revoking takes effect at once."""

from fastapi import APIRouter, status

from admin_api.api.deps import AdminDep, SessionDep, TenantDep
from admin_api.auth import ADMIN, TENANT
from admin_api.crud import audit, keys
from admin_api.models import ApiKey
from admin_api.schemas import KeyCreate, KeyCreated, KeyPublic
from common.errors import ApiError

router = APIRouter(tags=["keys"])


def _created(key: ApiKey, secret: str) -> KeyCreated:
    return KeyCreated(
        **KeyPublic.model_validate(key, from_attributes=True).model_dump(), key=secret
    )


@router.post(
    "/v1/tenants/{tenant_id}/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated
)
def create_tenant_key(
    body: KeyCreate, tenant: TenantDep, admin: AdminDep, session: SessionDep
) -> KeyCreated:
    key, new = keys.create(session, TENANT, tenant.id, body.name)
    audit.record(session, admin.key_prefix, "key.create", tenant.id, key.prefix, name=body.name)
    session.commit()
    session.refresh(key)
    return _created(key, new.secret)


@router.get("/v1/tenants/{tenant_id}/keys", response_model=list[KeyPublic])
def list_tenant_keys(tenant: TenantDep, _: AdminDep, session: SessionDep) -> list[ApiKey]:
    return keys.for_tenant(session, tenant.id)


@router.delete("/v1/tenants/{tenant_id}/keys/{prefix}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_tenant_key(prefix: str, tenant: TenantDep, admin: AdminDep, session: SessionDep) -> None:
    key = keys.find(session, prefix, tenant.id)
    if key is None:
        raise ApiError(404, "key_not_found", f"no key {prefix!r} for tenant {tenant.id!r}")
    keys.revoke(key)
    session.add(key)
    audit.record(session, admin.key_prefix, "key.revoke", tenant.id, prefix)
    session.commit()


@router.post("/v1/admin/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_admin_key(body: KeyCreate, admin: AdminDep, session: SessionDep) -> KeyCreated:
    key, new = keys.create(session, ADMIN, None, body.name)
    audit.record(session, admin.key_prefix, "key.create_admin", None, key.prefix, name=body.name)
    session.commit()
    session.refresh(key)
    return _created(key, new.secret)


@router.get("/v1/admin/keys", response_model=list[KeyPublic])
def list_admin_keys(_: AdminDep, session: SessionDep) -> list[ApiKey]:
    return keys.for_tenant(session, None)


@router.delete("/v1/admin/keys/{prefix}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_admin_key(prefix: str, admin: AdminDep, session: SessionDep) -> None:
    key = keys.find(session, prefix, None)
    if key is None:
        raise ApiError(404, "key_not_found", f"no admin key {prefix!r}")
    keys.revoke(key)
    session.add(key)
    audit.record(session, admin.key_prefix, "key.revoke_admin", None, prefix)
    session.commit()
