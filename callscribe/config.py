"""Settings from environment variables (`CALLSCRIBE_*`) or a `.env` file, grouped by the part
they configure. Every variable keeps its flat name (`CALLSCRIBE_SIP_PORT`); lists are parsed
(and checked) once, here, so a typo stops the start with the variable's name. The composition
root maps them into each part's own config (`callscribe.parts`)."""

import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asr_core.engines.funaudio.options import FunAudioOptions, SglangOptions
from asr_core.hotwords import HotwordLimits
from asr_core.streaming import StreamingOptions
from common.rules import RequestRules
from telephony.sip.config import AllowList

Role = Literal["serve", "cli", "worker"]
"""Which process decodes: the server (live streams), a one-shot command, or a post-call
worker."""


def web_origins(value: object) -> object:
    """A comma-separated list of web origins (`scheme://host[:port]`), each checked."""
    origins = comma_list(value)
    for origin in origins if isinstance(origins, tuple) else ():
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or origin != f"{parts.scheme}://{parts.netloc}":
            raise ValueError(f"{origin!r} is not a web origin (scheme://host[:port], no path)")
    return origins


def comma_list(value: object) -> object:
    """`"a, b,,c"` -> `("a", "b", "c")`; anything else is left to pydantic."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class _Group(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLSCRIBE_", env_file=".env", extra="ignore", arbitrary_types_allowed=True
    )


class EngineSettings(_Group):
    """The ASR engine: which model, on what, with how many decodes at once."""

    model: str = Field(
        "whisper-base",
        description="Registry name, CTranslate2 Whisper folder or Fun-ASR-Nano folder",
    )
    engine: Literal["auto", "whisper", "funaudio"] = Field(
        "auto", description="auto: funaudio for a folder with model.pt + config.yaml"
    )
    funaudio_backend: Literal["transformers", "sglang"] = Field(
        "transformers", description="Where the FunAudio LLM decodes (sglang: on a GPU)"
    )
    funaudio_dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto", description="FunAudio adaptor/LLM precision (auto: bfloat16 on GPU, else float32)"
    )
    funaudio_lora: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="peft LoRA adapter folders merged into the LLM, comma-separated"
    )
    sglang_url: str | None = Field(
        None, description="A running SGLang server (unset: start one, needs the gpu extra)"
    )
    sglang_port: int = Field(30000, ge=1, le=65535, description="Port of a managed SGLang")
    model_cache_dir: Path | None = Field(None, description="Where bundled models are assembled")
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(0, ge=0, description="Threads per decode; 0: cores / decode_workers")
    decode_workers: int = Field(
        0,
        ge=0,
        le=16,
        description="Decodes that run at once; 0: two when serving on 2+ cores (a live final "
        "then never waits behind partials), one for one-shot commands",
    )

    def funaudio_options(self, cpu_threads: int = 0) -> FunAudioOptions:
        return FunAudioOptions(
            device=self.device,
            dtype=self.funaudio_dtype,
            cpu_threads=cpu_threads,
            backend=self.funaudio_backend,
            sglang=SglangOptions(url=self.sglang_url, port=self.sglang_port),
            lora=self.funaudio_lora,
        )

    @field_validator("funaudio_lora", mode="before")
    @classmethod
    def _split_lora(cls, value: object) -> object:
        return comma_list(value)


class RequestSettings(_Group):
    """What callers may ask for, and the defaults of what they do not (see `common.rules`)."""

    languages: Annotated[tuple[str, ...], NoDecode] = ("en", "zh")
    """`CALLSCRIBE_LANGUAGES=en,zh`: a comma-separated list, not JSON."""
    hotwords_top_k: int = Field(10, ge=1, le=50, description="Phrases prompted per window")
    hotwords_max_phrases: int = Field(5000, ge=1)
    hotwords_max_chars: int = Field(64, ge=1)
    hotwords_max_aliases: int = Field(
        20_000, ge=0, description="Aliases a hot-word list (or a request's list) may hold in all"
    )
    hotwords_max_list_chars: int = Field(
        300_000,
        ge=1,
        description="Characters of phrases and aliases a hot-word list (or a request's list) "
        "may hold in all",
    )
    hotwords_max_active_lists: int = Field(
        20, ge=1, description="Hot-word lists a tenant may have active at once"
    )
    hotwords_max_body_kb: float = Field(
        2048.0, gt=0, description="Largest body of a hot-word list write or a WebRTC offer"
    )
    stream_final_window_s: float = Field(
        15.0, ge=5.0, le=30.0, description="Shortest encoder window of a live final"
    )
    stream_partial_window_s: float = Field(
        10.0, ge=5.0, le=30.0, description="Shortest encoder window of a partial"
    )
    stream_beam_size: int = Field(5, ge=1, le=10, description="Beam size of live finals")
    stream_tail_finals: bool = Field(
        True,
        description="Commit a long utterance's settled words at its pauses, so that its final "
        "decodes only what follows them",
    )

    def hotword_limits(self) -> HotwordLimits:
        return HotwordLimits(
            self.hotwords_max_phrases,
            self.hotwords_max_chars,
            self.hotwords_top_k,
            max_aliases=self.hotwords_max_aliases,
            max_list_chars=self.hotwords_max_list_chars,
        )

    def streaming_options(self) -> StreamingOptions:
        """Defaults of every live stream: the final windows, partial windows and beam."""
        defaults = StreamingOptions()
        return replace(
            defaults,
            decoding=replace(defaults.decoding, beam_size=self.stream_beam_size),
            final_window_s=self.stream_final_window_s,
            partial_window_s=self.stream_partial_window_s,
            tail_finals=self.stream_tail_finals,
        )

    def request_rules(self) -> RequestRules:
        return RequestRules(self.languages, self.hotword_limits(), self.streaming_options())

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        return comma_list(value)


class StorageSettings(_Group):
    """The admin database, this server's files, and the hot-word bus between processes."""

    database_url: str = Field(
        "sqlite:///var/callscribe.db", description="Admin database (SQLite file or PostgreSQL)"
    )
    var_dir: Path = Field(Path("var"), description="Where the server keeps its own files")
    redis_url: str | None = Field(
        None, description="Hot-word bus between processes (unset: in-process, one server)"
    )
    hotword_resync_s: float = Field(30.0, gt=0, description="Hot-word resync period")


