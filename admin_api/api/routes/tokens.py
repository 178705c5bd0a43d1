"""`POST /v1/tokens`: a short-lived token for a browser's WebSocket (which cannot send
headers), minted by a back end that holds a tenant key."""

from datetime import UTC, datetime

from fastapi import APIRouter, status

from admin_api import tokens
from admin_api.api.deps import PrincipalDep
from admin_api.schemas import TokenCreate, TokenCreated
from admin_api.state import AdminDep
from common.errors import ApiError

router = APIRouter(tags=["keys"])


@router.post("/v1/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenCreate, principal: PrincipalDep, admin: AdminDep) -> TokenCreated:
    if principal.tenant_id is None:
        raise ApiError(403, "tenant_key_required", "stream tokens are minted with a tenant key")
    token, claims = tokens.mint(
        admin.token_secret, principal.key_prefix, principal.tenant_id, body.ttl_s
    )
    return TokenCreated(
        token=token,
        tenant_id=claims.tenant_id,
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
    )
