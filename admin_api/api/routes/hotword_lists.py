"""A tenant's hot-word lists: write, patch, import, export, versions and rollback.

Every change adds a version (checked against the size and prompt-budget limits first, so a bad
list never becomes current), is recorded in the audit trail, and is announced to the ASR
processes so live calls switch to it from their next segment.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import PlainTextResponse

from admin_api.api.deps import PrincipalDep, SessionDep, TenantDep
from admin_api.crud import audit
from admin_api.crud import hotword_lists as crud
from admin_api.models import HotwordList, Tenant
from admin_api.schemas import (
    HotwordEntry,
    HotwordListCreate,
    HotwordListDetail,
    HotwordListPatch,
    HotwordListPublic,
    HotwordListWrite,
    Rollback,
    VersionPublic,
)
from admin_api.state import AdminDep
from asr_core.hotwords import Hotword, parse_hotwords, render_hotwords
from asr_core.hotwords import HotwordList as Entries
from common.errors import ApiError

router = APIRouter(prefix="/v1/tenants/{tenant_id}/hotword-lists", tags=["hot-words"])
ExportFormat = Literal["tsv", "weighted", "json", "lines"]


def _find(session, tenant_id: str, name: str) -> HotwordList:
    hotword_list = crud.get(session, tenant_id, name)
    if hotword_list is None:
        raise ApiError(404, "list_not_found", f"no hot-word list {name!r}")
    return hotword_list


def _check_room_to_activate(admin: AdminDep, session, tenant_id: str) -> None:
    active = sum(1 for h in crud.all_for(session, tenant_id) if h.active)
    if active >= admin.max_active_lists:
        raise ApiError(
            422,
            "too_many_active_lists",
            f"tenant {tenant_id!r} already has {active} active hot-word lists, the limit "
            f"(CALLSCRIBE_HOTWORDS_MAX_ACTIVE_LISTS={admin.max_active_lists}); deactivate one",
        )


def _entries(body: HotwordListWrite, limits) -> list[Hotword]:
    if (body.entries is None) == (body.content is None):
        raise ApiError(422, "invalid_request", "send either `entries` or `content`")
    if body.content is not None:
        return parse_hotwords(body.content, body.format, limits, source="content").entries
    return [Hotword(e.phrase.strip(), e.weight, tuple(e.aliases)) for e in body.entries]


def _detail(session, hotword_list: HotwordList, version: int | None = None) -> HotwordListDetail:
    hotwords = crud.entries(session, hotword_list, version)
    return HotwordListDetail(
        **_public(session, hotword_list).model_dump(),
        entries=[
            HotwordEntry(phrase=h.phrase, weight=h.weight, aliases=list(h.aliases))
            for h in hotwords
        ],
    )


def _public(session, hotword_list: HotwordList) -> HotwordListPublic:
    row = crud.version_row(session, hotword_list, hotword_list.version)
    return HotwordListPublic(
        name=hotword_list.name,
        tenant_id=hotword_list.tenant_id,
        active=hotword_list.active,
        version=hotword_list.version,
        phrase_count=row.phrase_count if row else 0,
        updated_at=hotword_list.updated_at,
    )


def _committed(admin: AdminDep, session, hotword_list: HotwordList) -> HotwordListDetail:
    crud.commit(session, hotword_list.version)
    session.refresh(hotword_list)
    _publish(admin, session, hotword_list.tenant_id, hotword_list.name)
    return _detail(session, hotword_list)


def _publish(admin: AdminDep, session, tenant_id: str, name: str) -> None:
    tenant = session.get(Tenant, tenant_id)
    session.refresh(tenant)
    admin.publish(tenant_id, name, tenant.hotword_version)


@router.get("", response_model=list[HotwordListPublic])
def list_lists(tenant: TenantDep, session: SessionDep) -> list[HotwordListPublic]:
    return [_public(session, h) for h in crud.all_for(session, tenant.id)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=HotwordListDetail)
def create_list(
    body: HotwordListCreate,
    admin: AdminDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    session: SessionDep,
) -> HotwordListDetail:
    if crud.get(session, tenant.id, body.name) is not None:
        raise ApiError(409, "list_exists", f"hot-word list {body.name!r} already exists")
    if body.active:
        _check_room_to_activate(admin, session, tenant.id)
    hotwords = _entries(body, admin.hotword_limits)
    hotword_list = crud.create(session, tenant.id, body.name, body.active)
    crud.add_version(
        session,
        hotword_list,
        hotwords,
        principal.key_prefix,
        admin.hotword_limits,
        body.note,
        action="hotwords.create",
    )
    return _committed(admin, session, hotword_list)


@router.get("/{name}", response_model=HotwordListDetail)
def read_list(
    name: str,
    tenant: TenantDep,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, description="A past version")] = None,
) -> HotwordListDetail:
    hotword_list = _find(session, tenant.id, name)
    if version is not None and crud.version_row(session, hotword_list, version) is None:
        raise ApiError(404, "version_not_found", f"{name!r} has no version {version}")
    return _detail(session, hotword_list, version)


@router.put("/{name}", response_model=HotwordListDetail)
def replace_list(
    name: str,
    body: HotwordListWrite,
    admin: AdminDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    session: SessionDep,
) -> HotwordListDetail:
    hotword_list = _find(session, tenant.id, name)
    crud.add_version(
        session,
        hotword_list,
        _entries(body, admin.hotword_limits),
        principal.key_prefix,
        admin.hotword_limits,
        body.note,
        body.base_version,
    )
    return _committed(admin, session, hotword_list)


@router.patch("/{name}", response_model=HotwordListDetail)
def patch_list(
    name: str,
    body: HotwordListPatch,
    admin: AdminDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    session: SessionDep,
) -> HotwordListDetail:
    hotword_list = _find(session, tenant.id, name)
    if body.active is not None and body.active != hotword_list.active:
        if body.active:
            _check_room_to_activate(admin, session, tenant.id)
        hotword_list.active = body.active
        crud.bump_tenant(session, tenant.id)
        audit.record(
            session, principal.key_prefix, "hotwords.activate", tenant.id, name, active=body.active
        )
    if body.add or body.remove:
        added = [Hotword(e.phrase.strip(), e.weight, tuple(e.aliases)) for e in body.add]
        hotwords = crud.patched(crud.entries(session, hotword_list), added, body.remove)
        crud.add_version(
            session,
            hotword_list,
            hotwords,
            principal.key_prefix,
            admin.hotword_limits,
            body.note,
            body.base_version,
            action="hotwords.patch",
        )
    session.add(hotword_list)
    return _committed(admin, session, hotword_list)


@router.post("/{name}/import", response_model=HotwordListDetail)
def import_list(
    name: str,
    admin: AdminDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="TSV, `phrase weight` lines, JSON or lines")],
    format: Annotated[str, Form()] = "auto",
    base_version: Annotated[int | None, Form()] = None,
    note: Annotated[str, Form(max_length=200)] = "",
) -> HotwordListDetail:
    """Replace the list with an uploaded file; any error names its line and changes nothing."""
    hotword_list = _find(session, tenant.id, name)
    data = file.file.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ApiError(
            422, "hotword_list_error", f"{file.filename}, line {line}: not UTF-8"
        ) from exc
    hotwords = parse_hotwords(text, format, admin.hotword_limits, source=file.filename or "upload")
    crud.add_version(
        session,
        hotword_list,
        hotwords.entries,
        principal.key_prefix,
        admin.hotword_limits,
        note or f"import {file.filename}",
        base_version,
        action="hotwords.import",
    )
    return _committed(admin, session, hotword_list)


@router.get("/{name}/export", response_class=PlainTextResponse)
def export_list(
    name: str,
    tenant: TenantDep,
    session: SessionDep,
    format: ExportFormat = "tsv",
    version: Annotated[int | None, Query(ge=1)] = None,
) -> PlainTextResponse:
    hotword_list = _find(session, tenant.id, name)
    text = render_hotwords(Entries(crud.entries(session, hotword_list, version)), format)
    return PlainTextResponse(
        text,
        headers={"content-disposition": f'attachment; filename="{name}.{format}"'},
    )


@router.get("/{name}/versions", response_model=list[VersionPublic])
def list_versions(name: str, tenant: TenantDep, session: SessionDep) -> list:
    return crud.versions(session, _find(session, tenant.id, name))


@router.post("/{name}/rollback", response_model=HotwordListDetail)
def rollback_list(
    name: str,
    body: Rollback,
    admin: AdminDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    session: SessionDep,
) -> HotwordListDetail:
    """Make an old version current again, as a new version (history is never rewritten)."""
    hotword_list = _find(session, tenant.id, name)
    if crud.version_row(session, hotword_list, body.version) is None:
        raise ApiError(404, "version_not_found", f"{name!r} has no version {body.version}")
    crud.add_version(
        session,
        hotword_list,
        crud.entries(session, hotword_list, body.version),
        principal.key_prefix,
        admin.hotword_limits,
        f"rollback to version {body.version}",
        body.base_version,
        action="hotwords.rollback",
    )
    return _committed(admin, session, hotword_list)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_list(
    name: str, admin: AdminDep, tenant: TenantDep, principal: PrincipalDep, session: SessionDep
) -> None:
    hotword_list = _find(session, tenant.id, name)
    crud.delete(session, hotword_list)
    audit.record(session, principal.key_prefix, "hotwords.delete", tenant.id, name)
    session.commit()
    _publish(admin, session, tenant.id, name)
