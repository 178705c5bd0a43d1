"""peft LoRA on the FunAudio LLM: defaults, save/load round trip, merge for serving."""

import pytest

torch = pytest.importorskip("torch", reason="the FunAudio engine needs torch (extra: funaudio)")
pytest.importorskip("transformers", reason="the FunAudio engine needs transformers")
pytest.importorskip("peft", reason="the FunAudio engine needs peft")

from asr_core.engines.funaudio.checkpoint import CheckpointError  # noqa: E402
from asr_core.engines.funaudio.lora import (  # noqa: E402
    LoraOptions,
    attach_adapters,
    merge_adapters,
    new_adapter,
)
from asr_core.engines.funaudio.model import load_model  # noqa: E402
from tests.tiny_funaudio import write_tiny_checkpoint  # noqa: E402

torch.set_num_threads(1)
IDS = torch.tensor([[5, 40, 77, 120, 9]])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("funaudio") / "tiny")


def _trained_adapter(folder, target, seed):
    """A saved adapter whose B matrices are non-zero (as after training)."""
    llm = load_model(folder).llm
    peft_model = new_adapter(llm)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    peft_model.save_pretrained(target)
    with torch.no_grad():
        return peft_model.eval()(IDS).logits


def test_defaults_match_funasr_lora_conf():
    config = LoraOptions().peft_config()
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)
    assert set(config.target_modules) == {"q_proj", "v_proj"}


def test_fresh_adapter_targets_q_and_v_and_changes_nothing(folder):
    llm = load_model(folder).llm
    with torch.no_grad():
        before = llm(IDS).logits
    peft_model = new_adapter(llm)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert {n.split(".lora_")[0].rsplit(".", 1)[1] for n in names} == {"q_proj", "v_proj"}
    with torch.no_grad():
        assert torch.equal(peft_model(IDS).logits, before)


def test_adapter_round_trip_and_merge(folder, tmp_path):
    tenant = _trained_adapter(folder, tmp_path / "tenant", seed=1)
    domain = _trained_adapter(folder, tmp_path / "domain", seed=2)
    loaded = attach_adapters(
        load_model(folder).llm, {"tenant": tmp_path / "tenant", "domain": tmp_path / "domain"}
    )
    with torch.no_grad():
        loaded.set_adapter("tenant")
        assert torch.allclose(loaded(IDS).logits, tenant, atol=1e-5)
        loaded.set_adapter("domain")
        assert torch.allclose(loaded(IDS).logits, domain, atol=1e-5)
    merged = merge_adapters(load_model(folder).llm, [tmp_path / "tenant"])
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(merged(IDS).logits, tenant, atol=1e-4)
    served = load_model(folder, lora=(str(tmp_path / "tenant"),))
    with torch.no_grad():
        assert torch.allclose(served.llm(IDS).logits, tenant, atol=1e-4)


def test_broken_adapter_is_named(folder, tmp_path):
    (tmp_path / "broken").mkdir()
    with pytest.raises(CheckpointError) as caught:
        load_model(folder, lora=(str(tmp_path / "broken"),))
    assert caught.value.group == "lora"
