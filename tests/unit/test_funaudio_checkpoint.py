"""Loading Fun-ASR-Nano folders: the released layout loads; broken ones name the group at fault."""

import shutil

import pytest

torch = pytest.importorskip("torch", reason="the FunAudio engine needs torch (extra: funaudio)")
pytest.importorskip("transformers", reason="the FunAudio engine needs transformers")
pytest.importorskip("peft", reason="the FunAudio engine needs peft")

import yaml  # noqa: E402

from asr_core.engines.funaudio.checkpoint import CheckpointError, split_groups  # noqa: E402
from asr_core.engines.funaudio.model import load_model  # noqa: E402
from tests.tiny_funaudio import TinySpec, write_tiny_checkpoint  # noqa: E402

torch.set_num_threads(1)
SPEC = TinySpec()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("funaudio") / "Fun-ASR-Nano-tiny", SPEC)


@pytest.fixture
def folder(pristine, tmp_path):
    copy = tmp_path / pristine.name
    shutil.copytree(pristine, copy)
    return copy


def _edit_state(folder, edit):
    state = torch.load(folder / "model.pt", weights_only=True)
    edited = edit(state)
    state = edited if isinstance(edited, dict) else state
    torch.save(state, folder / "model.pt")


def _error(folder, **kwargs) -> CheckpointError:
    with pytest.raises(CheckpointError) as caught:
        load_model(folder, **kwargs)
    return caught.value


def test_released_layout_and_tensor_counts(pristine):
    state = torch.load(pristine / "model.pt", weights_only=True)
    groups = split_groups(state)
    assert set(groups) == {"audio_encoder", "audio_adaptor", "llm", "ctc_decoder", "ctc"}
    layers = SPEC.num_blocks + SPEC.tp_blocks
    # The release's arithmetic: 13 per encoder layer + 4 norms (70 layers: 914) ...
    assert len(groups["audio_encoder"]) == 13 * layers + 4
    assert len(groups["audio_adaptor"]) == 4 + 16 * SPEC.adaptor_layers  # 2 layers: 36
    assert len(groups["ctc_decoder"]) == 4 + 16 * SPEC.ctc_layers  # 5 layers: 84
    assert sorted(groups["ctc"]) == ["ctc_lo.bias", "ctc_lo.weight"]
    assert len(groups["llm"]) == 11 * SPEC.llm_layers + 3  # 28 layers: 311
    assert "encoders0.0.self_attn.fsmn_block.weight" in groups["audio_encoder"]
    assert "tp_encoders.0.norm2.bias" in groups["audio_encoder"]
    assert "blocks.0.self_attn.linear_q.weight" in groups["audio_adaptor"]
    assert "model.embed_tokens.weight" in groups["llm"]
    assert (pristine / "Qwen3-0.6B" / "config.json").is_file()
    assert (pristine / "Qwen3-0.6B" / "tokenizer.json").is_file()
    assert (pristine / "multilingual.tiktoken").is_file()
    assert yaml.safe_load((pristine / "config.yaml").read_text())["model"] == "FunASRNano"


def test_tiny_folder_loads_every_group(pristine):
    model = load_model(pristine)
    assert model.ctc is not None and len(model.vocabulary) == 32
    assert model.dtype == torch.float32  # auto on CPU
    assert model.adaptor.linear2.out_features == SPEC.llm_hidden
    assert model.tokenizer.convert_tokens_to_ids("<|im_end|>") == 2


def test_wrapped_checkpoint_with_module_prefix_loads(folder):
    _edit_state(folder, lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}})
    assert load_model(folder).ctc is not None


def test_bfloat16_serving_and_float16_refused(pristine):
    model = load_model(pristine, dtype="bfloat16")
    assert model.llm.dtype == torch.bfloat16
    assert model.adaptor.linear1.weight.dtype == torch.bfloat16
    assert model.encoder.after_norm.weight.dtype == torch.float32
    assert "float16" in str(_error(pristine, dtype="float16"))


def test_missing_model_pt(folder):
    (folder / "model.pt").unlink()
    assert _error(folder).group == "model.pt"


def test_truncated_model_pt(folder):
    data = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(data[: len(data) // 2])
    error = _error(folder)
    assert error.group == "model.pt" and "corrupt" in error.reason


def test_missing_encoder_tensor_is_named(folder):
    _edit_state(folder, lambda s: s.pop("audio_encoder.encoders.0.norm1.weight") is None)
    error = _error(folder)
    assert error.group == "audio_encoder"
    assert "audio_encoder.encoders.0.norm1.weight" in error.reason


def test_config_that_does_not_match_the_adaptor(folder):
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["audio_adaptor_conf"]["ffn_dim"] = 64
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    error = _error(folder)
    assert error.group == "audio_adaptor"
    assert "audio_adaptor.linear1.weight has shape" in error.reason


def test_missing_llm_group(folder):
    _edit_state(folder, lambda s: {k: v for k, v in s.items() if not k.startswith("llm.")})
    assert _error(folder).group == "llm"


def test_non_finite_weights_are_named(folder):
    def poison(state):
        state["audio_adaptor.linear2.bias"][0] = float("nan")

    _edit_state(folder, poison)
    error = _error(folder)
    assert error.group == "audio_adaptor" and "linear2.bias" in error.reason


def test_half_a_ctc_head_is_an_error(folder):
    _edit_state(folder, lambda s: {k: v for k, v in s.items() if not k.startswith("ctc.")})
    assert _error(folder).group == "ctc"


def test_no_ctc_tensors_loads_without_ctc(folder):
    """The HF release ships no CTC tensors; FunASR then disables CTC, and so do we."""
    _edit_state(folder, lambda s: {k: v for k, v in s.items() if not k.startswith("ctc")})
    assert load_model(folder).ctc is None


def test_missing_or_broken_side_files(folder):
    (folder / "multilingual.tiktoken").write_text("not base64!! x\n")
    assert _error(folder).group == "ctc"
    (folder / "multilingual.tiktoken").unlink()
    assert _error(folder).group == "ctc"
    (folder / "Qwen3-0.6B" / "config.json").unlink()
    assert _error(folder).group == "llm"
    (folder / "config.yaml").write_text("model: Paraformer\n")
    assert _error(folder).group == "config.yaml"
    (folder / "config.yaml").unlink()
    assert _error(folder).group == "config.yaml"
