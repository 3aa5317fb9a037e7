"""Symmetry-function statistics from data, for the input scaling inside the model."""

from typing import Dict, Iterable, List, Optional

import torch
from ase import Atoms

from . import keys
from .model.engine import BPNNModel
from .model_parts import AnyModel, element_models, energy_shifts


def descriptor_statistics(model: AnyModel, structures: Iterable[Atoms]) -> Dict[int, torch.Tensor]:
    """{Z: (n_functions, 4) [Gmin, Gmax, Gmean, sigma]} over every atom of `structures`
    (`model`: a BPNNModel). One pass; memory independent of the number of structures (the
    structures' statistics are merged as they come: Chan et al.'s pairwise update of mean and
    sum of squared deviations)."""
    potential = model.potential
    dtype = torch.float64 if potential.mixed_precision else energy_shifts(model).dtype
    numbers_of = [int(z) for z in model.atomic_numbers()]
    running: Dict[int, List[torch.Tensor]] = {}  # Z -> [count, min, max, mean, M2]
    for atoms in structures:
        out = model.compute_descriptors(
            torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
            torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc))
        g = out[keys.DESCRIPTORS].to(torch.float64)
        numbers = torch.tensor(atoms.numbers)
        for k, z in enumerate(numbers_of):
            rows = g[numbers == z, : potential.n_functions[k]]
            if rows.shape[0] > 0:
                running[z] = _merged(running.get(z), rows)
    statistics: Dict[int, torch.Tensor] = {}
    for z in numbers_of:
        if z not in running:
            raise ValueError(f"no atoms of element Z={z} in the data: cannot compute its scaling statistics")
        count, g_min, g_max, mean, m2 = running[z]
        statistics[z] = torch.stack([g_min, g_max, mean, (m2 / count).sqrt()], dim=1)
    return statistics


def _merged(state: Optional[List[torch.Tensor]], rows: torch.Tensor) -> List[torch.Tensor]:
    """[count, min, max, mean, M2] of the rows seen so far (`state`) and `rows` (n, F)."""
    n = torch.tensor(float(rows.shape[0]), dtype=torch.float64)
    mean = rows.mean(0)
    m2 = ((rows - mean) ** 2).sum(0)
    if state is None:
        return [n, rows.min(0).values, rows.max(0).values, mean, m2]
    count, g_min, g_max, old_mean, old_m2 = state
    total = count + n
    delta = mean - old_mean
    return [total, torch.minimum(g_min, rows.min(0).values), torch.maximum(g_max, rows.max(0).values),
            old_mean + delta * n / total, old_m2 + m2 + delta ** 2 * count * n / total]


def fit_scaling(model: BPNNModel, structures: Iterable[Atoms]) -> Dict[int, torch.Tensor]:
    """Set every element's scaling statistics (and so its training range) from `structures`;
    returns them."""
    statistics = descriptor_statistics(model, structures)
    for z, element in zip(model.atomic_numbers(), element_models(model)):
        element.scaling.set_statistics(*statistics[int(z)].T)
    return statistics
