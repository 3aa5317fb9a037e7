"""The model as one plain tensor program, for torch.export and AOTInductor (`.pt2` files,
bpnn_ts/formats/pt2.py): no autograd (dE/dG by hand through the nets, dE/dr_ij by the fused kernels),
no Python branches on data (per-element work selects its rows with `nonzero`, whose sizes
torch.export keeps symbolic), and every output always computed.

Two programs share the evaluation (`GraphEvaluation`):
  SystemProgram  positions, atomic numbers, cell, pbc -> the model's own neighbour list
                 (torch.ops.bpnn.neighbor_list)
  EngineProgram  positions, atomic numbers, cell, an engine's pairs (2, P) and shifts (P, 3),
                 n_local (a 0-d int64 tensor): atoms from n_local on are ghosts
Both return OUTPUTS in that order (a flat tuple: C++ loaders index it). Per-atom energies and
extrapolation counts have one row per atom given (ghosts: 0); front ends keep the first n_local.
Inputs are checked by the front ends (bpnn_ts/model/inputs.py), not here.
"""

from typing import Dict, List, Optional, Tuple

import torch

from .. import keys
from .engine import BPNNModel
from .forces import add_forces_and_virials, zero_forces_and_virials
from .pairs import ElementPairs, Request, local_pairs
from .uncertainty import combine_members

OUTPUTS = (keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL, keys.ATOMIC_VIRIALS, keys.MIN_DISTANCE,
           keys.CLOSEST_PAIR)
EXTRAPOLATION_OUTPUTS = (keys.EXTRAPOLATION,)
COMMITTEE_OUTPUTS = (keys.COMMITTEE_ENERGY, keys.COMMITTEE_ENERGIES, keys.COMMITTEE_FORCES, keys.COMMITTEE_VIRIAL,
                     keys.ENERGY_UNCERTAINTY, keys.ENERGIES_UNCERTAINTY, keys.FORCES_UNCERTAINTY)


def output_names(model: BPNNModel) -> List[str]:
    """The programs' outputs, in order, for `model` (extrapolation counts if it knows its training
    range; committee outputs if it is a committee)."""
    names = list(OUTPUTS)
    if model.training_range_known():
        names += EXTRAPOLATION_OUTPUTS
    if model.committee_size() > 1:
        names += COMMITTEE_OUTPUTS
    return names


