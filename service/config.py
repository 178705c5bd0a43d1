"""What the ASR service is given: its limits, the request rules and its hooks into the rest of
a deployment (who is calling, their standing hot-words). Plain data: whoever builds the service
fills it (the composition root from `Settings`, or a test)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from asr_core.hotwords import HotwordIndex
from common.rules import RequestRules
from service.quotas import QuotaLimits

Authenticator = Callable[[HTTPConnection], Awaitable[object]]
"""Looks at a request or WebSocket (headers, query token) and returns who is calling, or raises
`common.errors.Unauthorized`."""
HotwordsFor = Callable[[object], HotwordIndex | None]
"""A caller's standing hot-words (a tenant's active lists), given who `Authenticator` said it
is."""
FetchAudio = Callable[[str], bytes]
"""The bytes at a URL a caller asked the service to transcribe (Deepgram's `{"url": ...}`);
raises `ValueError` with the reason it will not or cannot."""
SubmitJob = Callable[[object, bytes | None, str | None, str | None, str], str]
"""`(caller, audio, url, language, webhook_url) -> job id`: queues a batch job whose result is
posted to `webhook_url` (Deepgram's `callback`); raises `common.errors.ApiError` to refuse."""


@dataclass(frozen=True)
class BodyLimit:
    """Bodies of requests whose path matches `pattern` (a regex, from the start) are capped
    at `max_bytes`; `setting` names the limit in the answer."""

    pattern: str
    max_bytes: int
    setting: str
    max_json_values: int = 10_000
    """A JSON body's values (counted as its commas, arrays and objects) are capped too:
    `json.loads` holds the interpreter for as long as it runs, and its time grows with the
    values, not the bytes (2 MB of `[],` takes about a second)."""


@dataclass
class ServiceConfig:
    max_upload_bytes: int = 100_000_000
    """Audio uploads (`/v1/audio/...`)."""
    max_request_bytes: int = 16_000
    """Any other request body (JSON of tokens, settings, offers): parsed whole on the event
    loop, so kept small."""
    body_limits: tuple[BodyLimit, ...] = ()
    """Other routes' own caps (hot-word lists, batch jobs), from whoever mounts them."""
    rules: RequestRules = field(default_factory=RequestRules)
    """Languages, hot-word limits and live-stream defaults every request is checked against."""
    max_concurrent_transcriptions: int = 2
    """File jobs decoding at once; more wait their turn instead of thrashing the CPU."""
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
    authenticate: Authenticator | None = None
    """Checks every request and stream (see `auth.py`); None lets everyone in."""
    hotwords_for: HotwordsFor | None = None
    """The caller's standing hot-words (a tenant's active lists), given what `authenticate`
    returned; merged with per-request phrases. The first call for a caller may query (it runs
    in a worker thread); live streams call it again at each segment start, so later calls must
    be quick (a cache) and reflect list changes."""
    local_origins: tuple[str, ...] | None = None
    """Local mode (keyless callers on loopback are let in): the web origins, besides the
    server's own, whose pages may call it; every request's `Host` and `Origin` are then
    checked (`service.browsers`). None: no such check (every caller needs a key)."""
    fetch_audio: FetchAudio | None = None
    """Fetches prerecorded requests' URLs (the root: public addresses only, unless allowed, as
    batch jobs do, within `max_upload_bytes`); None: URL requests are refused."""
    submit_job: SubmitJob | None = None
    """Queues prerecorded requests with a `callback` as batch jobs (the admin backend's);
    None: such requests are refused."""
    quota_limits: QuotaLimits = field(default_factory=QuotaLimits)
    """Per-tenant streams, transcriptions and requests per minute."""
    max_streams: int = 0
    """Live sockets (`/v1/stream`, FunASR) this process carries at once, all callers together;
    past it new ones are refused with 4429 (0: no limit). Gateways streaming to a pool of ASR
    cores read the count and the limit from `/healthz` to place their calls."""
