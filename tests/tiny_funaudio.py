"""Tiny random Fun-ASR-Nano folders in exactly the released layout, for tests only.

model.pt (one state dict: audio_encoder.*, audio_adaptor.*, llm.*, ctc_decoder.*, ctc.*),
config.yaml (the release's keys, small sizes), Qwen3-0.6B/ (config.json + a byte-level BPE
tokenizer with the ChatML special tokens, built offline with `tokenizers`) and
multilingual.tiktoken (a few SenseVoice-style pieces). Nothing is downloaded.
"""

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import Qwen3Config, Qwen3ForCausalLM

from asr_core.engines.funaudio.adaptor import TransformerAdaptor
from asr_core.engines.funaudio.config import read_config
from asr_core.engines.funaudio.ctc import TOKENIZER_FILE, CtcHead
from asr_core.engines.funaudio.encoder import SenseVoiceEncoder

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
ADDED_TOKENS = ("<think>", "</think>")
CTC_PIECES = (*"abcdefghijklmnopqrstuvwxyz ", "张三", "李四", "会议", "你好", "。")
CTC_SPECIALS = ("<|endoftext|>", "<|zh|>", "<|en|>", "<|nospeech|>")


@dataclass(frozen=True)
class TinySpec:
    seed: int = 0
    width: int = 16
    """Encoder output size (512 in the release)."""
    heads: int = 2
    linear_units: int = 32
    num_blocks: int = 2
    tp_blocks: int = 1
    kernel_size: int = 11
    llm_hidden: int = 32
    llm_layers: int = 2
    adaptor_ffn: int = 32
    adaptor_layers: int = 1
    adaptor_heads: int = 2
    ctc: bool = True
    ctc_layers: int = 1
    ctc_piece: str | None = None
    """Make the CTC head emit this piece on every frame (a known first pass)."""

    @property
    def ctc_vocab_size(self) -> int:
        return len(CTC_PIECES) + len(CTC_SPECIALS)


def config_yaml(spec: TinySpec) -> dict:
    """The release's config.yaml keys (FunASR reads them the same way) at tiny sizes."""
    config = {
        "model": "FunASRNano",
        "model_conf": {"lsm_weight": 0.1, "length_normalized_loss": True},
        "audio_encoder": "SenseVoiceEncoderSmall",
        "audio_encoder_conf": {
            "output_size": spec.width,
            "attention_heads": spec.heads,
            "linear_units": spec.linear_units,
            "num_blocks": spec.num_blocks,
            "tp_blocks": spec.tp_blocks,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": spec.kernel_size,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "freeze": True,
        },
        "llm": "Qwen3-0.6b",
        "llm_conf": {
            "hub": "hf",
            "freeze": True,
            "llm_dtype": "bf16",
            "init_param_path": "Qwen3-0.6B",
            "use_lora": False,
            "lora_conf": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05},
        },
        "audio_adaptor": "Transformer",
        "audio_adaptor_conf": {
            "downsample_rate": 1,
            "use_low_frame_rate": True,
            "ffn_dim": spec.adaptor_ffn,
            "llm_dim": spec.llm_hidden,
            "encoder_dim": spec.width,
            "n_layer": spec.adaptor_layers,
            "attention_heads": spec.adaptor_heads,
            "freeze": True,
        },
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": 7,
            "lfr_n": 6,
            "cmvn_file": None,
        },
        "dataset_conf": {"prompt_classes": "MultiContextPrompt", "use_one_pass_result": True},
    }
    if spec.ctc:
        config.update(
            {
                "ctc_decoder": "Transformer",
                "detach_ctc_decoder": True,
                "ctc_decoder_conf": {
                    "downsample_rate": 1,
                    "ffn_dim": spec.adaptor_ffn,
                    "llm_dim": spec.width,
                    "encoder_dim": spec.width,
                    "n_layer": spec.ctc_layers,
                    "attention_heads": spec.adaptor_heads,
                    "freeze": False,
                },
                "ctc_weight": 1.0,
                "ctc_vocab_size": spec.ctc_vocab_size,
                "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True},
            }
        )
        config["dataset_conf"].update(
            {
                "ctc_tokenizer": "SenseVoiceTokenizer",
                "ctc_tokenizer_conf": {"vocab_path": None, "is_multilingual": True},
            }
        )
    return config


def write_tiny_checkpoint(folder: Path, spec: TinySpec | None = None) -> Path:
    spec = spec or TinySpec()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(
        yaml.safe_dump(config_yaml(spec), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    (folder / "configuration.json").write_text(json.dumps({"framework": "pytorch"}))
    llm_folder = folder / "Qwen3-0.6B"
    vocab_size = write_tiny_tokenizer(llm_folder)
    llm_config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=spec.llm_hidden,
        intermediate_size=spec.llm_hidden * 2,
        num_hidden_layers=spec.llm_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=spec.llm_hidden // 4,
        max_position_embeddings=4096,
        tie_word_embeddings=False,  # tied, a random LLM only echoes the prompt's last token
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
    )
    llm_config.save_pretrained(llm_folder)
    torch.manual_seed(spec.seed)
    config = read_config(folder / "config.yaml")
    modules: dict[str, torch.nn.Module] = {
        "audio_encoder": SenseVoiceEncoder(config.encoder),
        "audio_adaptor": TransformerAdaptor(config.adaptor),
        "llm": Qwen3ForCausalLM(llm_config),
    }
    if config.ctc is not None:
        head = CtcHead(config.ctc)
        if spec.ctc_piece is not None:
            with torch.no_grad():
                head.ctc.ctc_lo.weight.zero_()
                head.ctc.ctc_lo.bias.zero_()
                head.ctc.ctc_lo.bias[CTC_PIECES.index(spec.ctc_piece)] = 10.0
        modules.update(ctc_decoder=head.ctc_decoder, ctc=head.ctc)
        write_tiny_pieces(folder / TOKENIZER_FILE)
    state = {
        f"{prefix}.{name}": tensor.detach().clone()
        for prefix, module in modules.items()
        for name, tensor in module.state_dict().items()
    }
    torch.save(state, folder / "model.pt")
    return folder


def write_tiny_tokenizer(folder: Path) -> int:
    """A byte-level BPE over the 256 bytes (any text encodes) with Qwen's ChatML tokens; the
    files a Qwen3 folder has (tokenizer.json, tokenizer_config.json). Returns the vocab size."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({ch: len(SPECIAL_TOKENS) + i for i, ch in enumerate(alphabet)})
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer.add_tokens(list(ADDED_TOKENS))
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "Qwen2Tokenizer",
                "bos_token": None,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "unk_token": None,
                "model_max_length": 4096,
                "add_prefix_space": False,
            }
        )
    )
    return tokenizer.get_vocab_size()


def write_tiny_pieces(path: Path) -> None:
    """A SenseVoice-style tiktoken rank file for `CTC_PIECES`."""
    lines = [
        f"{base64.b64encode(piece.encode()).decode()} {rank}"
        for rank, piece in enumerate(CTC_PIECES)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
