"""`POST /v1/tokens`: a short-lived token for a browser's WebSocket or media element (which
cannot send headers), minted by a back end that holds a key."""

from datetime import UTC, datetime

from fastapi import APIRouter, status

from admin_api import tokens
from admin_api.api.deps import PrincipalDep, SessionDep, scoped_tenant
from admin_api.schemas import TokenCreate, TokenCreated
from admin_api.state import AdminDep
from common.errors import ApiError

router = APIRouter(tags=["keys"])


@router.post("/v1/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(
    body: TokenCreate, principal: PrincipalDep, session: SessionDep, admin: AdminDep
) -> TokenCreated:
    """A tenant key's token acts for its tenant; an admin key names the tenant (`tenant_id`):
    the admin UI follows a tenant's calls and plays its recordings with one."""
    if principal.is_admin and body.tenant_id is None:
        raise ApiError(
            403, "tenant_key_required", "stream tokens act for one tenant: name it (tenant_id)"
        )
    tenant_id = scoped_tenant(principal, session, body.tenant_id)
    assert tenant_id is not None
    token, claims = tokens.mint(admin.token_secret, principal.key_prefix, tenant_id, body.ttl_s)
    return TokenCreated(
        token=token,
        tenant_id=claims.tenant_id,
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
    )
