"""Forces and virials from dE/dr_ij of every pair (the last step of every evaluation path)."""

from typing import Dict

import torch

from . import keys


def add_forces_and_virials(result: Dict[str, torch.Tensor], vectors: torch.Tensor,
                            d_vectors: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor,
                            n_atoms: int, compute_forces: bool, compute_virial: bool) -> None:
    """From dE/dr_ij (P, 3) of pairs (centres, neighbours) with vectors r_ij (P, 3):
    F_i += dE/dr_ij, F_j -= dE/dr_ij; W = -sum r_ij (x) dE/dr_ij, split half and half per atom.
    Sums in the dtype of `vectors` (float64 in mixed precision)."""
    d_vectors = d_vectors.to(vectors.dtype)
    if compute_forces:
        forces = torch.zeros((n_atoms, 3), dtype=vectors.dtype, device=vectors.device)
        result[keys.FORCES] = forces.index_add(0, centres, d_vectors).index_add(0, neighbours, -d_vectors)
    if compute_virial:
        result[keys.VIRIAL] = -(vectors.transpose(0, 1) @ d_vectors)
        pair_virials = (-0.5 * vectors.unsqueeze(2) * d_vectors.unsqueeze(1)).reshape(-1, 9)
        atomic = torch.zeros((n_atoms, 9), dtype=vectors.dtype, device=vectors.device)
        atomic = atomic.index_add(0, centres, pair_virials).index_add(0, neighbours, pair_virials)
        result[keys.ATOMIC_VIRIALS] = atomic.reshape(n_atoms, 3, 3)
