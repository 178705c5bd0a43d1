"""The combined server of `callscribe serve` built in-process (for TestClient), with keys."""

from sqlmodel import Session

from admin_api import migrate
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.models import Tenant
from asr_core.audio import RawFormat
from callscribe.config import Settings
from callscribe.server import Services, build_app


def make_server(transcriber, tmp_path, **settings):
    """The app and its database (SQLite under `tmp_path`), authenticating with keys; jobs go
    to the embedded broker under `tmp_path`, and no worker runs them unless a test starts one."""
    url = f"sqlite:///{tmp_path}/admin.db"
    migrate.upgrade(url)
    database = make_engine(url)
    defaults = {"auth": "keys", "worker_embedded": False}  # no worker process per test app
    config = Settings(
        _env_file=None, database_url=url, var_dir=tmp_path, **{**defaults, **settings}
    )
    return build_app(config, transcriber, database), database


def services(app) -> Services:
    """The `Services` a combined app was built with (`app` or a TestClient of it)."""
    return getattr(app, "app", app).state.services


def tenant_database(url: str, tenant: str = "acme") -> str:
    """A migrated admin database at `url` holding `tenant`; returns a key of that tenant (for
    a server in another process: the database is closed again)."""
    migrate.upgrade(url)
    database = make_engine(url)
    with Session(database) as session:
        session.add(Tenant(id=tenant, name=tenant.title()))
        session.commit()
    key = new_key(database, "tenant", tenant)
    database.dispose()
    return key


def new_key(database, scope, tenant_id=None) -> str:
    with Session(database) as session:
        _, new = keys.create(session, scope, tenant_id, "test")
        session.commit()
    return new.secret


def bearer(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


def open_call(client, tenant: str, legs: dict[str, RawFormat], **options):
    """Open a call on the app's event loop, as a gateway does."""
    hub = services(client).hub

    async def opening():
        session = await hub.open_call(tenant, "test", **options)
        for name, fmt in legs.items():
            session.add_leg(name, fmt)
        return session

    return client.portal.call(opening)
