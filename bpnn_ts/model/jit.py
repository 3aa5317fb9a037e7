"""TorchScript's deprecated decorators, applied knowingly: torch >= 2.14 warns (FutureWarning) on
`torch.jit.interface` at import time, which every user would see; TorchScript stays the contract
of the model file (bpnn_ts/export.py), so the warning is silenced here and nowhere else."""

import warnings
from typing import TypeVar

import torch

T = TypeVar("T")


def interface(cls: T) -> T:
    """`torch.jit.interface(cls)` without its deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch\\.jit.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch\\.jit.*")
        return torch.jit.interface(cls)
