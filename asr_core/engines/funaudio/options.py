"""How to run a Fun-ASR-Nano checkpoint; torch-free so settings can build it cheaply."""

from dataclasses import dataclass, field
from typing import Literal

Dtype = Literal["auto", "bfloat16", "float32"]
"""Adaptor and LLM precision; float16 is refused (the adaptor output overflows it)."""


@dataclass
class SglangOptions:
    url: str | None = None
    """An external server (`http://host:port`); None starts a managed one beside the engine."""
    port: int = 30000
    """Port of a managed server (on 127.0.0.1)."""
    launch_timeout_s: float = 600.0
    request_timeout_s: float = 120.0
    extra_args: tuple[str, ...] = ()
    """More `sglang.launch_server` arguments for a managed server (e.g. --mem-fraction-static)."""


@dataclass
class FunAudioOptions:
    device: str = "cpu"
    dtype: Dtype = "auto"
    """auto: bfloat16 on a GPU, float32 on CPU. The encoder always runs in float32."""
    cpu_threads: int = 0
    """torch intra-op threads on CPU; 0 leaves torch's default."""
    backend: Literal["transformers", "sglang"] = "transformers"
    sglang: SglangOptions = field(default_factory=SglangOptions)
    lora: tuple[str, ...] = ()
    """peft adapter folders merged into the LLM at load (a tenant's or a domain's)."""
    itn: bool = True
    """Inverse text normalisation (numbers as digits); False adds the prompt's ITN switch."""
    max_new_tokens: int = 512
    tokens_per_second: float = 12.0
    """Partial decodes stop after this many new tokens per second of audio (plus 8)."""
    history_context: bool = True
    """Previous text goes into the hot-word prompt's 历史转写结果 line."""
