"""Liveness/readiness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.state import StateDep

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Service health and the model it serves")
def healthz(state: StateDep) -> dict:
    """`load` is what a gateway's pool of ASR cores places new streams by: live sockets open
    now, the most this process takes (0: no limit), and finals waiting for a decoder."""
    engine = state.transcriber.engine
    return {
        "status": "ok",
        "engine": engine.name,
        "model": engine.model_name,
        "languages": sorted(state.config.rules.languages),
        "load": {
            "streams": state.streams.open,
            "max_streams": state.streams.limit,
            "finals_waiting": state.scheduler.pending[0],
        },
    }


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(state: StateDep) -> Response:
    registry = state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
