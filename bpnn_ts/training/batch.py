"""Structures flattened into one atom batch (no padding), and the model evaluated on it.

A `Batch` holds several labelled structures concatenated: atoms, pairs and
labels, with index tensors saying which structure each atom and pair belongs
to. With `cached=True` it also holds every atom's symmetry functions G and
dG_i/dr_ij per pair, computed once: an epoch then costs only the element nets
and one contraction, since geometry does not change during training.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union, overload

import torch
from ase import Atoms

from .. import keys
from ..input_scaling import with_kernels
from ..model.engine import BPNNModel
from ..model.forces import add_pair_forces, add_system_virials


@dataclass
class Batch:
    """Concatenated structures; shapes: N atoms, P pairs, S structures, F = max functions."""

    numbers: torch.Tensor  # (N,)
    species: torch.Tensor  # (N,)
    structure_of_atom: torch.Tensor  # (N,)
    n_atoms: torch.Tensor  # (S,)
    energy: torch.Tensor  # (S,) eV
    forces: torch.Tensor  # (N, 3) eV/Å (zeros where a structure has none)
    has_forces: torch.Tensor  # (N,) bool
    stress: torch.Tensor  # (S, 6) eV/Å^3, Voigt xx yy zz yz xz xy
    has_stress: torch.Tensor  # (S,) bool
    volume: torch.Tensor  # (S,) Å^3 (0 for non-periodic)
    positions: List[torch.Tensor]  # per structure, for the uncached path
    cells: List[torch.Tensor]
    pbcs: List[torch.Tensor]
    descriptors: Optional[torch.Tensor] = None  # (N, F)
    jacobian: Optional[torch.Tensor] = None  # (P, F, 3)
    centres: Optional[torch.Tensor] = None  # (P,)
    neighbours: Optional[torch.Tensor] = None  # (P,)
    vectors: Optional[torch.Tensor] = None  # (P, 3)
    structure_of_pair: Optional[torch.Tensor] = None  # (P,)

    @property
    def n_structures(self) -> int:
        return int(self.n_atoms.shape[0])


def _voigt_stress(atoms: Atoms) -> Optional[List[float]]:
    results = atoms.calc.results if atoms.calc is not None else {}
    return [float(x) for x in results["stress"]] if "stress" in results else None


def labelled_batch(atoms: Atoms, dtype: torch.dtype, device: torch.device,
                   model: Optional[BPNNModel] = None) -> Batch:
    """One structure's geometry and labels as a Batch (species: `model`'s index of each atom's
    element; 0 without a model)."""
    results = atoms.calc.results
    n = len(atoms)
    numbers = torch.tensor(atoms.numbers, device=device)
    stress = _voigt_stress(atoms)
    volume = float(atoms.get_volume()) if atoms.pbc.all() else 0.0
    forces = results.get("forces")
    return Batch(
        numbers=numbers,
        species=model.species_index(numbers) if model is not None else torch.zeros_like(numbers),
        structure_of_atom=torch.zeros(n, dtype=torch.long, device=device),
        n_atoms=torch.tensor([n], device=device),
        energy=torch.tensor([float(results["energy"])], dtype=dtype, device=device),
        forces=torch.tensor(forces if forces is not None else [[0.0] * 3] * n, dtype=dtype, device=device),
        has_forces=torch.full((n,), forces is not None, device=device),
        stress=torch.tensor([stress or [0.0] * 6], dtype=dtype, device=device),
        has_stress=torch.tensor([stress is not None and volume > 0], device=device),
        volume=torch.tensor([volume], dtype=dtype, device=device),
        positions=[torch.tensor(atoms.positions, dtype=dtype, device=device)],
        cells=[torch.tensor(atoms.cell.array, dtype=dtype, device=device)],
        pbcs=[torch.tensor(atoms.pbc, device=device)])


def make_batches(model: BPNNModel, structures: Sequence[Atoms], cached: bool) -> List[Batch]:
    """One single-structure Batch per structure (concatenate them with `concatenate`) for
    `model` (eager: the model being trained). The cache (`cached`) is computed by the fused
    kernels where they build (input_scaling.with_kernels), whatever `model` uses."""
    dtype = model.energy_shifts().dtype
    device = model.energy_shifts().device
    source = with_kernels(model) if cached else model
    batches = []
    for atoms in structures:
        batch = labelled_batch(atoms, dtype, device, model)
        if cached:
            with torch.no_grad():
                out = source.compute_descriptor_jacobian(batch.positions[0], batch.numbers, batch.cells[0],
                                                        batch.pbcs[0])
            batch.descriptors = out[keys.DESCRIPTORS]
            batch.jacobian = out["descriptor_jacobian"]
            batch.centres = out["pair_centres"]
            batch.neighbours = out["pair_neighbours"]
            batch.vectors = out["pair_vectors"]
            batch.structure_of_pair = torch.zeros(batch.centres.shape[0], dtype=torch.long, device=device)
        batches.append(batch)
    return batches


class StreamedBatches(Sequence[Optional[Batch]]):
    """Uncached batches made on demand from `structures` (e.g. a StructureStore, which bounds
    what stays in memory); None where `owns(i)` is false (another process's structure)."""

    def __init__(self, model: BPNNModel, structures: Sequence[Atoms], owns: Callable[[int], bool]):
        self.model = model
        self.structures = structures
        self.owns = owns

    def __len__(self) -> int:
        return len(self.structures)

    @overload
    def __getitem__(self, index: int) -> Optional[Batch]: ...

    @overload
    def __getitem__(self, index: slice) -> List[Optional[Batch]]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Optional[Batch], List[Optional[Batch]]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not self.owns(index):
            return None
        return make_batches(self.model, [self.structures[index]], cached=False)[0]


def concatenate(parts: Sequence[Batch]) -> Batch:
    """One Batch of several (atom and structure indices offset)."""
    atom_offsets = [0]
    for part in parts:
        atom_offsets.append(atom_offsets[-1] + int(part.numbers.shape[0]))
    cat = lambda name: torch.cat([getattr(p, name) for p in parts])  # noqa: E731
    batch = Batch(
        numbers=cat("numbers"), species=cat("species"),
        structure_of_atom=torch.cat([p.structure_of_atom + s for s, p in enumerate(parts)]),
        n_atoms=cat("n_atoms"), energy=cat("energy"), forces=cat("forces"), has_forces=cat("has_forces"),
        stress=cat("stress"), has_stress=cat("has_stress"), volume=cat("volume"),
        positions=[x for p in parts for x in p.positions], cells=[x for p in parts for x in p.cells],
        pbcs=[x for p in parts for x in p.pbcs])
    if all(p.jacobian is not None for p in parts):
        batch.descriptors = cat("descriptors")
        batch.jacobian = cat("jacobian")
        batch.centres = torch.cat([_cached(p.centres) + o for p, o in zip(parts, atom_offsets)])
        batch.neighbours = torch.cat([_cached(p.neighbours) + o for p, o in zip(parts, atom_offsets)])
        batch.vectors = cat("vectors")
        batch.structure_of_pair = torch.cat([_cached(p.structure_of_pair) + s for s, p in enumerate(parts)])
    return batch


def _cached(value: Optional[torch.Tensor]) -> torch.Tensor:
    """A cached field of a batch that has the descriptor cache (make_batches sets them all together)."""
    assert value is not None, "a batch with a descriptor cache lacks one of its cached fields"
    return value


def predict(model: Any, batch: Batch, create_graph: bool) -> Dict[str, torch.Tensor]:
    """Energies (S,), forces (N, 3) and virials (S, 3, 3) of a batch.

    Cached batches: energies and dE/dG from the nets
    (`BPNNPotential.energies_from_descriptors`), then dE/dr_ij = sum_f dE_i/dG_if dG_if/dr_ij
    and the model's force/virial assembly (bpnn_ts/model/forces.py). Uncached batches
    call the model (eager or scripted) on each structure."""
    if batch.jacobian is None:
        return _predict_uncached(model, batch)
    descriptors, centres, neighbours = _cached(batch.descriptors), _cached(batch.centres), _cached(batch.neighbours)
    vectors, structure_of_pair = _cached(batch.vectors), _cached(batch.structure_of_pair)
    atom_energies, slopes = model.energies_from_descriptors(descriptors, batch.species, create_graph)
    d_vectors = torch.einsum("pf,pfc->pc", slopes[centres], batch.jacobian)
    forces = add_pair_forces(torch.zeros_like(batch.forces), d_vectors, centres, neighbours)
    virial = torch.zeros((batch.n_structures, 3, 3), dtype=forces.dtype, device=forces.device)
    virial = add_system_virials(virial, vectors, d_vectors, structure_of_pair)
    energy = torch.zeros(batch.n_structures, dtype=forces.dtype, device=forces.device)
    energy = energy.index_add(0, batch.structure_of_atom, atom_energies)
    return {keys.ENERGY: energy, keys.FORCES: forces, keys.VIRIAL: virial}


def _predict_uncached(model: Any, batch: Batch) -> Dict[str, torch.Tensor]:
    energies, forces, virials = [], [], []
    first = 0
    for s, (positions, cell, pbc) in enumerate(zip(batch.positions, batch.cells, batch.pbcs)):
        n = int(batch.n_atoms[s])
        out = model(positions, batch.numbers[first:first + n], cell, pbc, compute_virial=True)
        energies.append(out[keys.ENERGY])
        forces.append(out[keys.FORCES])
        virials.append(out[keys.VIRIAL])
        first += n
    return {keys.ENERGY: torch.stack(energies), keys.FORCES: torch.cat(forces), keys.VIRIAL: torch.stack(virials)}


def stress_from_virial(virial: torch.Tensor, volume: torch.Tensor) -> torch.Tensor:
    """Voigt stress (S, 6) xx yy zz yz xz xy, eV/Å^3, = -virial / volume (0 where volume is 0)."""
    safe = torch.where(volume > 0, volume, torch.ones_like(volume))
    full = -virial / safe.view(-1, 1, 1)
    return torch.stack([full[:, 0, 0], full[:, 1, 1], full[:, 2, 2], full[:, 1, 2], full[:, 0, 2], full[:, 0, 1]], dim=1)
