"""OpenAI-compatible `POST /v1/audio/transcriptions` (multipart upload -> transcript)."""

import asyncio
import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from asr_core.engines.base import DEFAULT_TEMPERATURES
from asr_core.errors import AsrError
from asr_core.formats import to_openai_json, to_srt, to_text, to_verbose_json, to_vtt
from asr_core.transcribe import TranscribeOptions
from common.errors import ApiError, TooManyRequests
from service.auth import authenticate
from service.hotwords import caller_index
from service.state import ServiceState, StateDep

logger = logging.getLogger(__name__)
router = APIRouter(tags=["transcription"], dependencies=[Depends(authenticate)])

OPENAI_MODEL_ALIASES = {"", "whisper-1"}
ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe an audio file (OpenAI-compatible)",
    responses={
        400: {"description": "Undecodable audio or bad parameters"},
        401: {"description": "No valid key or token"},
        413: {"description": "Upload larger than the limit"},
        429: {"description": "Over the tenant's concurrency or rate limit (see Retry-After)"},
    },
)
async def create_transcription(
    request: Request,
    state: StateDep,
    file: Annotated[UploadFile, File(description="Audio in any format FFmpeg reads")],
    model: Annotated[str, Form(description="`whisper-1` or the served model's name")] = "whisper-1",
    language: Annotated[
        str | None, Form(description="`en`, `zh`, or omit/`auto` to detect")
    ] = None,
    prompt: Annotated[str | None, Form(description="Context text for the first window")] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    timestamp_granularities: Annotated[
        list[Literal["word", "segment"]] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    hotwords: Annotated[
        str | None,
        Form(
            description="Hot-word list to favour: one phrase per line, `phrase<TAB>alias`, "
            '`phrase weight` lines, or FunASR JSON `{"phrase": weight}`'
        ),
    ] = None,
    tenant_hotwords: Annotated[
        bool,
        Form(
            description="Also favour the caller's standing (tenant) hot-word lists; false "
            "decodes with `hotwords` alone, e.g. to compare a draft list"
        ),
    ] = True,
) -> Response:
    engine = state.transcriber.engine
    if model not in OPENAI_MODEL_ALIASES | {engine.model_name}:
        raise ApiError(
            400, "model_not_found", f"model {model!r} is not served here; use {engine.model_name!r}"
        )
    words = "word" in (timestamp_granularities or []) and response_format == "verbose_json"
    started = time.perf_counter()
    metrics = state.metrics
    try:
        # The tenant's quota first: a caller over it gets no work done (its hot-words unread).
        with state.quotas.transcription(request.state.principal):
            options = await _options(
                request, state, language, hotwords, tenant_hotwords, prompt, words, temperature
            )
            async with state.transcription_slots:
                transcript = await run_in_threadpool(
                    state.transcriber.transcribe, file.file, options
                )
    except TooManyRequests:
        metrics.requests.labels(outcome="rate_limited").inc()
        raise
    except AsrError:
        metrics.requests.labels(outcome="rejected").inc()
        raise
    except asyncio.CancelledError:
        metrics.requests.labels(outcome="cancelled").inc()
        raise
    except Exception:
        metrics.requests.labels(outcome="failed").inc()
        raise
    finally:
        await file.close()
    elapsed = time.perf_counter() - started
    metrics.requests.labels(outcome="ok").inc()
    metrics.audio_seconds.inc(transcript.duration)
    metrics.processing_seconds.observe(elapsed)
    if transcript.duration:
        metrics.rtf.observe(elapsed / transcript.duration)
    logger.info(
        "transcribed upload",
        extra={
            "file_name": file.filename,
            "audio_s": round(transcript.duration, 2),
            "elapsed_s": round(elapsed, 3),
            "language": transcript.language,
        },
    )

    if response_format == "json":
        return JSONResponse(to_openai_json(transcript))
    if response_format == "verbose_json":
        return JSONResponse(to_verbose_json(transcript, words=words))
    if response_format == "text":
        return PlainTextResponse(to_text(transcript))
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript), media_type="application/x-subrip")
    return PlainTextResponse(to_vtt(transcript), media_type="text/vtt")


async def _options(
    request: Request,
    state: ServiceState,
    language: str | None,
    hotwords: str | None,
    tenant_hotwords: bool,
    prompt: str | None,
    words: bool,
    temperature: float,
) -> TranscribeOptions:
    """The upload's decode options; its own hot-words are parsed and indexed in a thread."""
    rules = state.config.rules
    return rules.file_options(
        rules.language(language),
        await caller_index(
            request,
            state.config.hotwords_for,
            await rules.hotwords_in_thread(hotwords),
            standing=tenant_hotwords,
        ),
        prompt=prompt or None,
        word_timestamps=words,
        temperatures=tuple(t for t in DEFAULT_TEMPERATURES if t >= temperature) or (temperature,),
    )
