"""Who is calling: the presented key's prefix, scope and tenant (the admin UI's login check)."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from admin_api.api.deps import PrincipalDep

router = APIRouter(tags=["session"])


class Me(BaseModel):
    key_prefix: str = Field(description="The key's public prefix (`cs_...`), never the secret")
    scope: str = Field(description="`admin` (everything) or `tenant` (its own tenant only)")
    tenant_id: str | None = Field(description="The tenant a `tenant` key belongs to")


@router.get("/v1/me", response_model=Me, summary="The calling key: prefix, scope and tenant")
def read_me(principal: PrincipalDep) -> Me:
    return Me(key_prefix=principal.key_prefix, scope=principal.scope, tenant_id=principal.tenant_id)
