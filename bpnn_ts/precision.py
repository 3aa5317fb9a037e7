"""Precision modes of a model: "float64", "float32" and "mixed".

mixed: descriptors (the fused kernels compute in single precision) and element nets in
float32; positions, pair vectors, and the sums that make energies, forces and virials in
float64, so that the many small terms of a force are not rounded to float32 one by one and
inputs and outputs stay float64 for the MD engine.
"""

from typing import TYPE_CHECKING, Dict, overload

import torch

if TYPE_CHECKING:
    from .model.engine import BPNNModel
    from .model_parts import AnyModel

PRECISIONS = ("float64", "float32", "mixed")
# dtype of the positions and cell a model of each precision takes, and of its outputs
INPUT_DTYPES: Dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32, "mixed": torch.float64}


@overload
def set_precision(model: "BPNNModel", precision: str) -> "BPNNModel": ...


@overload
def set_precision(model: torch.jit.ScriptModule, precision: str) -> torch.jit.ScriptModule: ...


def set_precision(model: "AnyModel", precision: str) -> "AnyModel":
    """Convert `model` (a BPNNModel, eager or scripted) to `precision`; returns it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    model = model.to(torch.float64 if precision == "float64" else torch.float32)
    model.potential.mixed_precision = precision == "mixed"
    return model
