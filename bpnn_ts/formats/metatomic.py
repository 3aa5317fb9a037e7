"""bpnn_ts models as metatomic models (https://docs.metatensor.org/metatomic): one file that ASE,
i-PI, LAMMPS (`pair_style metatomic`), GROMACS, PLUMED and torch-sim load. Needs the optional
package `metatomic-torch` (imported here, so import this module only when you use it).

Engines take forces and stress by differentiating the energy with respect to the positions and
a strain (their neighbour-list vectors are on that graph). The model computes dE/dr_ij of every
pair itself (BPNNModel.pair_energy_gradients), so the energy returned here is the model's energy
plus sum_ij dE/dr_ij . (r_ij - r_ij.detach()): its value is the energy, its gradient the model's
exact forces and virial, and no second derivative is ever formed.
"""

from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import AtomisticModel, ModelCapabilities, ModelMetadata, ModelOutput, NeighborListOptions, System

from .. import keys
from ..model.engine import BPNNModel
from .frozen import frozen_copy

ENERGY = "energy"
UNCERTAINTY = "energy_uncertainty"
ENSEMBLE = "energy_ensemble"


class MetatomicBPNN(torch.nn.Module):
    """A BPNNModel behind metatomic's ModelInterface: energy (per system or per atom) and, for
    committees, energy_uncertainty (the members' spread) and energy_ensemble (each member)."""

    def __init__(self, model: BPNNModel):
        super().__init__()
        self.model = model
        self.neighbors = NeighborListOptions(cutoff=model.cutoff(), full_list=True, strict=True, requestor="bpnn_ts")
        self.committee_size = model.committee_size()

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.neighbors]

    def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels]) -> Dict[str, TensorMap]:
        want_spread = "energy_uncertainty" in outputs or "energy_ensemble" in outputs
        per_system: Dict[str, List[torch.Tensor]] = {"energy": [], "energy_uncertainty": [], "energy_ensemble": []}
        per_atom: Dict[str, List[torch.Tensor]] = {"energy": [], "energy_uncertainty": [], "energy_ensemble": []}
        atom_samples: List[torch.Tensor] = []
        for s, system in enumerate(systems):
            n_local = self._local_atoms(system, s, selected_atoms)
            neighbors = system.get_neighbor_list(self.neighbors)
            samples = neighbors.samples.values
            pairs = samples[:, 0:2].T.to(torch.long)
            vectors = neighbors.values.reshape(-1, 3)
            result = self.model.pair_energy_gradients(
                system.positions.detach(), system.types.to(torch.long), system.cell.detach(),
                system.pbc, pairs, samples[:, 2:5], n_local, want_spread)
            energies = _attach(result[keys.ENERGIES], result[keys.PAIR_GRADIENTS], vectors, pairs[0], n_local)
            per_atom["energy"].append(energies.unsqueeze(1))
            per_system["energy"].append(energies.sum().reshape(1, 1))
            if want_spread:
                per_atom["energy_uncertainty"].append(result[keys.ENERGIES_UNCERTAINTY].to(energies.dtype).unsqueeze(1))
                per_system["energy_uncertainty"].append(result[keys.ENERGY_UNCERTAINTY].to(energies.dtype).reshape(1, 1))
                members: List[torch.Tensor] = []
                for k in range(self.committee_size):
                    members.append(_attach(result[keys.COMMITTEE_ENERGIES][k], result[keys.COMMITTEE_PAIR_GRADIENTS][k],
                                           vectors, pairs[0], n_local))
                ensemble = torch.stack(members, dim=1)  # (n_local, K)
                per_atom["energy_ensemble"].append(ensemble)
                per_system["energy_ensemble"].append(ensemble.sum(dim=0, keepdim=True))
            atom_index = torch.arange(n_local, device=energies.device)
            atom_samples.append(torch.stack([torch.full_like(atom_index, s), atom_index], dim=1))

        device = systems[0].positions.device if len(systems) > 0 else torch.device("cpu")
        dtype = systems[0].positions.dtype if len(systems) > 0 else torch.float64
        results: Dict[str, TensorMap] = {}
        for name, output in outputs.items():
            if name not in per_system:
                continue
            width = self.committee_size if name == "energy_ensemble" else 1
            if output.sample_kind == "atom":
                values = _cat(per_atom[name], width, dtype, device)
                samples = Labels(["system", "atom"], _cat_index(atom_samples, 2, device))
            else:
                values = _cat(per_system[name], width, dtype, device)
                samples = Labels(["system"], torch.arange(len(systems), device=device).reshape(-1, 1).to(torch.int32))
            properties = Labels(["energy"], torch.arange(width, device=device).reshape(-1, 1).to(torch.int32))
            block = TensorBlock(values=values, samples=samples, components=[], properties=properties)
            results[name] = TensorMap(Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=device)), [block])
        return results

    def _local_atoms(self, system: System, index: int, selected_atoms: Optional[Labels]) -> int:
        """How many atoms of `system` carry energy: all, or the selected ones, which must be its
        first atoms (as LAMMPS selects its local atoms ahead of the ghosts)."""
        n_atoms = system.positions.shape[0]
        if selected_atoms is None:
            return n_atoms
        rows = selected_atoms.values
        atoms = rows[rows[:, 0] == index][:, 1].to(torch.long)
        expected = torch.arange(atoms.shape[0], device=atoms.device)
        if not bool(torch.equal(torch.sort(atoms).values, expected)):
            raise ValueError("bpnn_ts metatomic models evaluate the first atoms of a system (an engine's local atoms "
                             "ahead of its ghosts); `selected_atoms` of system " + str(index)
                             + " is another subset")
        return atoms.shape[0]


