"""The admin backend: its routes on any FastAPI app (the combined server), or an app alone."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.engine import Engine

from admin_api.api.routes import (
    calls,
    hotword_lists,
    jobs,
    keys,
    me,
    search,
    tenant_settings,
    tenants,
    tokens,
    transcripts,
)
from admin_api.crud.hotword_lists import VersionConflict
from admin_api.state import AdminState, Publisher, admin_state
from asr_core.hotwords import HotwordLimits
from common.errors import error_response, install_error_handlers
from common.static import StrictStaticFiles, mount_shared_assets, strict_headers

UI_DIR = Path(__file__).parent / "ui"
UI_HEADERS = strict_headers()
"""The UI holds an API key: only its own script and styles run."""


def install(app: FastAPI) -> None:
    """Add the admin routes and UI to an app that already has the common error handlers. The
    routes take their `AdminState` from the `admin_state` dependency: the app's builder
    provides it."""
    app.include_router(tenants.router)
    app.include_router(keys.router)
    app.include_router(hotword_lists.router)
    app.include_router(tokens.router)
    app.include_router(calls.router)
    app.include_router(transcripts.router)
    app.include_router(jobs.router)
    app.include_router(tenant_settings.router)
    app.include_router(me.router)
    app.include_router(search.router)

    @app.get("/admin", include_in_schema=False)
    def _admin_ui() -> RedirectResponse:
        return RedirectResponse("admin/")  # relative: still right behind a path-prefix proxy

    app.mount(
        "/admin",
        StrictStaticFiles(directory=UI_DIR, html=True, headers=UI_HEADERS),
        name="admin-ui",
    )
    mount_shared_assets(app)

    @app.exception_handler(VersionConflict)
    async def _conflict(_: Request, exc: VersionConflict) -> JSONResponse:
        return error_response(
            409,
            "version_conflict",
            f"the list changed meanwhile: it is now at version {exc.current}; reload and retry",
        )


def create_admin_app(
    database: Engine, limits: HotwordLimits | None = None, publish: Publisher | None = None
) -> FastAPI:
    """The admin API on its own (for a deployment that runs it behind its own proxy)."""
    state = AdminState(database, hotword_limits=limits or HotwordLimits())
    if publish is not None:
        state.publish = publish
    app = FastAPI(title="callscribe admin API", version="0.1.0")
    install_error_handlers(app)
    install(app)
    app.dependency_overrides[admin_state] = lambda: state
    return app
