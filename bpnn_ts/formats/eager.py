"""Any model's weights as an eager BPNNModel, whatever it was loaded from: what the host code
changes (committees, members, re-export) is always an eager model with its typed methods."""

from typing import Any

from ..model.engine import BPNNModel
from ..model.spec import ModelSpec


def eager_copy(model: Any) -> BPNNModel:
    """A float64 eager BPNNModel (eval mode) with the weights of `model` (eager, or a loaded
    TorchScript model file); the fused-kernel tables are left out (they follow from the
    architecture)."""
    target = BPNNModel.from_spec(ModelSpec.from_json(model.model_spec()))
    wanted = target.state_dict()
    state = {name: value.detach().cpu().double() if value.is_floating_point() else value.detach().cpu()
             for name, value in model.state_dict().items() if name in wanted}
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise ValueError(f"the model lacks parameters {missing[:5]}: not a bpnn_ts model of this version")
    target.load_state_dict(state)
    return target.eval()
