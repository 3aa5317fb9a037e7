"""Training checkpoints: written atomically (temporary file, then rename), read with checks, and the
model they keep (`model_from_checkpoint`)."""

from pathlib import Path
from typing import Any, Dict, Iterable, Union

import torch

from ..atomic_write import write_atomically
from ..formats.format1 import is_format1_state, state_dict_from_format1
from ..model.engine import BPNNModel
from ..model.spec import ModelSpec

CHECKPOINT_FORMAT = "bpnn_ts-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(state: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Write `state` to `path` so that a crash never leaves a half-written file."""
    record = dict(state, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    return write_atomically(path, lambda temporary: torch.save(record, temporary))


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a bpnn_ts training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')}, this package reads {CHECKPOINT_VERSION}")
    return state


def is_checkpoint(path: Union[str, Path]) -> bool:
    """True for files named *.ckpt (what the trainer writes)."""
    return Path(path).suffix == ".ckpt"


def checkpoint_weights(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A checkpoint's state dict with current names (checkpoints of bpnn_ts 0.1: format 1)."""
    return state_dict_from_format1(state) if is_format1_state(state) else state


def model_from_checkpoint(path) -> BPNNModel:
    """The best model of a checkpoint (eval mode, float64 or the trained dtype)."""
    state = load_checkpoint(path)
    model = BPNNModel.from_spec(ModelSpec.from_json(state["model_spec"]))
    weights = checkpoint_weights(state.get("best_state") or state["model_state"])
    model = model.to(weights["potential.atomic_energy_shift"].dtype)
    load_weights(model, weights)
    return model.eval()


def load_weights(model: BPNNModel, weights: Dict[str, torch.Tensor]) -> None:
    """A checkpoint's weights (either name set: checkpoint_weights) into `model`, less the kernel
    tables it lacks."""
    current = checkpoint_weights(weights)
    model.load_state_dict(without_kernel_tables(current, model.state_dict().keys()))


def without_kernel_tables(weights: Dict[str, torch.Tensor], names: Iterable[str]) -> Dict[str, torch.Tensor]:
    """`weights` without the fused kernels' parameter tables (`...kernel.radial`, `...kernel.angular`)
    a model of `names` lacks: a run that trained through the kernels saves them, and they follow
    from the model spec, which builds them again when kernels are switched on."""
    known = set(names)
    return {name: value for name, value in weights.items() if name in known or ".kernel." not in name}
