"""The parts of a Fun-ASR-Nano `config.yaml` that shape the network, with the release's values
as defaults (a key the file leaves out means what FunASR's code defaults to)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from asr_core.engines.funaudio.checkpoint import CheckpointError


@dataclass(frozen=True)
class FrontendConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    lfr_m: int = 7
    lfr_n: int = 6

    @property
    def feature_dim(self) -> int:
        return self.n_mels * self.lfr_m


@dataclass(frozen=True)
class EncoderConfig:
    input_size: int = 560
    output_size: int = 512
    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 50
    tp_blocks: int = 20
    kernel_size: int = 11
    sanm_shift: int = 0


@dataclass(frozen=True)
class AdaptorConfig:
    """FunASR's `Transformer` adaptor; the CTC decoder is one too, with llm_dim = encoder_dim."""

    encoder_dim: int = 512
    llm_dim: int = 1024
    ffn_dim: int = 2048
    downsample_rate: int = 1
    n_layer: int = 2
    attention_heads: int = 8


@dataclass(frozen=True)
class CtcConfig:
    decoder: AdaptorConfig
    vocab_size: int = 60515
    blank_id: int = 60514


@dataclass(frozen=True)
class FunAudioConfig:
    frontend: FrontendConfig
    encoder: EncoderConfig
    adaptor: AdaptorConfig
    ctc: CtcConfig | None
    llm_dir: str = "Qwen3-0.6B"
    llm_dtype: str = "bf16"
    use_low_frame_rate: bool = True
    """Feed ⌈T/8⌉ audio embeddings to the LLM (the release); False feeds all T."""
    do_think: bool = True
    """False appends an empty <think></think> block after the assistant tag."""
    sys_prompt: bool = True


def read_config(path: Path) -> FunAudioConfig:
    """Parse config.yaml; a missing file or a wrong-typed value is a CheckpointError."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError("config.yaml", f"{path} is missing") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError("config.yaml", f"{path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError("config.yaml", f"{path} is not a mapping")
    try:
        return _parse(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError("config.yaml", f"{path}: {exc}") from exc


def _parse(raw: dict[str, Any]) -> FunAudioConfig:
    if raw.get("model", "FunASRNano") != "FunASRNano":
        raise ValueError(f"model is {raw.get('model')!r}, not FunASRNano")
    fe = _section(raw, "frontend_conf")
    frontend = FrontendConfig(
        sample_rate=int(fe.get("fs", 16000)),
        n_mels=int(fe.get("n_mels", 80)),
        frame_length_ms=float(fe.get("frame_length", 25)),
        frame_shift_ms=float(fe.get("frame_shift", 10)),
        lfr_m=int(fe.get("lfr_m", 7)),
        lfr_n=int(fe.get("lfr_n", 6)),
    )
    if frontend.sample_rate != 16000:
        raise ValueError(f"frontend_conf.fs is {frontend.sample_rate}; only 16000 is supported")
    if fe.get("cmvn_file"):
        raise ValueError("frontend_conf.cmvn_file is set; CMVN is not supported (none released)")
    enc = _section(raw, "audio_encoder_conf")
    encoder = EncoderConfig(
        input_size=int(raw.get("input_size") or frontend.feature_dim),
        output_size=int(enc.get("output_size", 512)),
        attention_heads=int(enc.get("attention_heads", 4)),
        linear_units=int(enc.get("linear_units", 2048)),
        num_blocks=int(enc.get("num_blocks", 50)),
        tp_blocks=int(enc.get("tp_blocks", 20)),
        kernel_size=int(enc.get("kernel_size", 11)),
        sanm_shift=int(enc.get("sanm_shfit", 0)),
    )
    ad = _section(raw, "audio_adaptor_conf")
    adaptor = _adaptor(ad, encoder.output_size, default_llm_dim=1024)
    ctc = None
    if raw.get("ctc_decoder"):
        dec = _section(raw, "ctc_decoder_conf")
        vocab_size = int(raw.get("ctc_vocab_size", 60515))
        blank_id = int(_section(raw, "ctc_conf").get("blank_id", vocab_size - 1))
        ctc = CtcConfig(
            _adaptor(dec, encoder.output_size, default_llm_dim=encoder.output_size),
            vocab_size,
            blank_id,
        )
    llm = _section(raw, "llm_conf")
    dataset = _section(raw, "dataset_conf")
    return FunAudioConfig(
        frontend=frontend,
        encoder=encoder,
        adaptor=adaptor,
        ctc=ctc,
        llm_dir=str(llm.get("init_param_path", "Qwen3-0.6B")),
        llm_dtype=str(llm.get("llm_dtype", "bf16")),
        use_low_frame_rate=bool(ad.get("use_low_frame_rate", True)),
        do_think=bool(dataset.get("do_think", True)),
        sys_prompt=bool(dataset.get("sys_prompt", True)),
    )


def _adaptor(conf: dict[str, Any], encoder_dim: int, default_llm_dim: int) -> AdaptorConfig:
    return AdaptorConfig(
        encoder_dim=int(conf.get("encoder_dim", encoder_dim)),
        llm_dim=int(conf.get("llm_dim", default_llm_dim)),
        ffn_dim=int(conf.get("ffn_dim", 2048)),
        downsample_rate=int(conf.get("downsample_rate", 2)),
        n_layer=int(conf.get("n_layer", 2)),
        attention_heads=int(conf.get("attention_heads", 8)),
    )


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not a mapping")
    return value
