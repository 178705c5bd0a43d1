"""Tenants: admin keys create, list, rename and delete them; a tenant key may read its own."""

from fastapi import APIRouter, status
from sqlmodel import select

from admin_api.api.deps import AdminDep, PrincipalDep, SessionDep, TenantDep
from admin_api.crud import audit, hotword_lists
from admin_api.models import ApiKey, AuditEvent, Tenant
from admin_api.schemas import AuditPublic, TenantCreate, TenantPublic, TenantUpdate
from common.errors import ApiError

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TenantPublic)
def create_tenant(body: TenantCreate, admin: AdminDep, session: SessionDep) -> Tenant:
    if session.get(Tenant, body.id) is not None:
        raise ApiError(409, "tenant_exists", f"tenant {body.id!r} already exists")
    tenant = Tenant(id=body.id, name=body.name)
    session.add(tenant)
    audit.record(session, admin.key_prefix, "tenant.create", tenant.id, tenant.id, name=body.name)
    session.commit()
    session.refresh(tenant)
    return tenant


@router.get("", response_model=list[TenantPublic])
def list_tenants(_: AdminDep, session: SessionDep) -> list[Tenant]:
    return list(session.exec(select(Tenant).order_by(Tenant.id)))


@router.get("/{tenant_id}", response_model=TenantPublic)
def read_tenant(tenant: TenantDep) -> Tenant:
    return tenant


@router.patch("/{tenant_id}", response_model=TenantPublic)
def update_tenant(
    body: TenantUpdate, tenant: TenantDep, admin: AdminDep, session: SessionDep
) -> Tenant:
    tenant.name = body.name
    session.add(tenant)
    audit.record(session, admin.key_prefix, "tenant.update", tenant.id, tenant.id, name=body.name)
    session.commit()
    session.refresh(tenant)
    return tenant


@router.delete("/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tenant(tenant: TenantDep, admin: AdminDep, session: SessionDep) -> None:
    """Delete a tenant with its keys and hot-word lists (calls and jobs must go first)."""
    for hotword_list in hotword_lists.all_for(session, tenant.id):
        hotword_lists.delete(session, hotword_list)
    for key in session.exec(select(ApiKey).where(ApiKey.tenant_id == tenant.id)):
        session.delete(key)
    session.flush()
    session.delete(tenant)
    audit.record(session, admin.key_prefix, "tenant.delete", None, tenant.id)
    session.commit()


@router.get("/{tenant_id}/audit", response_model=list[AuditPublic], tags=["audit"])
def read_audit(tenant: TenantDep, _: PrincipalDep, session: SessionDep) -> list[AuditEvent]:
    """Who changed what and when, newest first."""
    return audit.events(session, tenant.id)
