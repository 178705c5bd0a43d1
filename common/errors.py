"""The API error types every part raises, and the handlers that render them: every error
leaves an HTTP API as JSON with a machine code and a readable reason (OpenAI's shape, so OpenAI
clients show it). Shared by the ASR service, the admin API and the telephony routes."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from asr_core.errors import AsrError, AudioDecodeError, ModelError, UnsupportedLanguageError
from asr_core.hotwords import HotwordListError

logger = logging.getLogger(__name__)


class Unauthorized(AsrError):
    """No valid key or token (401; close code 4401 on a WebSocket)."""

    code = "unauthorized"


class TooManyRequests(AsrError):
    """Over a per-tenant limit (429 with Retry-After; close code 4429 on a WebSocket)."""

    code = "rate_limited"

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


_STATUS = {
    AudioDecodeError: 400,
    UnsupportedLanguageError: 400,
    ModelError: 500,
    Unauthorized: 401,
    HotwordListError: 422,
    TooManyRequests: 429,
}


class ApiError(Exception):
    """An error a route raises on purpose: status, code and reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """OpenAI-shaped error body so OpenAI clients show the reason."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "code": code}}
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(AsrError)
    async def _asr_error(_: Request, exc: AsrError) -> JSONResponse:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        response = error_response(status, exc.code, exc.reason)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"internal error: {exc.__class__.__name__}")
