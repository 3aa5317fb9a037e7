"""Starting a training run from a trained model's networks (`training.initial_weights`: fine-tuning,
and each round of `bpnn-ts learn` after the first).

The new run fits its own input scaling, reference energies and (Kalman) energy unit to its data,
so the source's weights are re-expressed, not copied: with the source's scaling
x = (G - s) f + o and the new x' = (G - s') f' + o' (per function), the first layer's
W x + b equals W diag(f / f') x' + W d + b, d = (s' - s) f + o - o' f / f'; and with outputs
E = y c + e_Z (unit c, shift e_Z), the output layer's W_L, b_L become W_L c / c' and
(b_L c + e_Z - e'_Z) / c'. So the new run starts from exactly the source's energies and forces
(tested), wherever the new scaling is not zero. A function the new scaling holds constant
(factor 0) gets a zero column, its source contribution at the new mean G folded into b.
"""

from pathlib import Path
from typing import Union

import torch

from ..model.engine import BPNNModel
from ..model.nn import ACTIVATIONS, activation_code
from .checkpoint import is_checkpoint, model_from_checkpoint


def comparable(spec_a, spec_b) -> str:
    """'' if two specs have the same elements, functions, layers and activations; else what differs."""
    for name in ("atomic_numbers", "functions", "hidden_layers", "activations", "cutoff_type", "cutoff_alpha",
                 "committee_size"):
        if getattr(spec_a, name) != getattr(spec_b, name):
            return name.replace("_", " ")
    return ""


def source_model(path: Union[str, Path]) -> BPNNModel:
    """A warm start's source (`training.initial_weights`): the best model of a checkpoint (.ckpt)
    or a model file's, as an eager model."""
    from ..export import is_model_file, load
    from ..formats.eager import eager_copy
    if is_checkpoint(path):
        return model_from_checkpoint(path)
    if is_model_file(path):
        return eager_copy(load(path))
    raise ValueError(f"`training.initial_weights`: {path} is neither a training checkpoint (.ckpt) nor a model file")


@torch.no_grad()
def warm_start(model: BPNNModel, source: BPNNModel) -> None:
    """Give `model` (its scaling, reference energies and energy unit set) the networks of
    `source`, re-expressed so that it computes what `source` does (module docstring)."""
    different = comparable(model.spec(), source.spec())
    if different:
        hint = (" (automatic functions start at half the data's closest pair distance: give "
                "`symmetry_functions: {auto: {r_lower: ...}}` to keep them)" if different == "functions" else "")
        raise ValueError(f"`training.initial_weights`: the source model differs from this one in its {different}; "
                         f"warm starts need the same elements, symmetry functions and layers{hint}")
    old_unit, new_unit = float(source.spec().energy_scale), float(model.spec().energy_scale)
    identity_output = activation_code(model.spec().activations[-1]) == ACTIVATIONS["identity"]
    old_shifts, new_shifts = source.energy_shifts().double(), model.energy_shifts().double()
    for s, (old, new) in enumerate(zip(source.element_parts(), model.element_parts())):
        f_old, s_old, o_old = (t.double() for t in (old.scaling.factor, old.scaling.shift, old.scaling.offset))
        f_new, s_new, o_new = (t.double() for t in (new.scaling.factor, new.scaling.shift, new.scaling.offset))
        held = f_new == 0
        ratio = torch.where(held, torch.zeros_like(f_new), f_old / torch.where(held, torch.ones_like(f_new), f_new))
        shift = (s_new - s_old) * f_old + o_old - o_new * ratio  # x_old = ratio x_new + shift where not held
        at_mean = (new.scaling.g_mean.double() - s_old) * f_old + o_old  # x_old of a held function
        shift = torch.where(held, at_mean, shift)
        for member in range(len(new.nets)):
            layers = [(w.double(), b.double()) for w, b in source.element_weights(old.atomic_number, member)]
            first_w, first_b = layers[0]
            layers[0] = (first_w * ratio, first_b + first_w @ shift)
            if identity_output:
                last_w, last_b = layers[-1]
                layers[-1] = (last_w * (old_unit / new_unit),
                              (last_b * old_unit + old_shifts[s] - new_shifts[s]) / new_unit)
            elif old_unit != new_unit or bool(old_shifts[s] != new_shifts[s]):
                raise ValueError("`training.initial_weights`: the output layer has a non-identity activation, so a "
                                 "change of energy unit or reference energies cannot be re-expressed; give the "
                                 "model the source's `atomic_energies`")
            dtype = model.energy_shifts().dtype
            model.set_element_weights(old.atomic_number, [(w.to(dtype), b.to(dtype)) for w, b in layers], member)
    model.weights_origin = "given"
