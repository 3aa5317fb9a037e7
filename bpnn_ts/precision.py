"""Precision modes of a model: "float64", "float32" and "mixed".

mixed: descriptors (the fused kernels compute in single precision) and element nets in
float32; positions, pair vectors, and the sums that make energies, forces and virials in
float64, so that the many small terms of a force are not rounded to float32 one by one and
inputs and outputs stay float64 for the MD engine.

The host code takes a model's input dtype from here (`input_dtype`), and converts models with
`set_precision`, which works on eager models and loaded model files alike.
"""

from typing import Any, Dict

import torch

PRECISIONS = ("float64", "float32", "mixed")
# dtype of the positions and cell a model of each precision takes, and of its outputs
INPUT_DTYPES: Dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32, "mixed": torch.float64}


def check_precision(precision: str, name: str = "precision") -> str:
    """`precision` if it is one of PRECISIONS, else a ValueError naming the argument."""
    if precision not in PRECISIONS:
        raise ValueError(f"`{name}` must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


def input_dtype(model: Any) -> torch.dtype:
    """The dtype of the positions and cell `model` (any bpnn_ts model: eager, a loaded file, a
    `.pt2` file) takes: float64 for "mixed" models."""
    return INPUT_DTYPES[str(model.dtype_name())]


def set_precision(model: Any, precision: str) -> Any:
    """Convert `model` (an eager BPNNModel or a loaded TorchScript model file) to `precision`;
    returns it. Older format-2 files lack `set_mixed_precision`: their flag is set as the
    attribute they hold."""
    check_precision(precision)
    model = model.to(torch.float64 if precision == "float64" else torch.float32)
    if hasattr(model, "set_mixed_precision"):
        model.set_mixed_precision(precision == "mixed")
    else:  # an older format-2 file
        model.potential.mixed_precision = precision == "mixed"
    return model
