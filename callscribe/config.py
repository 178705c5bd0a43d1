"""Settings from environment variables (`CALLSCRIBE_*`) or a `.env` file."""

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asr_core.engines.funaudio.options import FunAudioOptions, SglangOptions
from asr_core.hotwords import HotwordLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLSCRIBE_", env_file=".env", extra="ignore")

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
    funaudio_lora: str = Field(
        "", description="peft LoRA adapter folders merged into the LLM, comma-separated"
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
    languages: Annotated[tuple[str, ...], NoDecode] = ("en", "zh")
    """`CALLSCRIBE_LANGUAGES=en,zh`: a comma-separated list, not JSON."""
    hotwords_top_k: int = Field(10, ge=1, le=50, description="Phrases prompted per window")
    hotwords_max_phrases: int = Field(5000, ge=1)
    hotwords_max_chars: int = Field(64, ge=1)

    database_url: str = Field(
        "sqlite:///var/callscribe.db", description="Admin database (SQLite file or PostgreSQL)"
    )
    var_dir: Path = Field(Path("var"), description="Where the server keeps its own files")

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
    redis_url: str | None = Field(
        None, description="Hot-word bus between processes (unset: in-process, one server)"
    )
    hotword_resync_s: float = Field(30.0, gt=0, description="Hot-word resync period")
    tenant_max_streams: int = Field(20, ge=1, description="Live streams per tenant at once")
    tenant_max_transcriptions: int = Field(4, ge=1, description="File jobs per tenant at once")
    tenant_requests_per_minute: int = Field(600, ge=1)

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    max_upload_mb: float = Field(100.0, gt=0)
    max_concurrent_transcriptions: int = Field(2, ge=1)

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
    stream_final_batch: int = Field(
        1,
        ge=1,
        le=32,
        description="Most live finals of different streams decoded in one batch (1 on a CPU, "
        "where a batch costs about as much as its finals one by one; more on a GPU)",
    )

    max_calls: int = Field(32, ge=1, description="Calls this process takes at once")
    record_calls: bool = Field(True, description="Keep a 16 kHz WAV per call leg in var_dir")
    audiosocket_port: int | None = Field(
        None, ge=0, le=65535, description="Asterisk AudioSocket TCP port (unset: off; 0: any)"
    )
    audiosocket_host: str = Field("127.0.0.1", description="Address AudioSocket binds to")

    sip_port: int | None = Field(
        None, ge=1, le=65535, description="SIP gateway UDP port (unset: no SIP gateway)"
    )
    sip_tcp_port: int | None = Field(
        None, ge=1, le=65535, description="SIP over TCP port (unset: the UDP port)"
    )
    sip_host: str = Field("127.0.0.1", description="Address SIP and RTP bind to and announce")
    rtp_port_min: int = Field(40000, ge=1024, le=65535, description="First RTP port")
    rtp_port_max: int = Field(40999, ge=1024, le=65535, description="Last RTP port")
    sip_allow: str = Field(
        "",
        description="Callers trusted without a key, by source address: "
        "`acme=10.0.0.0/8,10.1.0.1;globex=192.0.2.7`",
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
    webrtc_ice_servers: str = Field(
        "",
        description="STUN/TURN URLs for WebRTC calls, comma-separated (unset: none; never a "
        "public default)",
    )
    webrtc_hosts: str = Field(
        "",
        description="IPs offered as WebRTC host candidates, comma-separated (unset: aioice's "
        "choice, which never includes loopback; 127.0.0.1 for a browser on this machine)",
    )
    webrtc_origins: str = Field(
        "",
        description="Web origins whose pages may embed captions (load /demo/callscribe-webrtc.js "
        "and post WebRTC offers cross-origin), comma-separated (unset: none)",
    )

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
    node_lease_s: float = Field(
        60.0,
        gt=0,
        description="A process holding calls that has not renewed its lease for this long is "
        "taken for dead: the others mark its active calls interrupted",
    )
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

    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"

    def workers(self, serving: bool) -> int:
        if self.decode_workers:
            return self.decode_workers
        return min(2, os.cpu_count() or 1) if serving else 1

    def parallel_decodes(self, serving: bool) -> int:
        """Decodes the engine runs at once: the workers, and when serving the first-partial
        lane beside them."""
        return self.workers(serving) + (1 if serving else 0)

    def threads_per_decode(self, serving: bool) -> int:
        """Cores split between the workers: a decode barely gains from a second thread,
        while a second decode beside it doubles what the box does."""
        return self.cpu_threads or max(1, (os.cpu_count() or 1) // self.workers(serving))

    def funaudio_options(self, serving: bool) -> FunAudioOptions:
        return FunAudioOptions(
            device=self.device,
            dtype=self.funaudio_dtype,
            cpu_threads=self.threads_per_decode(serving),
            backend=self.funaudio_backend,
            sglang=SglangOptions(url=self.sglang_url, port=self.sglang_port),
            lora=tuple(p.strip() for p in self.funaudio_lora.split(",") if p.strip()),
        )

    def hotword_limits(self) -> HotwordLimits:
        return HotwordLimits(
            self.hotwords_max_phrases, self.hotwords_max_chars, self.hotwords_top_k
        )

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


def get_settings() -> Settings:
    return Settings()
