"""Many systems in one evaluation (BPNNModel.forward_batch, export/CONTRACT.md): the checks of
the batch layout and the per-system sums of the potential's outputs for the whole batch.

The B systems' atoms are concatenated: system b owns the contiguous rows first[b] ..
first[b + 1] - 1 of `positions` and `atomic_numbers`, and `system_index` (N,) names each
atom's system. Pairs never join two systems, so per-atom outputs equal the per-system calls'
and per-system totals are sums over each system's atoms.
"""

from typing import Dict, List

import torch

from .. import keys
from .inputs import check_atoms, check_device, dtype_name, is_integer


def check_batch(positions: torch.Tensor, atomic_numbers: torch.Tensor, system_index: torch.Tensor,
                cells: torch.Tensor, pbc: torch.Tensor, check_values: bool) -> List[int]:
    """Shapes, dtypes, devices and order of a batch's tensors (and with `check_values` finite
    positions and cells); returns the first atom of each system, then N: (B + 1,)."""
    check_atoms(positions, atomic_numbers, check_values)
    n_atoms = positions.shape[0]
    if cells.dim() != 3 or cells.shape[1] != 3 or cells.shape[2] != 3:
        raise ValueError("`cells` must have shape (n_systems, 3, 3) (rows = lattice vectors), got "
                         + str(cells.shape))
    if not cells.is_floating_point():
        raise ValueError("`cells` must be a floating-point tensor, got " + dtype_name(cells))
    n_systems = cells.shape[0]
    if pbc.shape != (n_systems, 3) or pbc.dtype != torch.bool:
        raise ValueError("`pbc` must be a bool tensor of shape (n_systems, 3) = (" + str(n_systems)
                         + ", 3) (n_systems from `cells`), got " + dtype_name(pbc) + " " + str(pbc.shape))
    if system_index.shape != (n_atoms,):
        raise ValueError("`system_index` must have shape (n_atoms,) = (" + str(n_atoms) + ",), got "
                         + str(system_index.shape))
    if not is_integer(system_index):
        raise ValueError("`system_index` must be an integer tensor, got " + dtype_name(system_index))
    check_device("system_index", system_index, positions.device)
    check_device("cells", cells, positions.device)
    check_device("pbc", pbc, positions.device)
    if check_values and not bool(torch.isfinite(cells).all()):
        raise ValueError("`cells` contain NaN or inf")
    system_index = system_index.long()
    if n_atoms > 0:
        lowest, highest = int(system_index.min()), int(system_index.max())
        if lowest < 0 or highest >= n_systems:
            raise ValueError("`system_index` must hold system numbers in [0, n_systems=" + str(n_systems)
                             + ") (n_systems from `cells`), got values from " + str(lowest) + " to " + str(highest))
        if bool((system_index[1:] < system_index[:-1]).any()):
            raise ValueError("`system_index` must be non-decreasing: the atoms of each system contiguous, "
                             + "systems in order (sort the atoms by system)")
    counts: List[int] = torch.bincount(system_index, minlength=n_systems).tolist()
    first = [0]
    for count in counts:
        first.append(first[-1] + count)
    return first


def per_system(result: Dict[str, torch.Tensor], system_index: torch.Tensor,
               n_systems: int) -> Dict[str, torch.Tensor]:
    """The potential's `result` for a whole batch with `energy`, `virial` and, for committees,
    `committee_energy` and `energy_uncertainty` per system (leading or member-then-system axis
    of n_systems); per-atom entries unchanged. `committee_virial` (each member's virial) is not
    kept per atom by the potential, so it is dropped."""
    energies = result[keys.ENERGIES]  # (N,)
    out: Dict[str, torch.Tensor] = {}
    for name, value in result.items():
        out[name] = value
    if keys.COMMITTEE_ENERGIES in result:
        members = result[keys.COMMITTEE_ENERGIES]  # (K, N)
        totals = torch.zeros((members.shape[0], n_systems), dtype=members.dtype, device=members.device)
        totals = totals.index_add(1, system_index, members)  # (K, B)
        deviation = totals - totals.mean(dim=0)
        out[keys.COMMITTEE_ENERGY] = totals
        out[keys.ENERGY] = totals.mean(dim=0)
        out[keys.ENERGY_UNCERTAINTY] = torch.sqrt((deviation * deviation).mean(dim=0))  # as uncertainty.py
        if keys.COMMITTEE_VIRIAL in out:
            out.pop(keys.COMMITTEE_VIRIAL)
    else:
        out[keys.ENERGY] = torch.zeros(n_systems, dtype=energies.dtype, device=energies.device).index_add(
            0, system_index, energies)
    if keys.ATOMIC_VIRIALS in result:
        atomic = result[keys.ATOMIC_VIRIALS]  # (N, 3, 3): each pair's virial split between its two atoms
        out[keys.VIRIAL] = torch.zeros((n_systems, 3, 3), dtype=atomic.dtype, device=atomic.device).index_add(
            0, system_index, atomic)
    return out


def side_by_side(positions: torch.Tensor, systems: torch.Tensor, n_systems: int, gap: float) -> torch.Tensor:
    """Positions (M, 3) of atoms of open (non-periodic) systems, `systems` (M,) naming each atom's,
    moved so that the systems lie one after another along x, at least `gap` (Å) apart: one
    neighbour search over them all then finds each system's pairs and no pair joins two."""
    index = systems.unsqueeze(1).expand(-1, 3)
    inf = torch.full((n_systems, 3), float("inf"), dtype=positions.dtype, device=positions.device)
    low = inf.scatter_reduce(0, index, positions, "amin")  # (B, 3); inf for systems without atoms here
    high = (-inf).scatter_reduce(0, index, positions, "amax")
    width = high[:, 0] - low[:, 0] + gap
    width = torch.where(torch.isfinite(width), width, torch.zeros_like(width))  # (B,)
    start = torch.cumsum(width, 0) - width
    moved = positions - low[systems]
    return moved + torch.stack([start[systems], torch.zeros_like(start[systems]), torch.zeros_like(start[systems])],
                               dim=1)
