"""Symmetry-function statistics from data, for the input scaling inside the model."""

from typing import Dict, Iterable, List

import torch
from ase import Atoms

from . import keys
from .model.engine import BPNNModel
from .model_parts import AnyModel, element_models, energy_shifts


def descriptor_statistics(model: AnyModel, structures: Iterable[Atoms]) -> Dict[int, torch.Tensor]:
    """{Z: (n_functions, 4) [Gmin, Gmax, Gmean, sigma]} over every atom of `structures`
    (`model`: a BPNNModel)."""
    potential = model.potential
    dtype = torch.float64 if potential.mixed_precision else energy_shifts(model).dtype
    values: Dict[int, List[torch.Tensor]] = {int(z): [] for z in model.atomic_numbers()}
    for atoms in structures:
        out = model.compute_descriptors(
            torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
            torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc))
        g = out[keys.DESCRIPTORS]
        numbers = torch.tensor(atoms.numbers)
        for k, z in enumerate(model.atomic_numbers()):
            values[int(z)].append(g[numbers == z, : potential.n_functions[k]])
    statistics: Dict[int, torch.Tensor] = {}
    for k, z in enumerate(model.atomic_numbers()):
        data = torch.cat(values[int(z)]) if values[int(z)] else torch.zeros((0, potential.n_functions[k]))
        if data.shape[0] == 0:
            raise ValueError(f"no atoms of element Z={z} in the data: cannot compute its scaling statistics")
        statistics[int(z)] = torch.stack([data.min(0).values, data.max(0).values, data.mean(0),
                                          data.std(0, unbiased=False)], dim=1)
    return statistics


def fit_scaling(model: BPNNModel, structures: Iterable[Atoms]) -> Dict[int, torch.Tensor]:
    """Set every element's scaling statistics (and so its training range) from `structures`;
    returns them."""
    statistics = descriptor_statistics(model, list(structures))
    for z, element in zip(model.atomic_numbers(), element_models(model)):
        element.scaling.set_statistics(*statistics[int(z)].T)
    return statistics
