"""Deepgram's query parameters, read into one typed object for every `listen` entry point.

Every value is bounded before it is used: the query may hold at most `MAX_QUERY_ITEMS`
items, a value at most `MAX_VALUE_CHARS`, `keyterm`/`keywords` at most `MAX_KEYTERMS`. The
language and the hot-words are checked by the request rules (`common.rules`), like every
other entry point's. Unknown parameters are ignored, as Deepgram does.
"""

from dataclasses import dataclass

from starlette.datastructures import QueryParams

from asr_core.hotwords import HotwordIndex
from common.rules import InvalidRequest, RequestRules

MAX_QUERY_ITEMS = 300
MAX_VALUE_CHARS = 2048
MAX_KEYTERMS = 100
"""Deepgram allows about 500 tokens of keyterms; 100 phrases of up to 64 characters fit."""
ENCODINGS = {"linear16": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}
SAMPLE_RATES = (8000, 16000, 48000)
MAX_CHANNELS = 4
"""Each channel of a multichannel stream is recognised on its own (a leg each)."""
MULTI_LANGUAGE = "multi"


@dataclass(frozen=True)
class ListenParams:
    """A `listen` request's options (live v1, Flux v2 and prerecorded share them)."""

    model: str = ""
    language: str | None = None
    """None: detect among the served languages (`multi`, unset or `auto`)."""
    encoding: str | None = None
    """Our raw encoding name (`pcm_s16le`, `mulaw`, `alaw`); None: not given."""
    sample_rate: int | None = None
    channels: int = 1
    multichannel: bool = False
    interim_results: bool = False
    endpointing_ms: int | None = None
    """Silence that ends an utterance (None: the server's default)."""
    speech_final: bool = True
    """False with `endpointing=false`: no result is marked `speech_final`."""
    utterance_end_ms: int | None = None
    vad_events: bool = False
    utterances: bool = False
    callback: str | None = None
    hotwords: HotwordIndex | None = None
    """`keyterm` and `keywords` phrases (merged with the caller's standing lists)."""
    eot_threshold: float = 0.7
    eager_eot_threshold: float | None = None
    eot_timeout_ms: int = 5000

    @property
    def raw_encoding(self) -> str:
        return self.encoding or "pcm_s16le"

    @property
    def raw_sample_rate(self) -> int:
        if self.sample_rate is not None:
            return self.sample_rate
        return 16000 if self.raw_encoding == "pcm_s16le" else 8000


def parse_listen(query: QueryParams, rules: RequestRules, live: bool = True) -> ListenParams:
    """The request's options; raises `InvalidRequest` naming the first bad parameter."""
    items = query.multi_items()
    if len(items) > MAX_QUERY_ITEMS:
        raise InvalidRequest("invalid_query", f"more than {MAX_QUERY_ITEMS} query parameters")
    for name, value in items:
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidRequest("invalid_query", f"{name[:40]}: longer than {MAX_VALUE_CHARS}")
    single = {name: value for name, value in items}
    encoding = _encoding(single.get("encoding"))
    sample_rate = _choice(single, "sample_rate", SAMPLE_RATES)
    if encoding in ("mulaw", "alaw") and sample_rate not in (None, 8000):
        raise InvalidRequest(
            "invalid_query", f"sample_rate: {encoding} is carried at 8000 Hz, not {sample_rate}"
        )
    if live and sample_rate is None and single.get("encoding") is not None:
        sample_rate = 16000 if encoding == "pcm_s16le" else 8000
    channels = _integer(single, "channels", 1, MAX_CHANNELS, default=1)
    endpointing = single.get("endpointing")
    disabled = endpointing is not None and endpointing.strip().lower() == "false"
    eager = single.get("eager_eot_threshold")
    return ListenParams(
        model=single.get("model", "")[:100],
        language=_language(single, rules),
        encoding=encoding,
        sample_rate=sample_rate,
        channels=channels,
        multichannel=_flag(single, "multichannel"),
        interim_results=_flag(single, "interim_results"),
        endpointing_ms=None
        if disabled or endpointing is None
        else _integer(single, "endpointing", 0, 60_000),
        speech_final=not disabled,
        utterance_end_ms=None
        if single.get("utterance_end_ms") is None
        else _integer(single, "utterance_end_ms", 100, 60_000),
        vad_events=_flag(single, "vad_events"),
        utterances=_flag(single, "utterances"),
        callback=single.get("callback") or None,
        hotwords=_hotwords(items, rules),
        eot_threshold=_number(single, "eot_threshold", 0.5, 0.9, 0.7),
        eager_eot_threshold=None
        if eager is None
        else _number(single, "eager_eot_threshold", 0.3, 0.9),
        eot_timeout_ms=_integer(single, "eot_timeout_ms", 500, 10_000, default=5000),
    )


def _language(single: dict[str, str], rules: RequestRules) -> str | None:
    value = single.get("language") or single.get("language_hint")
    if value is None or value.strip().lower() == MULTI_LANGUAGE:
        return None
    code = value.strip().lower().split("-")[0]  # en-US -> en, zh-CN -> zh
    return rules.language(code)


def _hotwords(items: list[tuple[str, str]], rules: RequestRules) -> HotwordIndex | None:
    phrases = [value for name, value in items if name == "keyterm"]
    for name, value in items:
        if name == "keywords":  # `word:boost`; a negative boost suppresses, so it is no hot-word
            word, _, boost = value.rpartition(":") if ":" in value else (value, "", "")
            if not boost.strip().startswith("-"):
                phrases.append(word)
    if len(phrases) > MAX_KEYTERMS:
        raise InvalidRequest(
            "invalid_query", f"keyterm/keywords: {len(phrases)} phrases, at most {MAX_KEYTERMS}"
        )
    return rules.phrase_hotwords(phrases, source="keyterm/keywords")


def _encoding(value: str | None) -> str | None:
    if value is None:
        return None
    name = value.strip().lower()
    if name not in ENCODINGS:
        raise InvalidRequest(
            "invalid_query",
            f"encoding: {value[:40]!r} is not supported; use {', '.join(ENCODINGS)}",
        )
    return ENCODINGS[name]


def _flag(single: dict[str, str], name: str) -> bool:
    value = single.get(name)
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0", ""):
        raise InvalidRequest("invalid_query", f"{name}: expected true or false, not {value[:40]!r}")
    return lowered in ("true", "1")


def _integer(
    single: dict[str, str], name: str, low: int, high: int, default: int | None = None
) -> int:
    value = single.get(name)
    if value is None and default is not None:
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidRequest("invalid_query", f"{name}: expected a whole number") from None
    if not low <= number <= high:
        raise InvalidRequest("invalid_query", f"{name}: {number} is outside {low}-{high}")
    return number


def _number(
    single: dict[str, str], name: str, low: float, high: float, default: float | None = None
) -> float:
    value = single.get(name)
    if value is None and default is not None:
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidRequest("invalid_query", f"{name}: expected a number") from None
    if not low <= number <= high:
        raise InvalidRequest("invalid_query", f"{name}: {number} is outside {low}-{high}")
    return number


def _choice(single: dict[str, str], name: str, allowed: tuple[int, ...]) -> int | None:
    if single.get(name) is None:
        return None
    number = _integer(single, name, 0, 10**6)
    if number not in allowed:
        raise InvalidRequest(
            "invalid_query",
            f"{name}: {number} is not supported; use {', '.join(map(str, allowed))}",
        )
    return number
