"""The admin backend: its routes on any FastAPI app (the combined server), or an app alone."""

import secrets
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.engine import Engine

from admin_api.api.routes import (
    calls,
    hotword_lists,
    jobs,
    keys,
    search,
    session,
    tenant_settings,
    tenants,
    tokens,
    transcripts,
)
from admin_api.api.routes.jobs import JobsConfig
from admin_api.crud.hotword_lists import VersionConflict
from asr_core.hotwords import HotwordLimits
from asr_core.service.errors import error_response, install_error_handlers
from asr_core.service.static import StrictStaticFiles, mount_shared_assets, strict_headers

Publisher = Callable[[str, str, int], None]
"""Announces `(tenant, list, tenant hot-word version)` after a hot-word change is committed."""

UI_DIR = Path(__file__).parent / "ui"
UI_HEADERS = strict_headers()
"""The UI holds an API key: only its own script and styles run."""


def install(
    app: FastAPI,
    engine: Engine,
    limits: HotwordLimits | None = None,
    publish: Publisher | None = None,
    token_secret: bytes | None = None,
    jobs_config: JobsConfig | None = None,
) -> None:
    """Add the admin routes to an app that already has the service's error handlers.
    `token_secret` signs stream tokens; processes behind one address must share it.
    `jobs_config` says where uploads go and how jobs reach the workers."""
    app.state.admin_db = engine
    app.state.jobs = jobs_config or JobsConfig()
    app.state.token_secret = token_secret or secrets.token_bytes(32)
    app.state.hotword_limits = limits or HotwordLimits()
    app.state.publish_hotwords = publish or (lambda tenant, name, version: None)
    app.include_router(tenants.router)
    app.include_router(keys.router)
    app.include_router(hotword_lists.router)
    app.include_router(tokens.router)
    app.include_router(calls.router)
    app.include_router(transcripts.router)
    app.include_router(jobs.router)
    app.include_router(tenant_settings.router)
    app.include_router(session.router)
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
    engine: Engine, limits: HotwordLimits | None = None, publish: Publisher | None = None
) -> FastAPI:
    """The admin API on its own (for a deployment that runs it behind its own proxy)."""
    app = FastAPI(title="callscribe admin API", version="0.1.0")
    install_error_handlers(app)
    install(app, engine, limits, publish)
    return app
