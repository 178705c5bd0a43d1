"""Hot-word lists and their versions. A version is never changed: every edit, import or
rollback adds the next one, so history is complete and any version can be restored."""

import json

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from admin_api.crud import audit
from admin_api.models import HotwordList, HotwordListVersion, Tenant, utcnow
from asr_core.hotwords import Hotword, HotwordLimits
from asr_core.hotwords.parse import check_entries


class VersionConflict(Exception):
    """The edit started from a version that is no longer the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the list is at version {current}")
        self.current = current


def all_for(session: Session, tenant_id: str) -> list[HotwordList]:
    query = select(HotwordList).where(HotwordList.tenant_id == tenant_id).order_by(HotwordList.name)
    return list(session.exec(query))


def get(session: Session, tenant_id: str, name: str) -> HotwordList | None:
    query = select(HotwordList).where(HotwordList.tenant_id == tenant_id, HotwordList.name == name)
    return session.exec(query).first()


def version_row(
    session: Session, hotword_list: HotwordList, version: int
) -> HotwordListVersion | None:
    query = select(HotwordListVersion).where(
        HotwordListVersion.list_id == hotword_list.id, HotwordListVersion.version == version
    )
    return session.exec(query).first()


def versions(session: Session, hotword_list: HotwordList) -> list[HotwordListVersion]:
    query = (
        select(HotwordListVersion)
        .where(HotwordListVersion.list_id == hotword_list.id)
        .order_by(col(HotwordListVersion.version).desc())
    )
    return list(session.exec(query))


def entries(
    session: Session, hotword_list: HotwordList, version: int | None = None
) -> list[Hotword]:
    row = version_row(session, hotword_list, version or hotword_list.version)
    return decode(row.content) if row else []


def encode(hotwords: list[Hotword]) -> str:
    return json.dumps(
        [{"phrase": h.phrase, "weight": h.weight, "aliases": list(h.aliases)} for h in hotwords],
        ensure_ascii=False,
    )


def decode(content: str) -> list[Hotword]:
    return [
        Hotword(item["phrase"], float(item.get("weight", 1.0)), tuple(item.get("aliases", ())))
        for item in json.loads(content)
    ]


def create(session: Session, tenant_id: str, name: str, active: bool) -> HotwordList:
    hotword_list = HotwordList(tenant_id=tenant_id, name=name, active=active)
    session.add(hotword_list)
    session.flush()
    return hotword_list


def add_version(
    session: Session,
    hotword_list: HotwordList,
    hotwords: list[Hotword],
    actor: str,
    limits: HotwordLimits,
    note: str = "",
    base_version: int | None = None,
    action: str = "hotwords.replace",
) -> HotwordListVersion:
    """Check the entries against the limits, then make them the next version.

    Nothing is written when a check fails; `base_version` guards against lost updates.
    """
    if base_version is not None and base_version != hotword_list.version:
        raise VersionConflict(hotword_list.version)
    checked = check_entries(hotwords, limits, source=hotword_list.name).entries
    hotword_list.version += 1
    hotword_list.updated_at = utcnow()
    row = HotwordListVersion(
        list_id=hotword_list.id,
        version=hotword_list.version,
        content=encode(checked),
        phrase_count=len(checked),
        created_by=actor,
        note=note,
    )
    session.add(hotword_list)
    session.add(row)
    bump_tenant(session, hotword_list.tenant_id)
    audit.record(
        session,
        actor,
        action,
        hotword_list.tenant_id,
        hotword_list.name,
        version=row.version,
        phrases=row.phrase_count,
        note=note,
    )
    return row


def bump_tenant(session: Session, tenant_id: str) -> int:
    """Move the tenant's hot-word version on: every list change makes a new tenant version.
    One atomic UPDATE, so two edits committed at once never announce the same version."""
    result = session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(hotword_version=Tenant.hotword_version + 1)
        .returning(Tenant.hotword_version)
    )
    return result.scalar_one()


def active_entries(session: Session, tenant_id: str) -> list[Hotword]:
    """The tenant's active lists merged (by list name; a phrase listed twice counts once)."""
    merged: dict[str, Hotword] = {}
    for hotword_list in all_for(session, tenant_id):
        if hotword_list.active:
            for hotword in entries(session, hotword_list):
                merged.setdefault(hotword.phrase, hotword)
    return list(merged.values())


def commit(session: Session, current: int) -> None:
    """Commit; two edits that raced to the same version number become a conflict."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise VersionConflict(current) from exc


def patched(existing: list[Hotword], add: list[Hotword], remove: list[str]) -> list[Hotword]:
    """Entries with `remove` taken out and `add` put in (an added phrase replaces its old entry)."""
    gone = set(remove) | {h.phrase for h in add}
    return [h for h in existing if h.phrase not in gone] + add


def delete(session: Session, hotword_list: HotwordList) -> None:
    """Remove a list and its versions (versions first: they reference the list)."""
    for row in versions(session, hotword_list):
        session.delete(row)
    session.flush()
    session.delete(hotword_list)
    bump_tenant(session, hotword_list.tenant_id)
