"""A Fun-ASR-Nano folder, loaded: config.yaml, model.pt split into its tensor groups, the
Qwen3 folder, the CTC tokenizer, and optional LoRA adapters merged in."""

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from asr_core.engines.funaudio.adaptor import TransformerAdaptor
from asr_core.engines.funaudio.checkpoint import (
    CheckpointError,
    load_group,
    read_state_dict,
    split_groups,
)
from asr_core.engines.funaudio.config import FunAudioConfig, read_config
from asr_core.engines.funaudio.ctc import TOKENIZER_FILE, CtcHead, PieceVocabulary
from asr_core.engines.funaudio.encoder import SenseVoiceEncoder
from asr_core.engines.funaudio.llm import build_llm, load_tokenizer
from asr_core.engines.funaudio.lora import merge_adapters

logger = logging.getLogger(__name__)

_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class FunAudioModel:
    config: FunAudioConfig
    encoder: SenseVoiceEncoder
    """Always float32: its ops are float32-only in FunASR too."""
    adaptor: TransformerAdaptor
    llm: nn.Module
    tokenizer: PreTrainedTokenizerBase
    ctc: CtcHead | None
    vocabulary: PieceVocabulary | None
    llm_folder: Path
    dtype: torch.dtype
    device: torch.device


def serving_dtype(requested: str, device: torch.device) -> torch.dtype:
    """bfloat16 or float32, never float16: adaptor outputs reach |x| ~ 1200 and overflow it."""
    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if requested not in _DTYPES:
        raise CheckpointError(
            "options", f"dtype {requested!r} is not supported; use bfloat16 or float32"
        )
    return _DTYPES[requested]


def load_model(
    folder: Path, device: str = "cpu", dtype: str = "auto", lora: tuple[str, ...] = ()
) -> FunAudioModel:
    folder = Path(folder)
    config = read_config(folder / "config.yaml")
    target = torch.device(device)
    chosen = serving_dtype(dtype, target)
    groups = split_groups(read_state_dict(folder / "model.pt"))
    llm_folder = folder / config.llm_dir
    if not (llm_folder / "config.json").is_file():
        raise CheckpointError("llm", f"{llm_folder}/config.json is missing")
    llm = merge_adapters(build_llm(llm_folder, groups.get("llm")), [Path(p) for p in lora])
    hidden = llm.get_input_embeddings().weight.shape[1]
    encoder = SenseVoiceEncoder(config.encoder)
    load_group(encoder, "audio_encoder", groups.get("audio_encoder"))
    adaptor = TransformerAdaptor(replace(config.adaptor, llm_dim=hidden))  # as FunASR sizes it
    load_group(adaptor, "audio_adaptor", groups.get("audio_adaptor"))
    ctc, vocabulary = _load_ctc(folder, config, groups)
    return FunAudioModel(
        config=config,
        encoder=encoder.to(target).eval(),
        adaptor=adaptor.to(target, chosen).eval(),
        llm=llm.to(target, chosen).eval(),
        tokenizer=load_tokenizer(llm_folder),
        ctc=ctc.to(target).eval() if ctc is not None else None,
        vocabulary=vocabulary,
        llm_folder=llm_folder,
        dtype=chosen,
        device=target,
    )


def _load_ctc(
    folder: Path, config: FunAudioConfig, groups: dict[str, dict[str, torch.Tensor]]
) -> tuple[CtcHead | None, PieceVocabulary | None]:
    """The CTC head, or None where the checkpoint has no CTC tensors at all (the HF release:
    FunASR's `disable_incomplete_ctc` does the same). Half a head is an error."""
    present = [g for g in ("ctc_decoder", "ctc") if groups.get(g)]
    if config.ctc is None or not present:
        if config.ctc is not None:
            logger.warning("model.pt has no CTC tensors: hot-word retrieval uses an LLM pass")
        return None, None
    head = CtcHead(config.ctc)
    load_group(head.ctc_decoder, "ctc_decoder", groups.get("ctc_decoder"))
    load_group(head.ctc, "ctc", groups.get("ctc"))
    vocabulary = PieceVocabulary(folder / TOKENIZER_FILE)
    if len(vocabulary) >= config.ctc.vocab_size:
        raise CheckpointError(
            "ctc",
            f"{TOKENIZER_FILE} has {len(vocabulary)} pieces, more than the CTC head's "
            f"{config.ctc.vocab_size} units",
        )
    return head, vocabulary
