"""What a training run derives from its data before the first epoch: the split, reference
energies per element, and the nets' energy unit."""

from typing import Dict, List, Sequence, Tuple

import numpy as np
from ase import Atoms

from ..model.engine import BPNNModel


def split_structures(structures: Sequence[Atoms], validation: float, test: float,
                     seed: int) -> Tuple[List[int], List[int], List[int]]:
    """Seeded random split of indices into train / validation / test (at least one train)."""
    order = np.random.default_rng(seed).permutation(len(structures)).tolist()
    n_val = int(round(validation * len(order)))
    n_test = int(round(test * len(order)))
    if len(order) - n_val - n_test < 1:
        raise ValueError(f"{len(order)} structures are too few for the split "
                         f"(validation {validation}, test {test})")
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


def fit_atomic_energies(structures: Sequence[Atoms], elements: Sequence[int]) -> Dict[int, float]:
    """eV per atom of each element, least squares of E_s over compositions (minimum-norm
    where compositions do not determine every element)."""
    counts = np.array([[int((atoms.numbers == z).sum()) for z in elements] for atoms in structures], dtype=float)
    energies = np.array([atoms.calc.results["energy"] for atoms in structures], dtype=float)
    solution = np.linalg.lstsq(counts, energies, rcond=None)[0]
    return {int(z): float(e) for z, e in zip(elements, solution)}


def with_energy_scale(model: BPNNModel, energy_scale: float) -> BPNNModel:
    """`model` with network outputs in units of `energy_scale` eV (same weights and buffers)."""
    rescaled = BPNNModel(model.spec().replace(energy_scale=float(energy_scale))).to(model.energy_shifts().dtype)
    rescaled.load_state_dict(model.state_dict())
    return rescaled.train(model.training)
