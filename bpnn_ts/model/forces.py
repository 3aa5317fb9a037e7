"""Forces and virials from dE/dr_ij of pairs: the last step of every evaluation path (the
potential, the `.pt2` programs, and training on cached descriptors).

With r_ij = R_j - R_i + shift @ cell: F_i += dE/dr_ij, F_j -= dE/dr_ij, and the virial
W = -sum_ij r_ij (x) dE/dr_ij (split half and half between i and j per atom). Sums are in the
dtype of the vectors passed (float64 in mixed precision); nothing is updated in place, so every
result is differentiable (training builds force losses on them).
"""

from typing import Dict

import torch

from .. import keys


def zero_forces_and_virials(n_atoms: int, dtype: torch.dtype, device: torch.device, compute_forces: bool,
                            compute_virial: bool) -> Dict[str, torch.Tensor]:
    """Zero forces (N, 3), virial (3, 3) and atomic virials (N, 3, 3), as asked for."""
    result: Dict[str, torch.Tensor] = {}
    if compute_forces:
        result[keys.FORCES] = torch.zeros((n_atoms, 3), dtype=dtype, device=device)
    if compute_virial:
        result[keys.VIRIAL] = torch.zeros((3, 3), dtype=dtype, device=device)
        result[keys.ATOMIC_VIRIALS] = torch.zeros((n_atoms, 3, 3), dtype=dtype, device=device)
    return result


def in_pair_list_order(sorted_values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-pair values (P, ...) given in CentrePairs order, in the PairList's order (`order`:
    CentrePairs.order)."""
    return torch.zeros_like(sorted_values).index_copy(0, order, sorted_values)


def add_pair_forces(forces: torch.Tensor, d_vectors: torch.Tensor, centres: torch.Tensor,
                    neighbours: torch.Tensor) -> torch.Tensor:
    """`forces` (N, 3) plus the pairs' terms: F_i += dE/dr_ij, F_j -= dE/dr_ij (d_vectors (P, 3))."""
    d_vectors = d_vectors.to(forces.dtype)
    return forces.index_add(0, centres, d_vectors).index_add(0, neighbours, -d_vectors)


def add_system_virials(virials: torch.Tensor, vectors: torch.Tensor, d_vectors: torch.Tensor,
                       system_of_pair: torch.Tensor) -> torch.Tensor:
    """`virials` (S, 3, 3) plus -r_ij (x) dE/dr_ij of each pair (vectors, d_vectors (P, 3)) in its
    system (system_of_pair (P,))."""
    pair_virials = -(vectors.unsqueeze(2) * d_vectors.to(vectors.dtype).unsqueeze(1)).reshape(-1, 9)  # (P, 9)
    flat = virials.reshape(-1, 9).index_add(0, system_of_pair, pair_virials)
    return flat.reshape(-1, 3, 3)


def add_forces_and_virials(result: Dict[str, torch.Tensor], vectors: torch.Tensor, d_vectors: torch.Tensor,
                           centres: torch.Tensor, neighbours: torch.Tensor, compute_forces: bool,
                           compute_virial: bool) -> None:
    """Add the terms of pairs (centres, neighbours) with vectors r_ij (P, 3) and dE/dr_ij (P, 3)
    to `result` (from zero_forces_and_virials): forces, the virial and per-atom virials."""
    d_vectors = d_vectors.to(vectors.dtype)
    if compute_forces:
        result[keys.FORCES] = add_pair_forces(result[keys.FORCES], d_vectors, centres, neighbours)
    if compute_virial:
        result[keys.VIRIAL] = result[keys.VIRIAL] - vectors.transpose(0, 1) @ d_vectors
        pair_virials = -0.5 * vectors.unsqueeze(2) * d_vectors.unsqueeze(1)  # (P, 3, 3)
        atomic = result[keys.ATOMIC_VIRIALS].index_add(0, centres, pair_virials)
        result[keys.ATOMIC_VIRIALS] = atomic.index_add(0, neighbours, pair_virials)