def _attach(energies: torch.Tensor, pair_gradients: torch.Tensor, vectors: torch.Tensor, centres: torch.Tensor,
            n_local: int) -> torch.Tensor:
    """Per-atom energies (n_local,) whose gradient with respect to the pair vectors (P, 3; on the
    engine's autograd graph) is dE/dr_ij (P, 3) of each pair's centre: the values stay those of
    `energies`."""
    gradients = pair_gradients.detach().to(vectors.dtype)
    link = (gradients * (vectors - vectors.detach())).sum(dim=1)
    local = centres < n_local  # other pairs have zero gradient
    return energies.detach().to(vectors.dtype).index_add(0, centres[local], link[local])


def _cat(parts: List[torch.Tensor], width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if len(parts) == 0:
        return torch.zeros((0, width), dtype=dtype, device=device)
    return torch.cat(parts)


def _cat_index(parts: List[torch.Tensor], width: int, device: torch.device) -> torch.Tensor:
    if len(parts) == 0:
        return torch.zeros((0, width), dtype=torch.int32, device=device)
    return torch.cat(parts).to(torch.int32)


def capabilities(model: BPNNModel) -> ModelCapabilities:
    """What the file declares: the model's elements (types = atomic numbers), cutoff, units (eV,
    Å), dtype ("mixed" files compute in float64 where it matters and take float64 inputs)."""
    outputs = {ENERGY: ModelOutput(unit="eV", sample_kind="atom")}
    if model.committee_size() > 1:
        outputs[UNCERTAINTY] = ModelOutput(unit="eV", sample_kind="atom")
        outputs[ENSEMBLE] = ModelOutput(unit="eV", sample_kind="atom")
    dtype = "float32" if model.dtype_name() == "float32" else "float64"
    return ModelCapabilities(outputs=outputs, atomic_types=model.atomic_numbers(),
                             interaction_range=model.cutoff(), length_unit="angstrom",
                             supported_devices=["cpu"], dtype=dtype)


def export_metatomic(model: BPNNModel, path: Union[str, Path], dtype: Optional[str] = None, description: str = "",
                     references: Optional[List[str]] = None, native_kernels: Optional[bool] = None) -> Path:
    """Write `model` (a BPNNModel in eval mode) as a metatomic model file at `path`; returns the
    path. `dtype`: "float64", "float32" or "mixed" (None: the model's). `native_kernels` (None:
    where they build here; True: an error where they do not): the file runs the fused C++
    kernels, and metatomic records the op library's path in it (`extensions`), which engines load
    before the model (docs/metatomic.md); False: the torch path, which needs no library and is
    12-17x slower."""
    kernels = native_kernels is not False and _kernels_load(native_kernels is True)
    frozen = frozen_copy(model, dtype, kernels)
    metadata = ModelMetadata(name="bpnn_ts model", description=description or "Behler-Parrinello neural network "
                             "potential written by bpnn_ts",
                             references={"model": references} if references else {})
    path = Path(path)
    AtomisticModel(MetatomicBPNN(frozen).eval(), metadata, capabilities(frozen)).save(str(path))
    return path


def _kernels_load(required: bool) -> bool:
    """Whether the fused kernels are registered in this process (built on first use); where they
    cannot be, a ValueError if `required`, else False."""
    from ..native import load_error, load_ops
    if load_ops():
        return True
    if required:
        raise ValueError(f"native_kernels=True: the fused C++ kernels cannot be built here ({load_error()})")
    return False
