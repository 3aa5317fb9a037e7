"""Symmetry-function statistics from data (`descriptor_statistics`), and the model's input
scaling set from them (`fit_scaling`)."""

from typing import Any, Dict, Iterable, List, Optional

import torch
from ase import Atoms

from . import keys
from .model.engine import BPNNModel
from .model.spec import ModelSpec
from .precision import input_dtype


def descriptor_statistics(model: Any, structures: Iterable[Atoms]) -> Dict[int, torch.Tensor]:
    """{Z: (n_functions, 4) [Gmin, Gmax, Gmean, sigma]} over every atom of `structures`
    (`model`: a BPNNModel, eager or a loaded TorchScript file). One pass; memory independent of
    the number of structures (the structures' statistics are merged as they come: Chan et al.'s
    pairwise update of mean and sum of squared deviations)."""
    dtype = input_dtype(model)
    numbers_of = [int(z) for z in model.atomic_numbers()]
    widths = n_functions(model)
    running: Dict[int, List[torch.Tensor]] = {}  # Z -> [count, min, max, mean, M2]
    for atoms in structures:
        out = model.compute_descriptors(
            torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
            torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc))
        g = out[keys.DESCRIPTORS].to(torch.float64)
        numbers = torch.tensor(atoms.numbers)
        for k, z in enumerate(numbers_of):
            rows = g[numbers == z, : widths[k]]
            if rows.shape[0] > 0:
                running[z] = _merged(running.get(z), rows)
    statistics: Dict[int, torch.Tensor] = {}
    for z in numbers_of:
        if z not in running:
            raise ValueError(f"no atoms of element Z={z} in the data: cannot compute its scaling statistics")
        count, g_min, g_max, mean, m2 = running[z]
        statistics[z] = torch.stack([g_min, g_max, mean, (m2 / count).sqrt()], dim=1)
    return statistics


def n_functions(model: Any) -> List[int]:
    """Symmetry functions per element of `model`, from its architecture."""
    spec = ModelSpec.from_json(model.model_spec())
    return [len(spec.functions_of(int(z))) for z in spec.atomic_numbers]


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
    model.set_scaling_statistics(statistics)
    return statistics
