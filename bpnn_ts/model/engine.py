"""BPNNModel: the engine contract of export/CONTRACT.md around the physics (potential.py). It
holds the typed getters, the input checks, the neighbour search, the tuning knobs and the one
forward that ASE, the C++ loader and LAMMPS call; every method exists in every format-2 file,
so loaders never probe."""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .. import keys
from ..elements import SYMBOLS, species_table
from .element import ElementParts
from .inputs import check_cell_values, check_engine_list, check_overlap, check_requests, check_system, species_of
from .jit import with_scripted_submodule
from .multi_system import check_batch, per_system, side_by_side
from .neighbors import NativePairSearch, PairSearch, TorchPairSearch, check_cell
from .pairs import PairList, Request, local_pairs
from .potential import BPNNPotential, Physics
from .spec import ModelSpec
from .whole_evaluation import as_result


class BPNNModel(torch.nn.Module):
    """A BPNN with the engine contract: positions (Å), atomic numbers, cell and pbc (or an engine's
    pair list) in; energy (eV), per-atom energies, forces (eV/Å), virial (eV) and the optional
    outputs of keys.py out. `potential` is the physics; `pair_search` the neighbour-search slot
    (torch, or the C++ cell list of the fused kernels)."""

    pair_search: PairSearch
    potential: Physics  # (an interface: TorchScript calls it without inlining it into forward, see Physics)
    __jit_ignored_attributes__ = ["weights_origin"]

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.potential = BPNNPotential(spec)
        self.cutoff_radius = float(spec.cutoff)
        self.n_members = int(spec.committee_size)
        self.atomic_numbers_list: List[int] = list(spec.atomic_numbers)
        self.spec_json: str = spec.to_json()
        self._spec = spec  # (host side only: TorchScript leaves it out of the file)
        self.element_symbols: List[str] = [SYMBOLS[z - 1] for z in spec.atomic_numbers]
        self.all_symbols: List[str] = ["X"] + list(SYMBOLS)  # index = atomic number
        self.register_buffer("species_of_z", species_table(spec.atomic_numbers))
        self.pair_search = TorchPairSearch()
        self.validate_inputs = True  # NaN/inf and overlapping-atom checks (cheap; off only in benchmarks)
        self.whole_evaluation_atoms = 1 << 40  # systems up to this size: one op (bpnn::evaluate) where it applies
        # (host side) where the weights came from: "initial" (seeded, never trained: export warns),
        # "loaded" (load_state_dict), "assigned" (set_element_weights), "trained", "committee"
        self.weights_origin = "initial"

    @torch.jit.unused
    def use_native_kernels(self, enable: bool = True) -> bool:
        """Compute descriptors, their force contraction and the pair search with the fused C++
        kernels on the CPU (torch.ops.bpnn; built on first use, see bpnn_ts.native). Returns whether
        they are on: False, with nothing changed, where the kernels cannot be built. Training
        (create_graph) runs through them (their autograd is registered in C++); descriptor
        Jacobians keep the torch path, and so do CUDA inputs unless the ops were built with CUDA
        (`torch.ops.bpnn.cuda_kernels()`: then the descriptors and the pair search run in the CUDA
        kernels)."""
        from ..native import load_ops
        if enable and not load_ops():
            return False
        self.potential.use_native_kernels(self._spec, enable)
        self.pair_search = NativePairSearch() if enable else TorchPairSearch()
        return enable

    @torch.jit.unused
    def __prepare_scriptable__(self) -> "BPNNModel":
        """What torch.jit.script compiles: this model with its potential scripted first (jit.py)."""
        return with_scripted_submodule(self, "potential")

    # ---- host side: Python only, eager models (TorchScript leaves these out of the file) ----
    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "BPNNModel":
        """An untrained float64 model of `spec` (torch's default initial weights; in training mode,
        as torch modules start): load a state dict into it, or train it."""
        return cls(spec).double()

    @torch.jit.unused
    def spec(self) -> ModelSpec:
        """The architecture (what `model_spec()` gives as JSON)."""
        return self._spec

    @torch.jit.unused
    def element_parts(self) -> List[ElementParts]:
        """Each element's scaling and network(s), in species order (committee folding)."""
        return [element.parts(z) for z, element in zip(self.atomic_numbers_list, self.potential.elements)]

    @torch.jit.unused
    def energy_shifts(self) -> torch.Tensor:
        """The reference energies (n_elements,) in eV, in the model's dtype and on its device."""
        return self.potential.atomic_energy_shift

    @torch.jit.unused
    def scaling_statistics(self) -> Dict[int, torch.Tensor]:
        """{Z: (n_functions, 4) [Gmin, Gmax, Gmean, sigma]} of every element (float64)."""
        return {part.atomic_number: part.scaling.statistics() for part in self.element_parts()}

    @torch.jit.unused
    def set_scaling_statistics(self, statistics: Mapping[int, torch.Tensor],
                               negligible: float = 0.0) -> Dict[int, torch.Tensor]:
        """Set every element's input scaling (and so its training range) from {Z: (n_functions, 4)
        [Gmin, Gmax, Gmean, sigma]}; every element of the model must be given. Functions whose
        range is below `negligible` x the element's widest are held constant (Scaling); returns
        {Z: (n_functions,) bool} of those."""
        missing = [z for z in self.atomic_numbers_list if z not in statistics]
        if missing:
            raise ValueError(f"scaling statistics lack elements {missing} (atomic numbers) of this model")
        return {part.atomic_number: part.scaling.set_statistics(*torch.as_tensor(statistics[part.atomic_number]).T,
                                                                negligible=negligible)
                for part in self.element_parts()}

    @torch.jit.unused
    def scaling_factors(self) -> Dict[int, torch.Tensor]:
        """{Z: (n_functions,)} the factor each function's input is multiplied by (0: held constant)."""
        return {part.atomic_number: part.scaling.factor.detach().clone() for part in self.element_parts()}

    @torch.jit.unused
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """torch's load_state_dict; marks the weights as given (`weights_origin` "loaded")."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.weights_origin = "loaded"
        return result

    @torch.jit.unused
    def set_element_weights(self, atomic_number: int, layers: Sequence[Tuple[torch.Tensor, torch.Tensor]],
                            member: int = 0) -> None:
        """The weights (n_out, n_in) and biases (n_out,) of every layer of an element's network
        (committee member `member`), input layer first."""
        nets = self._part(atomic_number).nets
        if not 0 <= member < len(nets):
            raise ValueError(f"member must be in [0, {len(nets)}), got {member}")
        nets[member].set_layers(layers)
        self.weights_origin = "assigned"

    @torch.jit.unused
    def element_weights(self, atomic_number: int, member: int = 0) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Copies of the weights and biases of an element's network (member `member`), input layer first."""
        return self._part(atomic_number).nets[member].get_layers()

    @torch.jit.unused
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw every network's weights from `generator` (Xavier-uniform, zero biases), element by element."""
        for part in self.element_parts():
            for net in part.nets:
                net.reset_parameters(generator)

    def _part(self, atomic_number: int) -> ElementParts:
        for part in self.element_parts():
            if part.atomic_number == atomic_number:
                return part
        raise ValueError(f"atomic number {atomic_number} is not an element of this model "
                         f"({self.atomic_numbers_list})")

    @torch.jit.export
    def set_mixed_precision(self, enable: bool) -> None:
        """Mixed precision on or off: float32 descriptors and nets, float64 positions and sums (the
        parameters must be float32 first: `.to(torch.float32)`)."""
        self.potential.set_mixed_precision(enable)

    @torch.jit.export
    def energies_from_descriptors(self, descriptors: torch.Tensor, species: torch.Tensor,
                                  create_graph: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies (N,) and dE/dG (N, max F) from raw descriptors (N, max F) of atoms of
        `species` (N,): the networks only (training on cached descriptors)."""
        return self.potential.energies_from_descriptors(descriptors, species, create_graph)

    @torch.jit.export
    def species_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """(N,) species index of each atom; an error naming an element the model lacks."""
        return self._species(atomic_numbers)

    # ---- typed getters (the contract) ----
    @torch.jit.export
    def format_version(self) -> int:
        return keys.FORMAT_VERSION

    @torch.jit.export
    def cutoff(self) -> float:
        """Largest symmetry-function cutoff, Å: engines must give every neighbour closer than this."""
        return self.cutoff_radius

    @torch.jit.export
    def atomic_numbers(self) -> List[int]:
        """Supported elements, ascending."""
        return self.atomic_numbers_list

    @torch.jit.export
    def committee_size(self) -> int:
        """Networks per element: 1, or K > 1 for a committee (forward's `compute_uncertainty`)."""
        return self.n_members

    @torch.jit.export
    def dtype_name(self) -> str:
        """"float64", "float32" or "mixed" (bpnn_ts/precision.py)."""
        return self.potential.dtype_name()

    @torch.jit.export
    def length_unit(self) -> str:
        return "angstrom"

    @torch.jit.export
    def energy_unit(self) -> str:
        return "eV"

    @torch.jit.export
    def training_range_known(self) -> bool:
        """True if the model can count extrapolation (it stores every function's training range)."""
        return self.potential.training_range_known()

    @torch.jit.export
    def uses_native_kernels(self) -> bool:
        """True if the graph calls the fused C++ ops (torch.ops.bpnn)."""
        return self.potential.uses_fused_kernels()

    @torch.jit.export
    def model_spec(self) -> str:
        """The architecture as JSON (bpnn_ts.model.spec.ModelSpec)."""
        return self.spec_json

    # ---- tuning knobs (results do not depend on them) ----
    @torch.jit.export
    def set_chunk_size(self, cpu: int, cuda: int) -> None:
        """Most centres per chunk of the torch path on CPU / CUDA (memory vs speed)."""
        if cpu < 1 or cuda < 1:
            raise ValueError("chunk sizes must be >= 1, got " + str(cpu) + ", " + str(cuda))
        self.potential.set_chunk_size(cpu, cuda)

    @torch.jit.export
    def set_block_budget(self, cpu: int, cuda: int) -> None:
        """Most elements of a chunk's largest triplet block on CPU / CUDA (cache use vs per-chunk
        overhead)."""
        if cpu < 1 or cuda < 1:
            raise ValueError("block budgets must be >= 1, got " + str(cpu) + ", " + str(cuda))
        self.potential.set_block_budget(cpu, cuda)

    # ---- the engine forward ----
    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                cell: Optional[torch.Tensor] = None, pbc: Optional[torch.Tensor] = None,
                pairs: Optional[torch.Tensor] = None, shifts: Optional[torch.Tensor] = None,
                n_local: Optional[int] = None, compute_forces: bool = True,
                compute_virial: bool = False, count_extrapolation: bool = False,
                compute_uncertainty: bool = False) -> Dict[str, torch.Tensor]:
        """Energy (eV), per-atom energies, forces (eV/Å) and virial (eV); see export/CONTRACT.md.

        positions (N, 3) Å; atomic_numbers (N,); cell (3, 3) rows = lattice vectors; pbc (3,) bool.
        Without `pairs` the model builds its own neighbour list. With `pairs` (2, P) and `shifts`
        (P, 3) from an engine, atoms from `n_local` on are ghosts: they carry no energy but
        receive forces. `compute_uncertainty` (committees): every member is evaluated; outputs
        are their mean plus the committee outputs of keys.py.
        """
        check_requests(compute_uncertainty, self.n_members, count_extrapolation, self.potential.training_range_known())
        if not compute_uncertainty and self.validate_inputs and positions.shape[0] <= self.whole_evaluation_atoms \
                and self.potential.whole_evaluation_ready(positions.device):
            whole = self._whole_evaluation(positions, atomic_numbers, cell, pbc, pairs, shifts, n_local,
                                           compute_forces, compute_virial, count_extrapolation)
            if len(whole) > 0:
                return whole
        pair_list, closest_pair, closest_distance, _ = self._checked_pair_list(positions, atomic_numbers, cell, pbc,
                                                                               pairs, shifts, n_local)
        request = Request(compute_forces, compute_virial, False, False, count_extrapolation)
        result = self.potential(pair_list, request, compute_uncertainty)
        result[keys.CLOSEST_PAIR] = closest_pair
        result[keys.MIN_DISTANCE] = closest_distance
        return result

    def _whole_evaluation(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: Optional[torch.Tensor],
                          pbc: Optional[torch.Tensor], pairs: Optional[torch.Tensor], shifts: Optional[torch.Tensor],
                          n_local: Optional[int], compute_forces: bool, compute_virial: bool,
                          count_extrapolation: bool) -> Dict[str, torch.Tensor]:
        """`forward`'s result by one op (whole_evaluation.py); {} where the general path must check."""
        cell, pbc = self._checked_system(positions, atomic_numbers, cell, pbc, False, pairs is None)
        engine_list: Optional[Tuple[torch.Tensor, torch.Tensor, int]] = None if pairs is None else \
            check_engine_list(pairs, shifts, n_local, positions.shape[0], positions.device)
        out = self.potential.evaluate_whole(positions, atomic_numbers, cell, pbc, engine_list, self.species_of_z,
                                            compute_virial, count_extrapolation)  # (the op runs under no_grad)
        return as_result(out, compute_forces, compute_virial, count_extrapolation) if len(out) > 0 else {}

    @torch.jit.export
    def compute_descriptors(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                            cell: Optional[torch.Tensor] = None,
                            pbc: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Raw and scaled symmetry functions of every atom, (N, max F), zero-padded beyond each
        element's own function count (with the energies)."""
        pair_list, _, _, _ = self._checked_pair_list(positions, atomic_numbers, cell, pbc, None, None, None)
        return self.potential(pair_list, Request(False, False, True, False, False), False)

    @torch.jit.export
    def compute_descriptor_jacobian(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                                    cell: Optional[torch.Tensor] = None,
                                    pbc: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """G (N, max F) and dG_i/dr_ij per pair (P, max F, 3) with the pairs' centres i, neighbours
        j (P,) and vectors r_ij (P, 3): what a training cache needs.
        dE/dr_ij = sum_f dE_i/dG_if dG_if/dr_ij; F_i += dE/dr_ij, F_j -= dE/dr_ij."""
        pair_list, _, _, _ = self._checked_pair_list(positions, atomic_numbers, cell, pbc, None, None, None)
        return self.potential(pair_list, Request(False, False, True, True, False), False)

    @torch.jit.export
    def pair_energy_gradients(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
                              pbc: torch.Tensor, pairs: torch.Tensor, shifts: torch.Tensor, n_local: int,
                              compute_uncertainty: bool = False) -> Dict[str, torch.Tensor]:
        """For engines that differentiate the energy themselves (metatomic): per-atom energies of
        the local atoms (eV) and dE/dr_ij (P, 3), eV/Å, of every pair of the engine's list
        (pairs (2, P), shifts (P, 3), as in forward), in its order; zero for pairs the model
        ignores (a ghost centre, beyond the cutoff). With r_ij = R_j - R_i + shifts @ cell the
        rest follows: F_i += dE/dr_ij, F_j -= dE/dr_ij, W = -sum r_ij (x) dE/dr_ij.
        Committees with `compute_uncertainty`: the mean, and each member's (keys.py)."""
        check_requests(compute_uncertainty, self.n_members, False, self.potential.training_range_known())
        pair_list, _, _, kept = self._checked_pair_list(positions, atomic_numbers, cell, pbc, pairs, shifts, n_local)
        result = self.potential(pair_list, Request(False, False, False, False, False, True), compute_uncertainty)
        n_pairs = pairs.shape[1]
        names = [keys.PAIR_GRADIENTS, keys.COMMITTEE_PAIR_GRADIENTS] if compute_uncertainty else [keys.PAIR_GRADIENTS]
        for name in names:
            kept_values = result[name]  # (..., kept pairs, 3)
            shape = list(kept_values.shape)
            shape[-2] = n_pairs
            full = torch.zeros(shape, dtype=kept_values.dtype, device=kept_values.device)
            result[name] = full.index_copy(len(shape) - 2, kept, kept_values)
        return result

    # ---- inputs ----
    def _checked_pair_list(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: Optional[torch.Tensor],
                           pbc: Optional[torch.Tensor], pairs: Optional[torch.Tensor], shifts: Optional[torch.Tensor],
                           n_local: Optional[int]) -> Tuple[PairList, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Checked inputs as the potential's PairList (local centres within the cutoff), the closest
        pair (2,) with its distance (Å; -1, -1 and inf without pairs or validation), and the index
        (P_kept,) in the given pairs of each pair of the PairList."""
        dtype = self.potential.sums_dtype()
        device = positions.device
        cell, pbc = self._checked_system(positions, atomic_numbers, cell, pbc, self.validate_inputs, pairs is None)
        species = self._species(atomic_numbers)
        n_atoms = positions.shape[0]
        positions = positions.to(dtype).detach()
        cell = cell.to(dtype=dtype, device=device).detach()
        engine_list = pairs is not None
        if pairs is None:
            pairs, shifts = self.pair_search(positions, cell, pbc.to(device), self.cutoff_radius)
            n_local = n_atoms
        else:
            pairs, shifts, n_local = check_engine_list(pairs, shifts, n_local, n_atoms, device)
        assert shifts is not None
        local = local_pairs(positions, cell, pairs, shifts, torch.full((), n_local, dtype=torch.long, device=device),
                            self.cutoff_radius, not engine_list, self.validate_inputs)
        if self.validate_inputs and pairs.shape[1] > 0:
            check_overlap(local.min_distance, local.closest_pair)
        pair_list = PairList(local.centres, local.neighbours, local.vectors, species, n_local)
        return pair_list, local.closest_pair, local.min_distance, local.kept

    def _checked_system(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: Optional[torch.Tensor],
                        pbc: Optional[torch.Tensor], check_values: bool, check_the_cell: bool
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """cell and pbc (zeros and False where None) after check_system; with `check_the_cell`, the
        one check of a periodic cell (the pair searches trust it), its values checked first."""
        if cell is None:
            cell = torch.zeros((3, 3), dtype=self.potential.sums_dtype(), device=positions.device)
        if pbc is None:
            pbc = torch.zeros(3, dtype=torch.bool, device=positions.device)
        check_system(positions, atomic_numbers, cell, pbc, check_values)
        periodic: List[bool] = pbc.tolist()
        if check_the_cell and positions.shape[0] > 0 and (periodic[0] or periodic[1] or periodic[2]):
            if not check_values:
                check_cell_values(cell)
            check_cell(cell.to(self.potential.sums_dtype()), periodic)
        return cell, pbc

    def _species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        return species_of(atomic_numbers, self.species_of_z, self.all_symbols, self.element_symbols)

    # ---- many systems per call ----
    @torch.jit.export
    def forward_batch(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, system_index: torch.Tensor,
                      cells: torch.Tensor, pbc: torch.Tensor, compute_forces: bool = True,
                      compute_virial: bool = False, count_extrapolation: bool = False,
                      compute_uncertainty: bool = False) -> Dict[str, torch.Tensor]:
        """B systems in one evaluation (export/CONTRACT.md): what `forward` gives for each, with
        per-system `energy` (B,), `virial` (B, 3, 3), `min_distance` (B,) and per-atom outputs
        over all N atoms.

        positions (N, 3) Å and atomic_numbers (N,) of every system, concatenated; system_index
        (N,) int, non-decreasing, in [0, B): each atom's system; cells (B, 3, 3) rows = lattice
        vectors; pbc (B, 3) bool. The open systems (no periodic axis) share one neighbour
        search, each periodic system gets its own; one pass of the potential covers them all.
        Committees: per-system `committee_energy` (K, B) and `energy_uncertainty` (B,); no
        `committee_virial`.
        """
        check_requests(compute_uncertainty, self.n_members, count_extrapolation,
                       self.potential.training_range_known())
        first = check_batch(positions, atomic_numbers, system_index, cells, pbc, self.validate_inputs)
        system_index = system_index.long()
        pair_list, min_distance = self._batch_pair_list(positions, atomic_numbers, cells, pbc, first, system_index)
        request = Request(compute_forces, compute_virial, False, False, count_extrapolation)
        result = per_system(self.potential(pair_list, request, compute_uncertainty), system_index,
                            len(first) - 1)
        result[keys.MIN_DISTANCE] = min_distance
        return result

    def _batch_pair_list(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cells: torch.Tensor,
                         pbc: torch.Tensor, first: List[int], system_index: torch.Tensor) -> Tuple[PairList, torch.Tensor]:
        """One PairList (global atom indices) of the systems whose atoms start at `first` (B + 1,),
        and each system's closest-pair distance (B,) (Å; inf without pairs or validation). The
        open systems (no periodic axis: molecules, path-integral beads) share one neighbour search,
        side by side along x; each periodic system gets its own."""
        dtype = self.potential.sums_dtype()
        device = positions.device
        cutoff = self.cutoff_radius
        n_systems = len(first) - 1
        species = self._species(atomic_numbers)
        positions = positions.to(dtype).detach()
        cells = cells.to(dtype).detach()
        pair_parts: List[torch.Tensor] = [torch.zeros((2, 0), dtype=torch.long, device=device)]
        vector_parts: List[torch.Tensor] = [torch.zeros((0, 3), dtype=dtype, device=device)]
        periodic_systems: List[bool] = pbc.any(dim=1).tolist()
        if not all(periodic_systems):
            atoms = torch.nonzero(~pbc.any(dim=1)[system_index]).squeeze(1)  # (M,) atoms of open systems
            moved = positions[atoms]
            if periodic_systems.count(False) > 1:
                moved = side_by_side(moved, system_index[atoms], n_systems, 2.0 * cutoff + 1.0)
            no_cell = torch.zeros((3, 3), dtype=dtype, device=device)
            # searched a little wider (moving rounds: 1e-6 of the span covers float32), then cut at
            # the cutoff on the unmoved positions
            margin = 0.01 + 1e-6 * float(moved[:, 0].max()) if moved.shape[0] > 0 else 0.01
            found, _ = self.pair_search(moved, no_cell, torch.zeros(3, dtype=torch.bool, device=device), cutoff + margin)
            pairs = atoms[found]  # (2, P_open) global indices
            vectors = positions[pairs[1]] - positions[pairs[0]]
            kept = torch.nonzero((vectors * vectors).sum(dim=1) < cutoff * cutoff).squeeze(1)
            pair_parts.append(pairs[:, kept])
            vector_parts.append(vectors[kept])
        for b in range(n_systems):
            a0, a1 = first[b], first[b + 1]
            if periodic_systems[b] and a1 > a0:  # (TorchScript: no `continue`)
                periodic: List[bool] = pbc[b].tolist()
                check_cell(cells[b], periodic, "cells[" + str(b) + "]")
                own = positions[a0:a1]  # (n_b, 3)
                pairs, shifts = self.pair_search(own, cells[b], pbc[b], cutoff)
                none_local = torch.zeros((), dtype=torch.long, device=device)
                vector_parts.append(local_pairs(own, cells[b], pairs, shifts, none_local, cutoff, True, False).vectors)
                pair_parts.append(pairs + a0)
        pairs = torch.cat(pair_parts, dim=1)  # (2, P)
        vectors = torch.cat(vector_parts)  # (P, 3)
        min_distance = torch.full((n_systems,), float("inf"), dtype=dtype, device=device)
        if self.validate_inputs and vectors.shape[0] > 0:
            distances = torch.linalg.norm(vectors, dim=1)  # (P,)
            closest = int(torch.argmin(distances))
            check_overlap(distances[closest], pairs[:, closest])
            min_distance = min_distance.scatter_reduce(0, system_index[pairs[0]], distances, "amin")
        return PairList(pairs[0], pairs[1], vectors, species, positions.shape[0]), min_distance
