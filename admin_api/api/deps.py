"""FastAPI dependencies: a database session, the caller, and the tenant they may touch."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from admin_api.auth import Principal, presented_key, principal_for, principal_for_token
from admin_api.models import Tenant
from admin_api.state import AdminDep as StateDep
from common.errors import ApiError


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.database) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    return principal_for(session, presented_key(request))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_media_principal(request: Request, session: SessionDep, state: StateDep) -> Principal:
    """A key in a header, or a stream token in the query: what an `<audio>` element can send.
    Only media routes take tokens; the rest of the admin API needs the key itself."""
    key = presented_key(request)
    token = request.query_params.get("token")
    if key is None and token:
        return principal_for_token(session, state.token_secret, token)
    return principal_for(session, key)


MediaPrincipalDep = Annotated[Principal, Depends(get_media_principal)]


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


def scoped_tenant(principal: Principal, session: Session, tenant_id: str | None) -> str | None:
    """The tenant a listing covers: a tenant key's own, an admin's pick, or every tenant
    (None) for an admin who names none. Naming a tenant one cannot see is not found."""
    if tenant_id is not None and (
        not principal.can_access(tenant_id) or session.get(Tenant, tenant_id) is None
    ):
        raise ApiError(404, "tenant_not_found", f"no tenant {tenant_id!r}")
    return tenant_id if principal.is_admin else principal.tenant_id