class GraphEvaluation(torch.nn.Module):
    """Energies, forces, virials (and extrapolation counts, committee spreads) of a pair list, from
    the elements of a BPNNModel whose fused kernels are on."""

    def __init__(self, model: BPNNModel):
        super().__init__()
        if not model.uses_native_kernels():
            raise ValueError("a .pt2 program needs the fused C++ kernels: call model.use_native_kernels(True) first")
        self.potential = model.potential
        self.register_buffer("species_of_z", model.species_of_z.clone())
        self.cutoff = float(self.potential.cutoff_radius)
        self.n_members = int(self.potential.n_members)
        self.count_extrapolation = bool(self.potential.training_range_known())
        self.dense = self.potential.dense_settings(torch.device("cpu"))  # (unused: the programs run the fused kernels)
        self.names = output_names(model)

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
                pairs: torch.Tensor, shifts: torch.Tensor, n_local: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        sums = self.potential.sums_dtype()
        positions = positions.to(sums)
        n_atoms = positions.shape[0]
        device = positions.device
        species = torch.clamp(self.species_of_z[torch.clamp(atomic_numbers.long(), 0, 118)], min=0)
        # local centres within the cutoff (the closest pair before the filter, as BPNNModel reports it)
        local = local_pairs(positions, cell.to(sums), pairs, shifts, n_local, self.cutoff, False, True)
        order = torch.argsort(local.centres, stable=True)  # grouped by centre: each element's centres in atom order
        centres, neighbours, geometry = local.centres[order], local.neighbours[order], local.vectors[order]
        is_local = torch.arange(n_atoms, device=device) < n_local
        counts = torch.zeros(n_atoms, dtype=torch.long, device=device).index_add(0, centres, torch.ones_like(centres))
        results = self._members(positions, species, is_local, counts, centres, neighbours, geometry)
        result = combine_members(results) if self.n_members > 1 else results[0]
        result[keys.MIN_DISTANCE] = local.min_distance
        result[keys.CLOSEST_PAIR] = local.closest_pair
        return tuple(result[name] for name in self.names)

    def _members(self, positions: torch.Tensor, species: torch.Tensor, is_local: torch.Tensor, counts: torch.Tensor,
                 centres: torch.Tensor, neighbours: torch.Tensor, geometry: torch.Tensor) -> List[Dict[str, torch.Tensor]]:
        """One result per committee member (one for a single net): per element, ElementModel.evaluate
        on its local centres (rows chosen by `nonzero`), then energies and forces put in place."""
        n_atoms = positions.shape[0]
        sums = positions.dtype
        device = positions.device
        members: List[Optional[int]] = [None] if self.n_members == 1 else list(range(self.n_members))
        results = [zero_forces_and_virials(n_atoms, sums, device, True, True) for _ in members]
        energies = [torch.zeros(n_atoms, dtype=sums, device=device) for _ in members]
        extrapolation = torch.zeros(n_atoms, dtype=torch.long, device=device)
        request = Request(True, True, False, False, self.count_extrapolation)
        centre_species = species[centres]
        zero = torch.zeros(1, dtype=torch.long, device=device)
        potential = self.potential
        for s, element in enumerate(potential.elements):
            atoms = torch.nonzero((species == s) & is_local).squeeze(1)  # (B_s,) ascending
            chosen = torch.nonzero(centre_species == s).squeeze(1)  # (P_s,) grouped like `atoms`
            offsets = torch.cat([zero, torch.cumsum(counts[atoms], 0)])
            pair_geometry = geometry[chosen]
            element_pairs = ElementPairs(pair_geometry.to(potential.atomic_energy_shift.dtype), offsets,
                                         species[neighbours[chosen]])
            out = element.evaluate(element_pairs, members, request, True, self.dense, False, True, potential.energy_scale,
                                   potential.atomic_energy_shift[s])
            if self.count_extrapolation:
                extrapolation = extrapolation.index_put((atoms,), out.extrapolation)
            for m in range(len(members)):
                energies[m] = energies[m].index_put((atoms,), out.energies[m].to(sums))
                add_forces_and_virials(results[m], pair_geometry, out.d_vectors[m], centres[chosen], neighbours[chosen],
                                       True, True)
        for m in range(len(members)):
            results[m][keys.ENERGIES] = energies[m]
            results[m][keys.ENERGY] = energies[m].sum()
        if self.count_extrapolation:
            results[0][keys.EXTRAPOLATION] = extrapolation
        return results


class SystemProgram(torch.nn.Module):
    """positions (N, 3) Å, atomic_numbers (N,), cell (3, 3), pbc (3,) -> OUTPUTS, with the model's
    own neighbour search (the C++ op: periodic images and cell list)."""

    def __init__(self, evaluation: GraphEvaluation):
        super().__init__()
        self.evaluation = evaluation

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        found = torch.ops.bpnn.neighbor_list(positions, cell, pbc, self.evaluation.cutoff)
        n_local = torch.full((), positions.shape[0], dtype=torch.long, device=positions.device)
        return self.evaluation(positions, atomic_numbers, cell, found[0], found[1], n_local)


class EngineProgram(torch.nn.Module):
    """positions (N, 3) Å, atomic_numbers (N,), cell (3, 3), pairs (2, P), shifts (P, 3), n_local
    (0-d int64) -> OUTPUTS: an engine's neighbour list (with ghosts)."""

    def __init__(self, evaluation: GraphEvaluation):
        super().__init__()
        self.evaluation = evaluation

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
                pairs: torch.Tensor, shifts: torch.Tensor, n_local: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.evaluation(positions, atomic_numbers, cell, pairs, shifts, n_local)
