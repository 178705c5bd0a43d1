"""FastAPI dependencies: a database session, the caller, and the tenant they may touch."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from admin_api.auth import Principal, presented_key, principal_for
from admin_api.models import Tenant
from admin_api.state import AdminDep
from common.errors import ApiError


def get_session(state: AdminDep) -> Iterator[Session]:
    with Session(state.database) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    return principal_for(session, presented_key(request))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "admin_only", "this needs an admin key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def get_tenant(tenant_id: str, principal: PrincipalDep, session: SessionDep) -> Tenant:
    """The tenant in the path, if the caller may see it; another tenant's is simply not found."""
    tenant = session.get(Tenant, tenant_id) if principal.can_access(tenant_id) else None
    if tenant is None:
        raise ApiError(404, "tenant_not_found", f"no tenant {tenant_id!r}")
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]
