"""Many structures through a model in few calls: ase.Atoms grouped into batches under an atom
budget, each batch evaluated by one `forward_batch` call (export/CONTRACT.md), the results split
back into one dict per structure shaped as `forward` returns them. Models without
`forward_batch` (files written before bpnn_ts 0.3, `.pt2` files) are called once per structure."""

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch

from . import keys
from .precision import input_dtype

if TYPE_CHECKING:  # (ase is imported by the callers; not at `bpnn-ts` start-up)
    from ase import Atoms

DEFAULT_BATCH_ATOMS = 20_000  # atoms per forward_batch call: bounded memory, overheads amortised

# axis of the system (per-system outputs) or of the atoms (per-atom outputs) in forward_batch's results
PER_SYSTEM = {keys.ENERGY: 0, keys.VIRIAL: 0, keys.MIN_DISTANCE: 0, keys.ENERGY_UNCERTAINTY: 0,
              keys.COMMITTEE_ENERGY: 1}
PER_ATOM = {keys.ENERGIES: 0, keys.FORCES: 0, keys.ATOMIC_VIRIALS: 0, keys.EXTRAPOLATION: 0,
            keys.ENERGIES_UNCERTAINTY: 0, keys.FORCES_UNCERTAINTY: 0, keys.COMMITTEE_ENERGIES: 1,
            keys.COMMITTEE_FORCES: 1}


def has_forward_batch(model: Any) -> bool:
    """True if `model` (eager, scripted, loaded, or a `.pt2` Pt2Model) has `forward_batch`."""
    return callable(getattr(model, "forward_batch", None))


def plan_batches(n_atoms: Sequence[int], max_atoms: int) -> List[range]:
    """Consecutive structures (of `n_atoms` atoms each) in groups of at most `max_atoms` atoms in
    all; a structure larger than that is a group of its own."""
    if max_atoms < 1:
        raise ValueError(f"`max_atoms` must be >= 1, got {max_atoms}")
    groups: List[range] = []
    start, total = 0, 0
    for k, n in enumerate(n_atoms):
        if k > start and total + n > max_atoms:
            groups.append(range(start, k))
            start, total = k, 0
        total += n
    if len(n_atoms) > start:
        groups.append(range(start, len(n_atoms)))
    return groups


def batch_inputs(structures: Sequence["Atoms"], dtype: torch.dtype) -> Tuple[torch.Tensor, ...]:
    """forward_batch's positions (N, 3), atomic_numbers (N,), system_index (N,), cells (B, 3, 3)
    and pbc (B, 3) of `structures`, on the CPU."""
    sizes = [len(atoms) for atoms in structures]
    positions = np.concatenate([atoms.positions for atoms in structures]) if structures else np.zeros((0, 3))
    numbers = np.concatenate([atoms.numbers for atoms in structures]) if structures else np.zeros(0, dtype=int)
    cells = np.array([atoms.cell.array for atoms in structures]).reshape(-1, 3, 3)
    pbc = np.array([atoms.pbc for atoms in structures], dtype=bool).reshape(-1, 3)
    system_index = np.repeat(np.arange(len(structures)), sizes)
    return (torch.tensor(positions, dtype=dtype), torch.tensor(numbers, dtype=torch.long),
            torch.tensor(system_index, dtype=torch.long), torch.tensor(cells, dtype=dtype), torch.tensor(pbc))


def split_results(result: Dict[str, torch.Tensor], n_atoms: Sequence[int]) -> List[Dict[str, torch.Tensor]]:
    """forward_batch's `result` for systems of `n_atoms` atoms as one dict per system, shaped as
    `forward`'s (views, no copies)."""
    first = np.concatenate([[0], np.cumsum(n_atoms)]).tolist()
    systems: List[Dict[str, torch.Tensor]] = [{} for _ in n_atoms]
    for name, value in result.items():
        if name in PER_SYSTEM:
            axis = PER_SYSTEM[name]
            for b, out in enumerate(systems):
                out[name] = value.select(axis, b)
        elif name in PER_ATOM:
            axis = PER_ATOM[name]
            for b, out in enumerate(systems):
                out[name] = value.narrow(axis, first[b], first[b + 1] - first[b])
        else:
            raise ValueError(f"forward_batch returned `{name}`, which bpnn_ts.many_structures cannot split per system")
    return systems


def evaluate_many(model: Any, structures: Sequence["Atoms"], max_atoms: int = DEFAULT_BATCH_ATOMS,
                  **options: bool) -> Iterator[Dict[str, torch.Tensor]]:
    """Results of `model` (any bpnn_ts model) for each of `structures` in turn, as `forward`
    returns them (batched: without `closest_pair`, and for committees without `committee_virial`),
    from forward_batch calls of at most `max_atoms` atoms; `max_atoms=0`, or a model without
    forward_batch: one forward call per structure. `options`: forward's flags
    (compute_forces, compute_virial, count_extrapolation, compute_uncertainty)."""
    dtype = input_dtype(model)  # mixed-precision models take float64 positions
    if max_atoms < 0:
        raise ValueError(f"`max_atoms` must be >= 0 (0: one call per structure), got {max_atoms}")
    if max_atoms == 0 or not has_forward_batch(model):
        for atoms in structures:
            yield model(torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
                        torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc), **options)
        return
    for group in plan_batches([len(atoms) for atoms in structures], max_atoms):
        chosen = [structures[k] for k in group]
        result = model.forward_batch(*batch_inputs(chosen, dtype), **options)
        yield from split_results(result, [len(atoms) for atoms in chosen])
