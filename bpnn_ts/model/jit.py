"""TorchScript's deprecated decorators, applied knowingly: torch >= 2.14 warns (FutureWarning) on
`torch.jit.interface` at import time, which every user would see; TorchScript stays the contract
of the model file (bpnn_ts/export.py), so the warning is silenced here and nowhere else."""

import copy
import sys
import warnings
from typing import TypeVar

import torch

T = TypeVar("T")


def interface(cls: T) -> T:
    """`torch.jit.interface(cls)` without its deprecation warning. torch resolves the names in the
    interface's signatures (NamedTuples, ...) in the frame that calls it: the call is made in a
    frame with the globals of the module that defines `cls`."""
    caller_globals = sys._getframe(1).f_globals
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch\\.jit.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch\\.jit.*")
        return eval("make_interface(cls)", caller_globals, {"make_interface": torch.jit.interface, "cls": cls})


def with_scripted_submodule(module: torch.nn.Module, name: str) -> torch.nn.Module:
    """A shallow copy of `module` whose submodule `name` is scripted (for __prepare_scriptable__):
    TorchScript compiles a module in an interface-typed slot with the interface's methods only,
    its submodules too, so such a slot must hold a script module. `module` keeps its eager one."""
    scripted = copy.copy(module)
    scripted._modules = type(module._modules)(module._modules)  # (a dict of its own)
    submodule = module._modules[name]
    if not isinstance(submodule, torch.jit.ScriptModule):
        scripted._modules[name] = torch.jit.script(submodule)
    return scripted
