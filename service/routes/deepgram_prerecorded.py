"""Deepgram-compatible prerecorded recognition: `POST /v1/listen`.

The body is the audio itself, with any content type (Deepgram's SDKs send
`application/octet-stream` or the file's type), or JSON `{"url": "https://..."}`, which the
server fetches with the batch jobs' address rules (public addresses only, unless the operator
allows private ones). The query takes `listen`'s parameters (`language`, `keyterm`,
`keywords`, `encoding`/`sample_rate`/`channels` for headerless audio, `utterances=true`).

The answer is Deepgram's JSON: `metadata`, `results.channels[0].alternatives[0]` with the
transcript, its confidence and words, and `results.utterances` when asked. With
`callback=URL` the request becomes a batch job instead (the same checks, limits, worker and
signed webhook as `POST /v1/jobs`, the webhook going to the callback) and the answer is
`{"request_id": JOB_ID}` at once.
"""

import asyncio
import hashlib
import json
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from asr_core.audio import RawFormat
from common.errors import ApiError
from service.auth import authenticate
from service.deepgram.messages import ModelInfo, prerecorded
from service.deepgram.params import ListenParams, parse_listen
from service.hotwords import caller_index
from service.state import ServiceState, StateDep

router = APIRouter(tags=["deepgram"], dependencies=[Depends(authenticate)])

MAX_JSON_BYTES = 16_384
"""A JSON body only names a URL."""


@router.post(
    "/v1/listen",
    summary="Transcribe a recording (Deepgram-compatible)",
    responses={
        400: {"description": "Undecodable audio, bad parameters or an unusable URL"},
        401: {"description": "No valid key or token"},
        413: {"description": "Body larger than the upload limit"},
        429: {"description": "Over the tenant's concurrency or rate limit"},
    },
)
async def listen_prerecorded(request: Request, state: StateDep) -> JSONResponse:
    rules = state.config.rules
    params = parse_listen(request.query_params, rules, live=False)
    body = await request.body()  # the upload limit applies (BodySizeLimitMiddleware)
    url = None
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        url = _url(body)
    if params.callback:
        return await _submit(request, state, params, None if url else body, url)
    if url is not None:
        body = await _fetch(url, state)
    if not body:
        raise ApiError(400, "empty_body", 'send the audio as the body, or JSON {"url": ...}')
    raw = None
    if params.encoding is not None:
        raw = RawFormat(params.raw_encoding, params.raw_sample_rate, params.channels)
    options = rules.file_options(
        params.language,
        await caller_index(request, state.config.hotwords_for, params.hotwords),
        word_timestamps=True,
    )
    with state.quotas.transcription(request.state.principal):
        async with state.transcription_slots:
            transcript = await run_in_threadpool(state.transcriber.transcribe, body, options, raw)
    request_id = str(uuid.uuid4())
    sha256 = await asyncio.to_thread(lambda: hashlib.sha256(body).hexdigest())
    model = ModelInfo(state.transcriber.engine.model_name)
    return JSONResponse(prerecorded(transcript, request_id, model, params.utterances, sha256))


def _url(body: bytes) -> str:
    """The `url` of a JSON body, bounded before it is parsed."""
    if len(body) > MAX_JSON_BYTES:
        raise ApiError(400, "invalid_body", f"a JSON body is at most {MAX_JSON_BYTES} bytes")
    try:
        url = json.loads(body).get("url")
    except (json.JSONDecodeError, AttributeError):
        raise ApiError(400, "invalid_body", 'a JSON body must be {"url": "https://..."}') from None
    if not isinstance(url, str) or not url:
        raise ApiError(400, "invalid_body", 'a JSON body must be {"url": "https://..."}')
    return url


async def _fetch(url: str, state: ServiceState) -> bytes:
    if state.config.fetch_audio is None:
        raise ApiError(400, "url_unsupported", "this server does not fetch URLs")
    try:
        return await run_in_threadpool(state.config.fetch_audio, url)
    except ValueError as exc:
        raise ApiError(400, "url_unusable", str(exc)) from exc


async def _submit(
    request: Request,
    state: ServiceState,
    params: ListenParams,
    audio: bytes | None,
    url: str | None,
) -> JSONResponse:
    """`callback=URL`: a batch job whose signed webhook goes to the callback; Deepgram answers
    at once with the request id the callback will carry."""
    submit = state.config.submit_job
    if submit is None:
        raise ApiError(400, "callback_unsupported", "this server takes no callback requests")
    if not audio and url is None:
        raise ApiError(400, "empty_body", 'send the audio as the body, or JSON {"url": ...}')
    job_id = await run_in_threadpool(
        submit, request.state.principal, audio, url, params.language, params.callback
    )
    return JSONResponse({"request_id": job_id})
