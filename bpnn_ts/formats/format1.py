"""Model files and checkpoints of format 1 (bpnn_ts 0.1): the one place that maps them onto
format 2. A format-1 file is a scripted potential with the getters and the engine forward on
one module; its parameters live at the top level (`elements.*`, `atomic_energy_shift`), where
format 2 keeps them under `potential.`; its architecture is the `spec_json` attribute."""

from typing import Any, Dict, Mapping

import torch

from ..model.engine import BPNNModel
from ..model.spec import ModelSpec
from ..precision import set_precision

ENGINE_ENTRIES = ("species_of_z",)  # format-1 state entries that stay on BPNNModel


def is_format1_state(state: Mapping[str, torch.Tensor]) -> bool:
    """True for a format-1 state dict (parameters at the top level)."""
    return any(name.startswith("elements.") for name in state)


def state_dict_from_format1(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A format-1 state dict with format-2 names; the fused-kernel tables are left out (they
    follow from the architecture and come back with `use_native_kernels`)."""
    upgraded: Dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if ".kernel." in name:
            continue
        upgraded[name if name in ENGINE_ENTRIES else "potential." + name] = value
    return upgraded


def upgrade(old: torch.jit.ScriptModule, metadata: Dict[str, Any]) -> BPNNModel:
    """An eager format-2 BPNNModel (eval mode) computing what the format-1 model `old` (a loaded
    file, with its metadata.json) computes: same parameters, precision and kernels."""
    model = BPNNModel.from_spec(ModelSpec.from_json(old.spec_json))
    state = {name: value.detach().cpu() for name, value in old.state_dict().items()}
    model.load_state_dict(state_dict_from_format1(state))
    model = set_precision(model, str(metadata.get("dtype", "float64")))
    if metadata.get("native_kernels"):
        model.use_native_kernels(True)
    return model.eval()
