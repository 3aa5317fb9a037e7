"""The Behler-Parrinello potential: species -> symmetry functions -> element nets -> energies,
with forces and virial. This module holds the model, its metadata and input checks and the
engine forward; evaluation runs in evaluation_native.py (fused C++ kernels, CPU inference) or
evaluation_chunked.py (dense torch blocks chunked over centres: CUDA, training, Jacobians).
"""

import json
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from ase.data import chemical_symbols

from . import keys
from .descriptors.acsf import ElementDescriptor, Scaling
from .descriptors.params import SymmetryFunction, function_to_dict
from .element_model import ElementModel
from .elements import MAX_Z, species_table, symbol
from .evaluation_chunked import ChunkedEvaluation
from .evaluation_native import NativeEvaluation
from .extrapolation import count_outside
from .native.kernel import NativeKernel, NativePairSearch, NoKernel, PairSearch, TorchPairSearch
from .nn import CommitteeMLP, ElementMLP
from .uncertainty import combine_members


class BPNNPotential(NativeEvaluation, ChunkedEvaluation, torch.nn.Module):
    """E = sum_i [energy_scale * NN_{Z_i}(scaled G_i) + atomic_energy_shift[Z_i]], in eV and Å.

    `functions`: symmetry functions for every element (each knows its centre);
    the order of a centre element's functions is its network's input order.
    `activations`: one per hidden layer and one for the output layer.
    `atomic_energy_shift`: eV per atom of each element (reference energies,
    plus a mean energy per atom where energies are normalised).
    `committee_size`: networks per element (> 1: a committee; energies and forces are the
    members' mean, `compute_uncertainty` adds their spread; bpnn_ts/committee.py).
    """

    pair_search: PairSearch

    def __init__(self, atomic_numbers: Sequence[int], functions: Sequence[SymmetryFunction],
                 hidden_layers: Sequence[int], activations: Sequence[str],
                 cutoff_type: int = 1, cutoff_alpha: float = 0.0, scaling: str = "none",
                 scale_min: float = 0.0, scale_max: float = 1.0, energy_scale: float = 1.0,
                 atomic_energy_shift: Optional[Dict[int, float]] = None, committee_size: int = 1):
        super().__init__()
        if committee_size < 1:
            raise ValueError(f"`committee_size` must be >= 1, got {committee_size}")
        numbers = [int(z) for z in atomic_numbers]
        if numbers != sorted(set(numbers)):
            raise ValueError(f"`atomic_numbers` must be distinct and ascending, got {numbers}")
        unknown = sorted({z for f in functions for z in _elements_of(f)} - set(numbers))
        if unknown:
            raise ValueError(f"symmetry functions use elements {[symbol(z) for z in unknown]} "
                             f"that are not in the model's elements {[symbol(z) for z in numbers]}")
        shifts = atomic_energy_shift or {}
        extra = sorted(set(shifts) - set(numbers))
        if extra:
            raise ValueError(f"atomic energies given for elements {[symbol(z) for z in extra]} "
                             f"not in the model {[symbol(z) for z in numbers]}")
        self.atomic_numbers_list: List[int] = numbers
        self.element_symbols: List[str] = [symbol(z) for z in numbers]
        self.all_symbols: List[str] = [s for s in chemical_symbols[: MAX_Z + 1]]
        self.register_buffer("species_of_z", species_table(numbers))
        elements: List[ElementModel] = []
        self.functions: List[SymmetryFunction] = list(functions)
        for z in numbers:
            own = [f for f in functions if f.center == z]
            descriptor = ElementDescriptor(own, numbers, cutoff_type, cutoff_alpha)
            nets = [ElementMLP(len(own), hidden_layers, activations) for _ in range(committee_size)]
            net = nets[0] if committee_size == 1 else CommitteeMLP(nets)
            elements.append(ElementModel(descriptor, Scaling(len(own), scaling, scale_min, scale_max), net))
        self.elements = torch.nn.ModuleList(elements)
        self.n_functions: List[int] = [len([f for f in functions if f.center == z]) for z in numbers]
        self.cutoff_radius = float(max(f.r_c for f in functions))
        self.padding_distance = 2.0 * self.cutoff_radius + 1.0
        self.energy_scale = float(energy_scale)
        self.n_members = int(committee_size)
        self.register_buffer("atomic_energy_shift", torch.tensor(
            [float(shifts.get(z, 0.0)) for z in numbers], dtype=torch.float64))
        self.chunk_size_cpu = 32
        self.chunk_size_cuda = 2048
        self.validate_inputs = True
        self.uniform_blocks = True  # every chunk of an element gets the same block widths (the widest)
        self.block_budget_cpu = 1 << 20  # elements of the largest triplet block per chunk
        self.block_budget_cuda = 1 << 26
        self.analytic_forces = True  # False: autograd through the descriptor (the test oracle)
        self.native_kernels = False  # True: fused C++ descriptor kernels on the CPU (use_native_kernels)
        self.mixed_precision = False  # True: float32 descriptors and nets, float64 geometry and sums (precision.py)
        self.pair_search = TorchPairSearch()
        self.cutoff_type = int(cutoff_type)
        self.cutoff_alpha = float(cutoff_alpha)
        self.spec_json: str = json.dumps({
            "atomic_numbers": numbers, "functions": [function_to_dict(f) for f in functions],
            "hidden_layers": [int(h) for h in hidden_layers], "activations": list(activations),
            "cutoff_type": int(cutoff_type), "cutoff_alpha": float(cutoff_alpha),
            "scaling": scaling, "scale_min": float(scale_min), "scale_max": float(scale_max),
            "energy_scale": float(energy_scale),
            "atomic_energy_shift": {str(z): float(shifts.get(z, 0.0)) for z in numbers},
            "committee_size": int(committee_size)})

    @torch.jit.ignore
    def use_native_kernels(self, enable: bool = True) -> bool:
        """Compute descriptors and their force contraction with the fused C++ kernels on the
        CPU (torch.ops.bpnn; built on first use, see bpnn_ts.native). Returns whether they are
        on: False, with nothing changed, where the kernels cannot be built. Training
        (create_graph), descriptor Jacobians and CUDA inputs keep the pure-torch path."""
        from .native import load_ops
        if enable and not load_ops():
            return False
        numbers = self.atomic_numbers_list
        for z, element in zip(numbers, self.elements):
            own = [f for f in self.functions if f.center == z]
            kernel = NativeKernel(own, numbers, self.cutoff_type, self.cutoff_alpha) if enable else NoKernel()
            element.kernel = kernel.to(self.atomic_energy_shift.device)
        self.pair_search = NativePairSearch() if enable else TorchPairSearch()
        self.native_kernels = enable
        return enable

    @torch.jit.export
    def uses_native_kernels(self) -> bool:
        return self.native_kernels

    # ---- metadata getters (part of the model-file contract) ----
    @torch.jit.export
    def format_version(self) -> int:
        return keys.FORMAT_VERSION

    @torch.jit.export
    def cutoff(self) -> float:
        """Largest symmetry-function cutoff, Å: engines need neighbours up to here."""
        return self.cutoff_radius

    @torch.jit.export
    def atomic_numbers(self) -> List[int]:
        return self.atomic_numbers_list

    @torch.jit.export
    def committee_size(self) -> int:
        """Networks per element: 1, or K > 1 for a committee (forward's `compute_uncertainty`)."""
        return self.n_members

    @torch.jit.export
    def dtype_name(self) -> str:
        """"float64", "float32" or "mixed" (bpnn_ts/precision.py)."""
        if self.mixed_precision:
            return "mixed"
        return "float64" if self.atomic_energy_shift.dtype == torch.float64 else "float32"

    @torch.jit.export
    def length_unit(self) -> str:
        return "angstrom"

    @torch.jit.export
    def energy_unit(self) -> str:
        return "eV"

    @torch.jit.export
    def set_chunk_size(self, cpu: int, cuda: int) -> None:
        """Centres per chunk on CPU / CUDA (memory vs. speed; results do not change)."""
        if cpu < 1 or cuda < 1:
            raise ValueError("chunk sizes must be >= 1, got " + str(cpu) + ", " + str(cuda))
        self.chunk_size_cpu = cpu
        self.chunk_size_cuda = cuda

    @torch.jit.export
    def set_block_budget(self, cpu: int, cuda: int) -> None:
        """Elements of the largest triplet block per chunk on CPU / CUDA (memory and
        cache use vs. per-chunk overhead; results do not change)."""
        if cpu < 1 or cuda < 1:
            raise ValueError("block budgets must be >= 1, got " + str(cpu) + ", " + str(cuda))
        self.block_budget_cpu = cpu
        self.block_budget_cuda = cuda

    # ---- input checks ----
    def _species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        z = torch.clamp(atomic_numbers, 0, len(self.all_symbols) - 1)
        species = self.species_of_z[z]
        unknown = (species < 0) | (atomic_numbers != z)
        if bool(unknown.any()):
            bad = int(atomic_numbers[unknown][0])
            name = self.all_symbols[bad] if 0 < bad < len(self.all_symbols) else "Z=" + str(bad)
            raise ValueError("element " + name + " (atomic number " + str(bad) + ") is not in this model; "
                             + "supported elements: " + ", ".join(self.element_symbols))
        return species

    def _check(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
               pbc: torch.Tensor) -> None:
        if positions.dim() != 2 or positions.shape[1] != 3:
            raise ValueError("`positions` must have shape (n_atoms, 3), got " + str(positions.shape))
        if not positions.is_floating_point():
            raise ValueError("`positions` must be a floating-point tensor, got " + str(positions.dtype))
        if atomic_numbers.shape != (positions.shape[0],):
            raise ValueError("`atomic_numbers` must have shape (n_atoms,) = (" + str(positions.shape[0])
                             + ",), got " + str(atomic_numbers.shape))
        if atomic_numbers.is_floating_point() or atomic_numbers.dtype == torch.bool:
            raise ValueError("`atomic_numbers` must be an integer tensor, got " + str(atomic_numbers.dtype))
        if cell.shape != (3, 3):
            raise ValueError("`cell` must have shape (3, 3) (rows = lattice vectors), got " + str(cell.shape))
        if pbc.shape != (3,) or pbc.dtype != torch.bool:
            raise ValueError("`pbc` must be a bool tensor of shape (3,), got " + str(pbc.dtype)
                             + " " + str(pbc.shape))
        if self.validate_inputs:
            if not bool(torch.isfinite(positions).all()):
                raise ValueError("`positions` contain NaN or inf")
            if not bool(torch.isfinite(cell).all()):
                raise ValueError("`cell` contains NaN or inf")

    # ---- the engine forward ----
    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                cell: Optional[torch.Tensor] = None, pbc: Optional[torch.Tensor] = None,
                pairs: Optional[torch.Tensor] = None, shifts: Optional[torch.Tensor] = None,
                n_local: Optional[int] = None, compute_forces: bool = True,
                compute_virial: bool = False, count_extrapolation: bool = False,
                compute_uncertainty: bool = False) -> Dict[str, torch.Tensor]:
        """Energy (eV), per-atom energies, forces (eV/Å) and virial (eV); see export/CONTRACT.md.

        positions (N, 3) Å; atomic_numbers (N,); cell (3, 3) rows = lattice vectors;
        pbc (3,) bool. Without `pairs` the model builds its own neighbour list.
        With `pairs` (2, P) and `shifts` (P, 3) from an engine, atoms from
        `n_local` on are ghosts: they carry no energy but receive forces.
        `compute_uncertainty` (committees only): every member is evaluated, outputs are
        their mean plus the committee outputs of keys.py (one force contraction per member).
        """
        vectors, pairs, species, n_atoms, n_local, closest_pair, closest_distance = self._prepare(
            positions, atomic_numbers, cell, pbc, pairs, shifts, n_local)
        if compute_uncertainty:
            if self.n_members < 2:
                raise ValueError("compute_uncertainty needs a committee model (committee_size() > 1); this one has "
                                 + "one network per element (build one with bpnn_ts.committee.build_committee)")
            members: List[int] = []
            for member in range(self.n_members):
                members.append(member)
            result = combine_members(self._evaluate(vectors, pairs, species, n_atoms, n_local, compute_forces,
                                                    compute_virial, count_extrapolation, False, members))
        else:
            result = self._evaluate(vectors, pairs, species, n_atoms, n_local,
                                    compute_forces, compute_virial, count_extrapolation, False, [-1])[0]
        result[keys.CLOSEST_PAIR] = closest_pair
        result[keys.MIN_DISTANCE] = closest_distance
        if count_extrapolation:
            result[keys.EXTRAPOLATION] = self._extrapolation_counts(result.pop(keys.DESCRIPTORS), species[:n_local])
            result.pop(keys.SCALED_DESCRIPTORS)
        return result

    @torch.jit.export
    def training_range_known(self) -> bool:
        """True if every element has its training range [Gmin, Gmax] (scaling statistics)."""
        known = True
        for element in self.elements:
            known = known and element.scaling.has_statistics
        return known

    def _extrapolation_counts(self, g: torch.Tensor, local_species: torch.Tensor) -> torch.Tensor:
        """(n_local,) functions outside [Gmin, Gmax] per atom, from G (n_local, max F)."""
        if not self.training_range_known():
            raise ValueError("this model has no training range [Gmin, Gmax] of its symmetry functions "
                             "(no scaling statistics): it cannot count extrapolation")
        counts = torch.zeros(local_species.shape[0], dtype=torch.long, device=g.device)
        for s, element in enumerate(self.elements):
            rows = local_species == s
            bounds_min, bounds_max = element.scaling.g_min, element.scaling.g_max
            counts[rows] = count_outside(g[rows, : bounds_min.shape[0]], bounds_min, bounds_max)
        return counts

    def _prepare(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                 cell: Optional[torch.Tensor], pbc: Optional[torch.Tensor],
                 pairs: Optional[torch.Tensor], shifts: Optional[torch.Tensor],
                 n_local: Optional[int]
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int, torch.Tensor, torch.Tensor]:
        """Check inputs; return pair vectors (P, 3), pairs (2, P), species (N,), N, n_local, and
        the closest pair (2,) with its distance (Å; -1, -1 and inf without pairs or validation)."""
        dtype = torch.float64 if self.mixed_precision else self.atomic_energy_shift.dtype
        device = positions.device
        if cell is None:
            cell = torch.zeros((3, 3), dtype=dtype, device=device)
        if pbc is None:
            pbc = torch.zeros(3, dtype=torch.bool, device=device)
        self._check(positions, atomic_numbers, cell, pbc)
        n_atoms = positions.shape[0]
        species = self._species(atomic_numbers)
        positions = positions.to(dtype).detach()
        cell = cell.to(dtype=dtype, device=device).detach()
        if pairs is None:
            pairs, shifts = self.pair_search(positions, cell, pbc.to(device), self.cutoff_radius)
            n_local = n_atoms
        else:
            pairs, shifts, n_local = self._check_engine_list(pairs, shifts, n_local, n_atoms)
        assert shifts is not None
        vectors = positions[pairs[1]] - positions[pairs[0]] + shifts.to(dtype) @ cell  # (P, 3)
        closest_pair = torch.full((2,), -1, dtype=torch.long, device=device)
        closest_distance = torch.full((), float("inf"), dtype=vectors.dtype, device=device)
        if self.validate_inputs and vectors.shape[0] > 0:
            closest = int(torch.argmin((vectors * vectors).sum(dim=1)))
            closest_pair = pairs[:, closest]
            closest_distance = torch.linalg.norm(vectors[closest])
            if float(closest_distance) < 1e-6:
                raise ValueError("atoms " + str(int(pairs[0, closest])) + " and " + str(int(pairs[1, closest]))
                                 + " overlap (distance < 1e-6 Å)")
        return vectors, pairs, species, n_atoms, n_local, closest_pair, closest_distance

    def _check_engine_list(self, pairs: torch.Tensor, shifts: Optional[torch.Tensor],
                           n_local: Optional[int], n_atoms: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
        if pairs.dim() != 2 or pairs.shape[0] != 2:
            raise ValueError("`pairs` must have shape (2, n_pairs), got " + str(pairs.shape))
        if pairs.is_floating_point():
            raise ValueError("`pairs` must be an integer tensor, got " + str(pairs.dtype))
        if shifts is None:
            shifts = torch.zeros((pairs.shape[1], 3), dtype=torch.long, device=pairs.device)
        if shifts.shape != (pairs.shape[1], 3):
            raise ValueError("`shifts` must have shape (n_pairs, 3) = (" + str(pairs.shape[1])
                             + ", 3), got " + str(shifts.shape))
        if n_local is None:
            n_local = n_atoms
        if n_local < 0 or n_local > n_atoms:
            raise ValueError("`n_local` must be in [0, n_atoms=" + str(n_atoms) + "], got " + str(n_local))
        pairs = pairs.long()
        if pairs.shape[1] > 0 and (int(pairs.min()) < 0 or int(pairs.max()) >= n_atoms):
            raise ValueError("`pairs` hold atom indices outside [0, " + str(n_atoms) + ")")
        return pairs, shifts, n_local

    @torch.jit.export
    def compute_descriptors(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                            cell: Optional[torch.Tensor] = None,
                            pbc: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Raw and scaled symmetry functions of every atom, (N, max F), zero-padded
        beyond each element's own function count."""
        vectors, pairs, species, n_atoms, n_local, _, _ = self._prepare(
            positions, atomic_numbers, cell, pbc, None, None, None)
        return self._evaluate(vectors, pairs, species, n_atoms, n_local, False, False, True, False, [-1])[0]

    @torch.jit.export
    def compute_descriptor_jacobian(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                                    cell: Optional[torch.Tensor] = None,
                                    pbc: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """G (N, max F) and dG_i/dr_ij per pair (P, max F, 3) with the pairs' centres i,
        neighbours j (P,) and vectors r_ij (P, 3): what a training cache needs.
        dE/dr_ij = sum_f dE_i/dG_if dG_if/dr_ij; F_i += dE/dr_ij, F_j -= dE/dr_ij."""
        vectors, pairs, species, n_atoms, n_local, _, _ = self._prepare(
            positions, atomic_numbers, cell, pbc, None, None, None)
        return self._evaluate(vectors, pairs, species, n_atoms, n_local, False, False, True, True, [-1])[0]

    def _evaluate(self, vectors: torch.Tensor, pairs: torch.Tensor, species: torch.Tensor,
                  n_atoms: int, n_local: int, compute_forces: bool, compute_virial: bool,
                  want_descriptors: bool, want_jacobian: bool, members: List[int]) -> List[Dict[str, torch.Tensor]]:
        """Energies, forces, virials (and descriptors, in the first result) of each of `members`
        (-1: the committee mean): engine pairs filtered, centres ranked by element, then the
        native path (descriptors shared by the members) or the chunked path (once per member)."""
        device = vectors.device
        if n_local < n_atoms or pairs.shape[1] == 0:  # engine lists: local centres, within cutoff
            keep = (pairs[0] < n_local) & ((vectors * vectors).sum(dim=1) < self.cutoff_radius ** 2)
            pairs = pairs[:, keep]
            vectors = vectors[keep]
        centre, neighbour = pairs[0], pairs[1]
        geometry = vectors  # float64 in mixed precision: forces and virials are summed in it
        vectors = vectors.to(self.atomic_energy_shift.dtype)

        # Centres sorted by element (rank order); pairs sorted by (centre rank, neighbour species).
        local_species = species[:n_local]
        order = torch.argsort(local_species, stable=True)  # rank -> atom
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n_local, device=device)
        sorted_species = local_species[order]
        neighbour_species = species[neighbour]
        if (self.native_kernels and device.type == "cpu" and not self.training and not want_jacobian
                and self.analytic_forces):  # the kernels need pairs grouped by centre rank only
            centre_rank, perm = torch.sort(rank[centre], stable=True)
            pair_end = torch.cumsum(torch.bincount(centre_rank, minlength=n_local), 0)
            return self._evaluate_native(vectors[perm], geometry[perm], neighbour_species[perm], pair_end, rank,
                                         centre[perm], neighbour[perm], local_species, n_atoms, n_local,
                                         compute_forces, compute_virial, want_descriptors, members)
        results: List[Dict[str, torch.Tensor]] = []
        for member in members:
            results.append(self._evaluate_chunked(vectors, geometry, centre, neighbour, rank, local_species,
                                                  sorted_species, neighbour_species, n_atoms, n_local, compute_forces,
                                                  compute_virial, want_descriptors and len(results) == 0,
                                                  want_jacobian, member))
        return results


def _elements_of(function: SymmetryFunction) -> List[int]:
    if hasattr(function, "neighbor"):
        return [function.center, function.neighbor]
    return [function.center, *function.neighbors]


def potential_from_spec(spec) -> BPNNPotential:
    """An (untrained, float64) model with the architecture of `spec_json` (a str or its dict);
    load a state dict into it for the weights, scaling and reference energies."""
    from .descriptors.params import function_from_dict
    if isinstance(spec, str):
        spec = json.loads(spec)
    functions = [function_from_dict(f, 0.0) for f in spec["functions"]]
    return BPNNPotential(
        spec["atomic_numbers"], functions, spec["hidden_layers"], spec["activations"], spec["cutoff_type"],
        spec["cutoff_alpha"], spec["scaling"], spec["scale_min"], spec["scale_max"], spec["energy_scale"],
        {int(z): float(e) for z, e in spec["atomic_energy_shift"].items()}, int(spec.get("committee_size", 1))).double()
