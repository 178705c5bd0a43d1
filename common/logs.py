"""Logging setup: readable text for people, one JSON object per line for log pipelines."""

import json
import logging
import re
import sys
import time

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


_TOKEN_IN_URL = re.compile(r"([?&](?:token|api_key|key)=)[^&\s\"']+", re.IGNORECASE)


def redact_url_secrets(text: str) -> str:
    """`/v1/stream?token=cst_...` -> `/v1/stream?token=[redacted]`."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Keeps stream tokens in URLs (access-log lines, error messages) out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_url_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Chatty libraries: their INFO lines (every migration plugin, every decode) bury ours.
    for name in ("faster_whisper", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