class ServerSettings(_Group):
    """The HTTP server: where it listens, who may call, and per-tenant limits."""

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    auth: Literal["auto", "keys", "local"] = Field(
        "auto",
        description="keys: every call needs a key or token; local: callers on this machine "
        "without one act as tenant `local`; auto: local when bound to loopback, else keys",
    )
    token_secret: str | None = Field(
        None,
        description="Signs browser stream tokens; share it between processes behind one "
        "address (default: a random secret kept in var_dir/token-secret)",
    )
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Local mode: web origins (besides the server's own and "
        "CALLSCRIBE_WEBRTC_ORIGINS) whose pages may call the server, comma-separated",
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed, comma-separated (unset: none, the peer is the caller)",
    )
    max_upload_mb: float = Field(100.0, gt=0, description="Largest audio upload")
    max_request_kb: float = Field(
        16.0, gt=0, description="Largest body of any other request (tokens, settings, JSON)"
    )
    max_concurrent_transcriptions: int = Field(2, ge=1)
    stream_final_batch: int = Field(
        1,
        ge=1,
        le=32,
        description="Most live finals of different streams decoded in one batch (1 on a CPU, "
        "where a batch costs about as much as its finals one by one; more on a GPU)",
    )
    max_streams: int = Field(
        0,
        ge=0,
        description="Live sockets (/v1/stream, FunASR) this process carries at once; past it "
        "new ones are refused with 4429, and gateways place their calls on other ASR cores "
        "(0: no limit)",
    )
    asr_service_key: str | None = Field(
        None,
        description="The key gateways present to ASR cores (the same on both): with it a "
        "stream names the tenant it carries (unset: this process takes no gateway streams)",
    )
    tenant_max_streams: int = Field(20, ge=1, description="Live streams per tenant at once")
    tenant_max_transcriptions: int = Field(4, ge=1, description="File jobs per tenant at once")
    tenant_requests_per_minute: int = Field(600, ge=1)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_allowed_origins(cls, value: object) -> object:
        return web_origins(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        proxies = comma_list(value)
        for proxy in proxies if isinstance(proxies, tuple) else ():
            ipaddress.ip_network(proxy, strict=False)  # ValueError: not an address or network
        return proxies


class TelephonySettings(_Group):
    """Calls: how many, their recordings, the gateways (AudioSocket, SIP, WebRTC)."""

    max_calls: int = Field(32, ge=1, description="Calls this process takes at once")
    asr_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="ASR cores this gateway streams its calls to, comma-separated "
        "(`ws://asr-1:7860,ws://asr-2:7860`; unset: calls are decoded in this process)",
    )
    record_calls: bool = Field(True, description="Keep a 16 kHz WAV per call leg in var_dir")
    node_lease_s: float = Field(
        60.0,
        gt=0,
        description="A process holding calls that has not renewed its lease for this long is "
        "taken for dead: the others mark its active calls interrupted",
    )
    audiosocket_port: int | None = Field(
        None, ge=0, le=65535, description="Asterisk AudioSocket TCP port (unset: off; 0: any)"
    )
    audiosocket_host: str = Field("127.0.0.1", description="Address AudioSocket binds to")
    tenant_max_reservations: int = Field(
        100, ge=1, description="AudioSocket reservations one tenant may have waiting at once"
    )
    sip_port: int | None = Field(
        None, ge=1, le=65535, description="SIP gateway UDP port (unset: no SIP gateway)"
    )
    sip_tcp_port: int | None = Field(
        None, ge=1, le=65535, description="SIP over TCP port (unset: the UDP port)"
    )
    sip_host: str = Field("127.0.0.1", description="Address SIP and RTP bind to and announce")
    rtp_port_min: int = Field(40000, ge=1024, le=65535, description="First RTP port")
    rtp_port_max: int = Field(40999, ge=1024, le=65535, description="Last RTP port")
    sip_allow: Annotated[AllowList, NoDecode] = Field(
        default_factory=AllowList,
        description="Callers trusted without a key, by source address: "
        "`acme=10.0.0.0/8,10.1.0.1;globex=192.0.2.7`",
    )
    sip_max_failures_per_minute: int = Field(
        30,
        ge=1,
        description="SIP requests from one address that may fail (unparseable, or refused "
        "as unauthenticated) per minute before the gateway ignores it for the minute",
    )
    sip_rtp_timeout_s: float = Field(
        30.0, gt=0, description="A SIP call with no RTP for this long is ended"
    )
    sip_processes: int = Field(
        0,
        ge=0,
        le=64,
        description="SIP user-agent processes, 4 calls each (pjsua2's limit per process); "
        "0: enough for CALLSCRIBE_MAX_CALLS",
    )
    webrtc_ice_servers: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="STUN/TURN URLs for WebRTC calls, comma-separated (unset: none; never a "
        "public default)",
    )
    webrtc_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="IPs offered as WebRTC host candidates, comma-separated (unset: aioice's "
        "choice, which never includes loopback; 127.0.0.1 for a browser on this machine)",
    )
    webrtc_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Web origins whose pages may embed captions (load /demo/callscribe-webrtc.js "
        "and post WebRTC offers cross-origin), comma-separated (unset: none)",
    )

    @field_validator("asr_urls", mode="before")
    @classmethod
    def _parse_asr_urls(cls, value: object) -> object:
        urls = comma_list(value)
        for url in urls if isinstance(urls, tuple) else ():
            parts = urlsplit(url)
            if (
                parts.scheme not in ("ws", "wss")
                or not parts.hostname
                or parts.path not in ("", "/")
            ):
                raise ValueError(f"{url!r} is not an ASR core's address (ws://host:port or wss://)")
        return urls

    @field_validator("sip_allow", mode="before")
    @classmethod
    def _parse_allow_list(cls, value: object) -> object:
        return AllowList(value) if isinstance(value, str) else value

    @field_validator("webrtc_ice_servers", mode="before")
    @classmethod
    def _split_ice_servers(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("webrtc_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        hosts = comma_list(value)
        for host in hosts if isinstance(hosts, tuple) else ():
            ipaddress.ip_address(host)  # ValueError: not an IP
        return hosts

    @field_validator("webrtc_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return web_origins(value)


class WorkerSettings(_Group):
    """The post-call and batch worker: its broker, retries, jobs and webhooks."""

    broker_url: str | None = Field(
        None,
        description="Celery broker (and result backend) of the post-call and batch worker, "
        "e.g. redis://redis:6379/1 (unset: a SQLite broker file in var_dir)",
    )
    worker_embedded: bool = Field(
        True, description="`callscribe serve` runs a worker process beside itself"
    )
    worker_concurrency: int = Field(1, ge=1, description="Tasks one worker runs at once")
    worker_visibility_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="A task taken by a worker that dies unacknowledged goes back to the queue "
        "after this long (longer than the longest task)",
    )
    worker_max_retries: int = Field(3, ge=0, description="Retries of a task that failed")
    worker_retry_base_s: float = Field(
        5.0, gt=0, description="First retry delay of tasks and webhooks; doubles each time"
    )
    postcall: bool = Field(True, description="Re-transcribe every recorded call after hang-up")
    job_max_mb: float = Field(100.0, gt=0, description="Largest batch job input per tenant")
    job_keep_input: bool = Field(
        False,
        description="Keep a batch job's input file (var/jobs/<id>/) after the job is done "
        "(by default it is deleted once the transcript is stored or the job failed)",
    )
    tenant_max_active_jobs: int = Field(
        4, ge=1, description="Batch jobs a tenant may have queued or running"
    )
    webhook_max_attempts: int = Field(6, ge=1, description="Attempts per webhook")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook attempt")
    outbound_allow_private: bool = Field(
        False,
        description="Job URLs and webhooks may reach loopback and private addresses "
        "(otherwise public ones only: a tenant must not reach the server's network)",
    )


class LogSettings(_Group):
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class DecodePlan:
    workers: int
    """Decodes run at once (the live scheduler's workers)."""
    parallel: int
    """Parallel calls the engine must allow: the workers, and when serving the first-partial
    lane beside them."""
    threads: int
    """Threads per decode: cores split between the decodes (a decode barely gains from a
    second thread, while a second decode beside it doubles what the box does)."""


class Settings(
    EngineSettings,
    RequestSettings,
    StorageSettings,
    ServerSettings,
    TelephonySettings,
    WorkerSettings,
    LogSettings,
):
    """Every setting of a deployment (one process reads all, and uses its part's)."""

    @model_validator(mode="after")
    def _gateways_need_the_service_key(self) -> "Settings":
        if self.asr_urls and not self.asr_service_key:
            raise ValueError(
                "CALLSCRIBE_ASR_URLS needs CALLSCRIBE_ASR_SERVICE_KEY (the cores' service key)"
            )
        return self

    def decode_plan(self, role: Role) -> DecodePlan:
        cores = os.cpu_count() or 1
        if role == "worker":  # one decode per task, tasks side by side
            return DecodePlan(1, 1, self.cpu_threads or max(1, cores // self.worker_concurrency))
        workers = self.decode_workers or (min(2, cores) if role == "serve" else 1)
        lane = 1 if role == "serve" else 0
        return DecodePlan(workers, workers + lane, self.cpu_threads or max(1, cores // workers))


def get_settings(**overrides: object) -> Settings:
    """The environment's settings; `overrides` (command-line flags) win over it, and None means
    "not given"."""
    return Settings(**{name: value for name, value in overrides.items() if value is not None})
