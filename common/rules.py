"""The request rules: what a caller may ask for, checked in this one place by every entry point
(file uploads, `/v1/stream`, the FunASR socket, WebRTC offers, the media-stream adapters,
AudioSocket reservations, SIP INVITEs, batch jobs and the CLI), so that the same mistake gets
the same answer everywhere: an `InvalidRequest` with one status, code and message. HTTP
answers it as it is; a WebSocket sends the message and closes with 4000 + the status; the CLI
prints the message and exits 2.

- `RequestRules.language`: nothing or `auto` detects among the served languages
  (`CALLSCRIBE_LANGUAGES`); anything else must be one of them.
- `check_call_id`, `check_leg`: ids that become database keys and recording file names.
- `RequestRules.hotwords` (any list format), `funasr_hotwords` (FunASR clients' JSON or
  comma-separated phrases), `phrase_hotwords` (plain phrases: Deepgram's keyterms) and
  `hotwords_file`: a request's own hot-words, within the limits.
- `RequestRules.file_options` / `stream_options`: a request's decode options, built from the
  deployment's defaults (languages, hot-words prompted per window, live windows and beam).
"""

import asyncio
import functools
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from asr_core.hotwords import HotwordIndex, HotwordLimits, parse_hotwords, read_hotwords
from asr_core.streaming import EndpointOptions, StreamingOptions
from asr_core.transcribe import TranscribeOptions
from common.errors import ApiError

AUTO = "auto"
CALL_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
"""Call ids name database rows and recording folders: ASCII, no separators, no leading dot."""
LEG = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""Leg names name recording files (`<leg>.wav`)."""


class InvalidRequest(ApiError, ValueError):
    """A request rule was broken. A `ValueError` too, so pydantic validators may apply rules."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(status, code, message)


def check_call_id(value: object) -> str | None:
    """A caller's own call id (None when it gave none: the server makes one up)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not CALL_ID.fullmatch(value):
        raise InvalidRequest(
            "invalid_call_id",
            f"call id {str(value)[:80]!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'",
        )
    return value


def check_sample_rate(value: object, default: int = 16_000) -> int:
    """A client's declared audio rate in Hz: a whole number within what the decoders take
    (JSON numbers such as `1e400` or `16000.5` are refused, not crashed on)."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 4000 <= value <= 192_000:
        raise InvalidRequest(
            "invalid_sample_rate",
            f"sample rate {str(value)[:40]!r}: use a whole number of Hz from 4000 to 192000",
        )
    return value


def check_leg(value: object) -> str:
    if not isinstance(value, str) or not LEG.fullmatch(value):
        raise InvalidRequest(
            "invalid_leg", f"leg name {str(value)[:80]!r}: use 1 to 32 letters, digits, - or _"
        )
    return value


CACHED_LIST_CHARS = 65_536
"""Requests' lists up to this long are kept (clients tend to resend the same list); a larger
one is built again each time, so the cache's memory stays small."""
_INDEX_BUILDS = threading.BoundedSemaphore(2)
"""Requests' lists indexed at once (each in a worker thread, never on the event loop)."""


def _hotwords_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(
        "invalid_hotwords", f"hotwords must be text, not {type(value).__name__}", 400
    )


def _build_index(text: str, limits: HotwordLimits, fmt: str, source: str) -> HotwordIndex:
    with _INDEX_BUILDS:
        return HotwordIndex(parse_hotwords(text, fmt, limits, source=source))  # type: ignore[arg-type]


_cached_index = functools.lru_cache(maxsize=32)(_build_index)


def _request_index(
    text: str, limits: HotwordLimits, fmt: str = "auto", source: str = "hotwords field"
) -> HotwordIndex:
    """Index of a request's list, within the list budgets (`HotwordLimits`)."""
    build = _cached_index if len(text) <= CACHED_LIST_CHARS else _build_index
    return build(text, limits, fmt, source)


