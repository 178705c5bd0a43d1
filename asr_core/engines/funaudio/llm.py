"""The LLM: a transformers causal LM built from the folder's `Qwen3-0.6B/config.json` (never
downloaded), its weights taken from model.pt's `llm.*` tensors exactly as FunASR does (they
are fine-tuned, not upstream Qwen3's), and its tokenizer from the same folder."""

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase
from transformers.initialization import no_init_weights

from asr_core.engines.funaudio.checkpoint import CheckpointError, load_group

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


def build_llm(folder: Path, tensors: dict[str, torch.Tensor] | None) -> torch.nn.Module:
    """The LLM with model.pt's weights (float32; the caller picks the serving dtype)."""
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError("llm", f"cannot read the LLM config in {folder}: {exc}") from exc
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = dict(tensors or {})
    if getattr(config, "tie_word_embeddings", False) and "model.embed_tokens.weight" in tensors:
        tensors.setdefault("lm_head.weight", tensors["model.embed_tokens.weight"])
    load_group(model, "llm", tensors)
    model.tie_weights()
    return model.eval()


def load_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError("llm", f"cannot load the tokenizer in {folder}: {exc}") from exc
    missing = [t for t in ("<|im_start|>", *STOP_TOKENS) if t not in tokenizer.get_vocab()]
    if missing:
        raise CheckpointError("llm", f"the tokenizer in {folder} lacks {', '.join(missing)}")
    return tokenizer


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    return tuple(tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS)
