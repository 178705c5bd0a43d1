"""peft LoRA adapters on the LLM: FunASR's defaults (r=16, alpha=32, q_proj/v_proj), several
named adapters side by side (one per tenant or domain), and merging one into the weights for
serving, so decoding costs nothing extra and SGLang sees a plain model."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from asr_core.engines.funaudio.checkpoint import CheckpointError


@dataclass(frozen=True)
class LoraOptions:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")

    def peft_config(self) -> LoraConfig:
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            task_type="CAUSAL_LM",
        )


def new_adapter(llm: nn.Module, options: LoraOptions | None = None) -> PeftModel:
    """A fresh trainable adapter (B starts at zero, so outputs are unchanged until trained)."""
    return get_peft_model(llm, (options or LoraOptions()).peft_config())


def attach_adapters(llm: nn.Module, adapters: Mapping[str, Path]) -> PeftModel:
    """Load saved adapters by name; `set_adapter(name)` picks the one that decodes."""
    model: PeftModel | None = None
    for name, path in adapters.items():
        try:
            if model is None:
                model = PeftModel.from_pretrained(llm, str(path), adapter_name=name)
            else:
                model.load_adapter(str(path), adapter_name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError("lora", f"adapter {name!r} at {path} cannot load: {exc}") from exc
    if model is None:
        raise ValueError("no adapters given")
    return model.eval()


def merge_adapters(llm: nn.Module, paths: list[Path]) -> nn.Module:
    """The LLM with every adapter in `paths` folded into its weights (W + alpha/r * B A)."""
    if not paths:
        return llm
    model = attach_adapters(llm, {f"adapter{i}": path for i, path in enumerate(paths)})
    return model.merge_and_unload(adapter_names=list(model.peft_config))
