"""The ASR service app: file transcription, live streaming (native and FunASR protocols),
health and metrics, over one engine and one decode scheduler."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from asr_core.hotwords import HotwordIndex, HotwordLimits
from asr_core.service.auth import Authenticator
from asr_core.service.errors import install_error_handlers
from asr_core.service.limits import BodySizeLimitMiddleware
from asr_core.service.metrics import ServiceMetrics
from asr_core.service.quotas import QuotaLimits, TenantQuotas
from asr_core.service.routes import demo, funasr, health, hotwords, stream, transcriptions
from asr_core.streaming import DecodeScheduler, StreamingOptions, decode_finals
from asr_core.transcribe import Transcriber


class BackgroundService(Protocol):
    """Something that runs beside the app (e.g. the hot-word bus listener)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServiceConfig:
    max_upload_bytes: int = 100_000_000
    languages: tuple[str, ...] = ("en", "zh")
    max_concurrent_transcriptions: int = 2
    """File jobs decoding at once; more wait their turn instead of thrashing the CPU."""
    hotword_limits: HotwordLimits = field(default_factory=HotwordLimits)
    hotword_top_k: int = 10
    max_batch: int = 4
    """Streams' partials decoded together in one batch."""
    decode_workers: int = 1
    """Live decodes run at once (the engine must allow as many parallel calls)."""
    first_partial_lane: bool = False
    """One more decode thread for segments' first partials only (see `DecodeScheduler`); the
    engine must then allow `decode_workers + 1` parallel calls."""
    final_batch: int = 1
    """Most live finals of different streams one worker decodes in one batch (1: one at a
    time, the better choice on a CPU; see docs/benchmarks.md)."""
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    """Defaults of every live stream (windows, beam, endpointing); a stream's config and the
    caller's hot-words are applied on top."""
    authenticate: Authenticator | None = None
    """Checks every request and stream (see `auth.py`); None lets everyone in."""
    hotwords_for: Callable[[object], HotwordIndex | None] | None = None
    """The caller's standing hot-words (a tenant's active lists), given what `authenticate`
    returned; merged with per-request phrases. The first call for a caller may query (it runs
    in a worker thread); live streams call it again at each segment start, so later calls must
    be quick (a cache) and reflect list changes."""
    quota_limits: QuotaLimits = field(default_factory=QuotaLimits)
    """Per-tenant streams, transcriptions and requests per minute."""
    services: tuple[BackgroundService, ...] = ()
    """Started with the app, stopped (in reverse) when it shuts down."""


def create_app(transcriber: Transcriber, config: ServiceConfig | None = None) -> FastAPI:
    config = config or ServiceConfig()
    metrics = ServiceMetrics()
    scheduler = DecodeScheduler(
        transcriber.engine,
        max_batch=config.max_batch,
        on_queue_wait=metrics.streams.queue_wait,
        workers=config.decode_workers,
        first_partial_lane=config.first_partial_lane,
        final_batch=config.final_batch,
        batch_finals=decode_finals,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        started: list[BackgroundService] = []
        try:
            for service in config.services:
                await service.start()
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                await service.stop()
            scheduler.stop()

    app = FastAPI(
        title="callscribe ASR service",
        summary="Speech-to-text for calls and recordings, Mandarin and English",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.transcriber = transcriber
    app.state.config = config
    app.state.metrics = metrics
    app.state.scheduler = scheduler
    app.state.transcription_slots = asyncio.Semaphore(config.max_concurrent_transcriptions)
    app.state.quotas = TenantQuotas(config.quota_limits)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_upload_bytes)
    app.include_router(health.router)
    app.include_router(transcriptions.router)
    app.include_router(hotwords.router)
    app.include_router(stream.router)
    app.include_router(funasr.router)

    demo.install(app)  # the demo page at `/`; API docs stay at `/docs`

    return app
