"""Typed views of a model's parts, for the host code (training, committees, n2p2 io, scaling).

Registered buffers, torch.nn.ModuleList items and submodules declared as `torch.nn.Module` are
typed `Tensor | Module` or `Module` (`Module.__getattr__`), so the casts to what bpnn_ts.model
builds them as are made here, once. A scripted model's attributes are `Any` to mypy.
"""

from typing import List, Union, cast

import torch

from .model.element import ElementModel
from .model.engine import BPNNModel
from .model.nn import CommitteeMLP, ElementMLP

# A model as the host code takes it: an eager BPNNModel, or a scripted one (a loaded model file,
# a torch.jit.script result), whose attributes and methods mypy sees as Any.
AnyModel = Union[BPNNModel, torch.jit.ScriptModule]


def energy_shifts(model: AnyModel) -> torch.Tensor:
    """The per-element reference energies (n_elements,) in eV, a buffer of the potential (it has
    the model's dtype and device)."""
    return cast(torch.Tensor, model.potential.atomic_energy_shift)


def species_of_z(model: AnyModel) -> torch.Tensor:
    """The model's (MAX_Z + 1,) table atomic number -> species index (-1: not an element of it), a buffer."""
    return cast(torch.Tensor, model.species_of_z)


def element_models(model: BPNNModel) -> List[ElementModel]:
    """The element parts of an eager `model` (an ElementModel per element, in species order)."""
    return cast(List[ElementModel], list(model.potential.elements))


def element_net(element: ElementModel) -> Union[ElementMLP, CommitteeMLP]:
    """The network of an element: an ElementMLP, or a CommitteeMLP of them."""
    return cast(Union[ElementMLP, CommitteeMLP], element.net)


def committee_nets(net: CommitteeMLP) -> List[ElementMLP]:
    """The member networks of a committee network."""
    return cast(List[ElementMLP], list(net.members))


def linear_layers(net: ElementMLP) -> List[torch.nn.Linear]:
    """The layers of an element network, input layer first."""
    return cast(List[torch.nn.Linear], list(net.layers))
