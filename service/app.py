"""The ASR service: file transcription (OpenAI-compatible), live streaming (the native
`/v1/stream` and FunASR protocols), the caller's hot-words, health and metrics, and the demo
page, over one engine and one decode scheduler.

`create_app` builds the service alone; the composition root (`callscribe.server`) puts the
same routes (`install`) on the combined app of `callscribe serve`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from asr_core.transcribe import Transcriber
from common.errors import install_error_handlers
from service.browsers import LocalBrowserGuard
from service.config import BodyLimit, ServiceConfig
from service.limits import BodyLimits, BodySizeLimitMiddleware
from service.routes import (
    deepgram_flux,
    deepgram_live,
    deepgram_prerecorded,
    demo,
    funasr,
    health,
    hotwords,
    stream,
    transcriptions,
)
from service.state import ServiceState, service_state

API_INFO = {
    "title": "callscribe",
    "summary": "Speech-to-text for calls and recordings, Mandarin and English",
    "version": "0.1.0",
}


def install(app: FastAPI, config: ServiceConfig) -> None:
    """The service's error handlers, upload limit, routes and demo page on `app`. Its routes
    take their `ServiceState` from the `service_state` dependency: the app's builder provides
    it."""
    install_error_handlers(app)
    limits = BodyLimits(
        BodyLimit("", config.max_request_bytes, "CALLSCRIBE_MAX_REQUEST_KB"),
        (
            BodyLimit("/v1/audio/", config.max_upload_bytes, "CALLSCRIBE_MAX_UPLOAD_MB"),
            BodyLimit("/v1/listen", config.max_upload_bytes, "CALLSCRIBE_MAX_UPLOAD_MB"),
            *config.body_limits,
        ),
    )
    app.add_middleware(BodySizeLimitMiddleware, limits=limits, authenticate=config.authenticate)
    if config.local_origins is not None:
        app.add_middleware(LocalBrowserGuard, allowed_origins=config.local_origins)
    app.include_router(health.router)
    app.include_router(transcriptions.router)
    app.include_router(hotwords.router)
    app.include_router(stream.router)
    app.include_router(funasr.router)
    app.include_router(deepgram_live.router)
    app.include_router(deepgram_prerecorded.router)
    app.include_router(deepgram_flux.router)
    demo.install(app)  # the demo page at `/`; API docs stay at `/docs`


def create_app(transcriber: Transcriber, config: ServiceConfig | None = None) -> FastAPI:
    """The ASR service alone (no tenants' storage, no gateways)."""
    state = ServiceState.build(transcriber, config or ServiceConfig())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.scheduler.start()
        try:
            yield
        finally:
            state.scheduler.stop()

    app = FastAPI(**API_INFO, lifespan=lifespan)
    install(app, state.config)
    app.dependency_overrides[service_state] = lambda: state
    return app
