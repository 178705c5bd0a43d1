"""What the ASR service's routes share, typed: built once per app (`ServiceState.build`) and
handed to every route by the `service_state` dependency, which whoever builds the app provides
(`service.create_app` for the service alone, the composition root for `callscribe serve`)."""

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from asr_core.streaming import DecodeScheduler, decode_finals
from asr_core.transcribe import Transcriber
from service.config import ServiceConfig
from service.metrics import ServiceMetrics
from service.quotas import ProcessStreams, TenantQuotas


@dataclass
class ServiceState:
    transcriber: Transcriber
    config: ServiceConfig
    scheduler: DecodeScheduler
    """Every live decode of the process goes through it (started and stopped with the app)."""
    metrics: ServiceMetrics
    quotas: TenantQuotas
    transcription_slots: asyncio.Semaphore
    """File transcriptions decoding at once (`max_concurrent_transcriptions`)."""
    streams: ProcessStreams
    """Live sockets open now, all callers together (`max_streams`)."""

    @classmethod
    def build(cls, transcriber: Transcriber, config: ServiceConfig) -> "ServiceState":
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
        return cls(
            transcriber,
            config,
            scheduler,
            metrics,
            TenantQuotas(config.quota_limits),
            asyncio.Semaphore(config.max_concurrent_transcriptions),
            ProcessStreams(config.max_streams),
        )


def service_state() -> ServiceState:
    """Provided by whoever builds the app (see the module docstring)."""
    raise RuntimeError(
        "the ASR service's routes need their ServiceState: build the app with "
        "service.create_app, or provide service.state.service_state"
    )


StateDep = Annotated[ServiceState, Depends(service_state)]
