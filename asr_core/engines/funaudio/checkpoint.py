"""Reading `model.pt` and handing each tensor group to its module, with errors that name the
group at fault (a truncated download, a checkpoint from another model, a config that does not
match the weights) instead of torch's long missing/unexpected key dumps."""

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from asr_core.errors import ModelError

GROUPS = ("audio_encoder", "audio_adaptor", "llm", "ctc_decoder", "ctc")
"""Tensor-name prefixes of the released model.pt, one per module."""
_SHOWN = 3


class CheckpointError(ModelError):
    """A Fun-ASR-Nano folder that cannot be loaded; `group` names the part at fault."""

    code = "checkpoint_error"

    def __init__(self, group: str, reason: str) -> None:
        super().__init__(f"{group}: {reason}")
        self.group = group


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of model.pt, unwrapped like FunASR's `normalize_checkpoint_state`
    ({"state_dict": ...} or {"model": ...}, `module.` prefixes); memory-mapped, never pickled
    code."""
    if not path.is_file():
        raise CheckpointError("model.pt", f"{path} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError("model.pt", f"{path} is corrupt or truncated: {exc}") from exc
    except pickle.UnpicklingError as exc:
        raise CheckpointError("model.pt", f"{path} holds more than tensors: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise CheckpointError("model.pt", f"{path} is not a state dict")
    tensors = {}
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[name.removeprefix("module.")] = value
    return tensors


def split_groups(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The state dict cut by top-level prefix, each group keyed without its prefix."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        prefix, _, rest = name.partition(".")
        groups.setdefault(prefix, {})[rest] = tensor
    return groups


def load_group(module: nn.Module, group: str, tensors: Mapping[str, torch.Tensor] | None) -> None:
    """Copy one group's tensors into `module`, or explain exactly what does not fit."""
    if not tensors:
        raise CheckpointError(group, f"model.pt has no {group}.* tensors")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_names(group, missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_names(group, unexpected)})")
        raise CheckpointError(
            group,
            f"model.pt's {group}.* tensors do not match config.yaml: {'; '.join(parts)}",
        )
    for name, target in expected.items():
        source = tensors[name]
        if source.shape != target.shape:
            raise CheckpointError(
                group,
                f"{group}.{name} has shape {tuple(source.shape)} in model.pt but "
                f"{tuple(target.shape)} from config.yaml",
            )
        if not source.is_floating_point() or not torch.isfinite(source).all():
            raise CheckpointError(group, f"{group}.{name} holds non-finite or non-float values")
    module.load_state_dict(tensors, strict=True)


def _names(group: str, names: list[str]) -> str:
    shown = ", ".join(f"{group}.{n}" for n in names[:_SHOWN])
    return shown + (", ..." if len(names) > _SHOWN else "")
