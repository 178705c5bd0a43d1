"""`GET|PATCH /v1/tenants/{tenant_id}/settings`: redaction of stored text, the completion
webhook, and batch limits (the limits need an admin key)."""

from fastapi import APIRouter

from admin_api.api.deps import PrincipalDep, SessionDep, TenantDep
from admin_api.batch import check_outbound
from admin_api.crud import audit, jobs, search
from admin_api.models import TenantSettings
from admin_api.schemas import TenantSettingsPublic, TenantSettingsUpdate
from admin_api.state import AdminDep
from common.errors import ApiError

router = APIRouter(tags=["tenants"])

ADMIN_ONLY = {"job_max_mb", "max_active_jobs"}


@router.get("/v1/tenants/{tenant_id}/settings", response_model=TenantSettingsPublic)
def get_settings(tenant: TenantDep, session: SessionDep) -> dict:
    return _public(jobs.settings_of(session, tenant.id))


@router.patch("/v1/tenants/{tenant_id}/settings", response_model=TenantSettingsPublic)
def update_settings(
    admin: AdminDep,
    body: TenantSettingsUpdate,
    tenant: TenantDep,
    principal: PrincipalDep,
    session: SessionDep,
) -> dict:
    changes = body.model_dump(exclude_unset=True)
    if ADMIN_ONLY & changes.keys() and not principal.is_admin:
        raise ApiError(403, "admin_only", f"{', '.join(sorted(ADMIN_ONLY))} need an admin key")
    if "redact_kinds" in changes:
        changes["redact_kinds"] = ",".join(changes["redact_kinds"] or [])
    if changes.get("webhook_url") is not None:
        changes["webhook_url"] = str(changes["webhook_url"])
        check_outbound(admin.jobs, "webhook_url", changes["webhook_url"])
    before = jobs.settings_of(session, tenant.id)
    indexed_live = not before.redact or before.keep_original
    row = jobs.update_settings(session, tenant.id, changes)
    if indexed_live != (not row.redact or row.keep_original):
        session.flush()
        search.reindex_live(session, tenant.id)  # live finals are stored unredacted
    audit.record(
        session,
        principal.key_prefix,
        "settings.update",
        tenant.id,
        fields=", ".join(sorted(changes)),
    )
    session.commit()
    session.refresh(row)
    return _public(row)


def _public(row: TenantSettings) -> dict:
    return {
        **row.model_dump(),
        "redact_kinds": [k for k in row.redact_kinds.split(",") if k],
    }
