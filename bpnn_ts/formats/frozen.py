"""What every model-file writer writes: a frozen copy of the model."""

import copy
from typing import Optional

from ..model.engine import BPNNModel
from ..precision import check_precision, set_precision


def frozen_copy(model: BPNNModel, dtype: Optional[str], native_kernels: bool) -> BPNNModel:
    """A copy of `model` (a BPNNModel in eval mode) in `dtype` ("float64", "float32", "mixed";
    None: the model's), with the fused kernels on or off and no parameter requiring gradients.
    Raises on a model in training mode or an unknown dtype. Kernels asked for but not buildable
    here: the copy has them off."""
    if not isinstance(model, BPNNModel):
        raise TypeError(f"`model` must be a BPNNModel, got {type(model).__name__}")
    if model.training:
        raise ValueError("export refuses a model in training mode; call model.eval() first")
    if dtype is not None:
        check_precision(dtype, "dtype")
    frozen = copy.deepcopy(model)
    if dtype is not None:
        frozen = set_precision(frozen, dtype)
    frozen.use_native_kernels(native_kernels)
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    return frozen