@dataclass(frozen=True)
class RequestRules:
    """The rules with the deployment's settings (the composition root builds one)."""

    languages: tuple[str, ...] = ("en", "zh")
    """What `auto` detects among, and all a caller may name."""
    hotword_limits: HotwordLimits = field(default_factory=HotwordLimits)
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    """Defaults of every live stream (windows, beam, endpointing)."""

    # -- language ---------------------------------------------------------------------------

    def language(self, value: object) -> str | None:
        """None (detect per segment or window) for nothing or `auto`, else a served language."""
        if value is None:
            return None
        code = value.strip().lower() if isinstance(value, str) else value
        if code in ("", AUTO):
            return None
        if code not in self.languages:
            raise InvalidRequest(
                "unsupported_language",
                f"language {str(value)[:40]!r} is not supported here: use one of "
                f"{', '.join(self.languages)}, or auto to detect",
            )
        return str(code)

    # -- hot-words ----------------------------------------------------------------------------

    def hotwords(self, text: object) -> HotwordIndex | None:
        """A list in any supported format (errors name the line), or None when empty."""
        text = _hotwords_text(text)
        if not text or not text.strip():
            return None
        return _request_index(text, self.hotword_limits)

    def funasr_hotwords(self, text: object) -> HotwordIndex | None:
        """FunASR clients send a JSON object `{"phrase": weight}` or phrases joined by commas
        (older ones: spaces)."""
        text = _hotwords_text(json.dumps(text) if isinstance(text, dict) else text)
        if not text or not text.strip():
            return None
        text = text.strip()
        if text.startswith("{"):
            return _request_index(text, self.hotword_limits)
        separators = "," if "," in text or "\n" in text else None
        return self.phrase_hotwords(text.replace("\n", ",").split(separators))

    def phrase_hotwords(
        self, phrases: Iterable[str], source: str = "hotwords field"
    ) -> HotwordIndex | None:
        """Plain phrases (Deepgram's `keyterm`s and `keywords`, FunASR's list), one entry
        each, duplicates and blanks dropped."""
        kept = dict.fromkeys(p.strip() for p in phrases if p.strip())
        if not kept:
            return None
        if any("\n" in p or "\t" in p for p in kept):
            raise InvalidRequest("invalid_hotwords", "a hot-word phrase may not hold tabs or lines")
        return _request_index("\n".join(kept), self.hotword_limits, "lines", source)

    async def hotwords_in_thread(self, text: object) -> HotwordIndex | None:
        """`hotwords`, parsed and indexed in a worker thread: a list at its limits takes a
        good part of a second, which the event loop of every live call must not wait for."""
        if not text:
            return None
        return await asyncio.to_thread(self.hotwords, text)

    async def funasr_hotwords_in_thread(self, text: object) -> HotwordIndex | None:
        """`funasr_hotwords` in a worker thread."""
        if not text:
            return None
        return await asyncio.to_thread(self.funasr_hotwords, text)

    def hotwords_file(self, path: Path, fmt: str = "auto") -> HotwordIndex:
        return HotwordIndex(read_hotwords(path, fmt, self.hotword_limits))  # type: ignore[arg-type]

    # -- decode options -----------------------------------------------------------------------

    def file_options(
        self, language: str | None = None, hotwords: HotwordIndex | None = None, **decoding
    ) -> TranscribeOptions:
        """A whole recording's options (uploads, batch jobs, post-call passes, the CLI);
        `decoding` sets other `TranscribeOptions` fields (beam, word times, prompt)."""
        return TranscribeOptions(
            language=language,
            allowed_languages=self.languages,
            hotword_index=hotwords,
            hotword_top_k=self.hotword_limits.top_k,
            **decoding,
        )

    def stream_options(
        self,
        language: str | None = None,
        endpoint: EndpointOptions | None = None,
        emit_partials: bool = True,
    ) -> StreamingOptions:
        """A live stream's options: the deployment's defaults with the stream's own choices."""
        decoding = replace(
            self.streaming.decoding,
            language=language,
            allowed_languages=self.languages,
            hotword_top_k=self.hotword_limits.top_k,
        )
        return replace(
            self.streaming,
            decoding=decoding,
            endpoint=endpoint or self.streaming.endpoint,
            emit_partials=emit_partials,
        )
