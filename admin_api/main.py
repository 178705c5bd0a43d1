"""The admin backend: its routes on any FastAPI app (the combined server), or an app alone."""

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from admin_api.api.routes import hotword_lists, keys, tenants
from admin_api.crud.hotword_lists import VersionConflict
from asr_core.hotwords import HotwordLimits
from asr_core.service.errors import error_response, install_error_handlers

Publisher = Callable[[str, str, int], None]
"""Announces `(tenant, list, tenant hot-word version)` after a hot-word change is committed."""


def install(
    app: FastAPI,
    engine: Engine,
    limits: HotwordLimits | None = None,
    publish: Publisher | None = None,
) -> None:
    """Add the admin routes to an app that already has the service's error handlers."""
    app.state.admin_db = engine
    app.state.hotword_limits = limits or HotwordLimits()
    app.state.publish_hotwords = publish or (lambda tenant, name, version: None)
    app.include_router(tenants.router)
    app.include_router(keys.router)
    app.include_router(hotword_lists.router)

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
