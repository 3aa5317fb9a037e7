"""The Behler-Parrinello potential: species -> symmetry functions -> element nets -> energies,
with forces and virial, chunked over centres so memory stays bounded.

Layout (see ../shared notes on fast ACSF layouts): centres are sorted by element
and cut into chunks of one element (at most `chunk_size_*` centres and about
`block_budget_*` elements in the largest triplet block); each chunk's neighbours
are scattered into a dense (B, n_species, M, 3) block, with the same M for
every chunk of an element, so every symmetry-function block works on batched
dense tensors of repeating sizes. Forces: dE/dG by autograd through the
element net only, contracted with analytic dG/dr_ij of each block (or, with
`analytic_forces = False`, autograd through the descriptor: the test oracle);
then F_i += dE/dr_ij, F_j -= dE/dr_ij and W = -sum r_ij (x) dE/dr_ij.
"""

import json
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from ase.data import chemical_symbols

from . import keys
from .descriptors.acsf import ElementDescriptor, Scaling
from .descriptors.params import SymmetryFunction, function_to_dict
from .elements import MAX_Z, species_table, symbol
from .extrapolation import count_outside
from .native.kernel import (DescriptorKernel, NativeKernel, NativePairSearch, NoKernel, PairSearch,
                            TorchPairSearch)
from .uncertainty import combine_members
from .nn import CommitteeMLP, ElementMLP


class ElementModel(torch.nn.Module):
    """Descriptor, input scaling and network of one centre element; `kernel` is the
    fused C++ descriptor (NativeKernel) or a placeholder (NoKernel). `net`: an ElementMLP or a
    CommitteeMLP; `member` arguments pick one committee member (-1: the mean)."""

    kernel: DescriptorKernel

    def __init__(self, descriptor: ElementDescriptor, scaling: Scaling, net: torch.nn.Module):
        super().__init__()
        self.descriptor = descriptor
        self.scaling = scaling
        self.net = net
        self.kernel = NoKernel()

    def forward(self, vectors: List[torch.Tensor], distances: List[torch.Tensor], member: int = -1
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw G (B, F), scaled G (B, F) and network output (B,)."""
        g = self.descriptor(vectors, distances)
        g_hat = self.scaling(g)
        return g, g_hat, self.net.member_output(g_hat, member)

    @torch.jit.export
    def energies_and_slopes(self, g: torch.Tensor, energy_scale: float, energy_shift: torch.Tensor,
                            create_graph: bool, member: int = -1) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energies (B,) = energy_scale * NN(scaled G) + energy_shift, scaled G, and dE/dG (B, F)
        (autograd through the network only; differentiable w.r.t. the weights if `create_graph`)."""
        g_hat = self.scaling(g).detach().requires_grad_(True)
        energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
        d_g_hat = torch.autograd.grad([energies.sum()], [g_hat], create_graph=create_graph)[0]
        assert d_g_hat is not None
        return energies, g_hat, d_g_hat * self.scaling.factor

    @torch.jit.export
    def with_gradients(self, vectors: List[torch.Tensor], distances: List[torch.Tensor],
                       energy_scale: float, energy_shift: torch.Tensor, create_graph: bool, member: int = -1
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """Energies (B,) = energy_scale * NN + energy_shift, raw and scaled G (B, F), and
        dE/d(neighbour vectors) per species (B, M_s, 3): autograd only through the
        (small) network, then dE/dG contracted with analytic descriptor derivatives."""
        g, saved = self.descriptor.forward_saving(vectors, distances)
        energies, g_hat, d_g = self.energies_and_slopes(g, energy_scale, energy_shift, create_graph, member)
        block_grads = self.descriptor.backward(d_g, saved, vectors, distances)
        return energies, g, g_hat, block_grads


class BPNNPotential(torch.nn.Module):
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
        their mean plus the committee outputs of bpnn_ts/committee.py (K times the cost).
        """
        vectors, pairs, species, n_atoms, n_local, closest_pair, closest_distance = self._prepare(
            positions, atomic_numbers, cell, pbc, pairs, shifts, n_local)
        if compute_uncertainty:
            if self.n_members < 2:
                raise ValueError("compute_uncertainty needs a committee model (committee_size() > 1); this one has "
                                 + "one network per element (build one with bpnn_ts.committee.build_committee)")
            members: List[Dict[str, torch.Tensor]] = []
            for member in range(self.n_members):
                members.append(self._evaluate(vectors, pairs, species, n_atoms, n_local, compute_forces,
                                              compute_virial, count_extrapolation and member == 0, False, member))
            result = combine_members(members)
        else:
            result = self._evaluate(vectors, pairs, species, n_atoms, n_local,
                                    compute_forces, compute_virial, count_extrapolation)
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
        return self._evaluate(vectors, pairs, species, n_atoms, n_local, False, False, True)

    @torch.jit.export
    def compute_descriptor_jacobian(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                                    cell: Optional[torch.Tensor] = None,
                                    pbc: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """G (N, max F) and dG_i/dr_ij per pair (P, max F, 3) with the pairs' centres i,
        neighbours j (P,) and vectors r_ij (P, 3): what a training cache needs.
        dE/dr_ij = sum_f dE_i/dG_if dG_if/dr_ij; F_i += dE/dr_ij, F_j -= dE/dr_ij."""
        vectors, pairs, species, n_atoms, n_local, _, _ = self._prepare(
            positions, atomic_numbers, cell, pbc, None, None, None)
        return self._evaluate(vectors, pairs, species, n_atoms, n_local, False, False, True, True)

    def _chunk_sizes(self, widest: List[List[int]], chunk: int, budget: int) -> List[int]:
        """Centres per chunk for each centre element: at most `chunk`, and few enough
        that the largest triplet block (B x K x Mj x Mk, with `widest` neighbour
        counts) stays near `budget` elements, which keeps blocks in cache on CPUs."""
        sizes: List[int] = []
        s = 0
        for element in self.elements:
            cost = element.descriptor.largest_block(widest[s])
            sizes.append(max(1, min(chunk, budget // max(cost, 1))))
            s += 1
        return sizes

    def _evaluate(self, vectors: torch.Tensor, pairs: torch.Tensor, species: torch.Tensor,
                  n_atoms: int, n_local: int, compute_forces: bool, compute_virial: bool,
                  want_descriptors: bool, want_jacobian: bool = False, member: int = -1) -> Dict[str, torch.Tensor]:
        """Energies, forces, virials (and descriptors) of the committee mean, or of one `member`."""
        dtype = vectors.dtype
        device = vectors.device
        n_species = len(self.atomic_numbers_list)
        chunk = self.chunk_size_cuda if device.type == "cuda" else self.chunk_size_cpu
        if n_local < n_atoms or pairs.shape[1] == 0:  # engine lists: local centres, within cutoff
            keep = (pairs[0] < n_local) & ((vectors * vectors).sum(dim=1) < self.cutoff_radius ** 2)
            pairs = pairs[:, keep]
            vectors = vectors[keep]
        centre, neighbour = pairs[0], pairs[1]
        geometry = vectors  # float64 in mixed precision: forces and virials are summed in it
        vectors = vectors.to(self.atomic_energy_shift.dtype)
        dtype = vectors.dtype

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
                                         compute_forces, compute_virial, want_descriptors, member)
        key = rank[centre] * n_species + neighbour_species
        key_sorted, perm = torch.sort(key)
        vectors_sorted = vectors[perm]
        group_count = torch.bincount(key_sorted, minlength=n_local * n_species)
        within = torch.arange(key_sorted.shape[0], device=device) - (torch.cumsum(group_count, 0) - group_count)[key_sorted]
        counts = group_count.reshape(n_local, n_species)  # neighbours of each element, per centre rank
        pair_end = torch.cumsum(counts.sum(dim=1), 0)
        centre_rank = torch.div(key_sorted, n_species, rounding_mode="floor")
        species_sorted = key_sorted % n_species

        # Chunks: centres of one element, at most `chunk` of them and about
        # `block_budget` elements in the largest triplet block.
        widest_t = torch.zeros((n_species, n_species), dtype=torch.long, device=device)
        widest_t = widest_t.scatter_reduce(0, sorted_species.unsqueeze(1).expand(-1, n_species), counts, "amax")
        widest: List[List[int]] = widest_t.tolist()
        budget = self.block_budget_cuda if device.type == "cuda" else self.block_budget_cpu
        chunk_of_species = self._chunk_sizes(widest, chunk, budget)
        species_count: List[int] = torch.bincount(local_species, minlength=n_species).tolist()
        chunk_first: List[int] = []  # first rank of each chunk
        chunk_range: List[int] = [0]  # chunks of species s: chunk_range[s] .. chunk_range[s+1]
        species_first = [0]
        for s in range(n_species):
            for first in range(species_first[s], species_first[s] + species_count[s], chunk_of_species[s]):
                chunk_first.append(first)
            chunk_range.append(len(chunk_first))
            species_first.append(species_first[s] + species_count[s])
        n_chunks = len(chunk_first)
        first_t = torch.tensor(species_first[:n_species], device=device, dtype=torch.long)
        base_t = torch.tensor(chunk_range[:n_species], device=device, dtype=torch.long)
        chunk_t = torch.tensor(chunk_of_species, device=device, dtype=torch.long)[sorted_species]
        offset_in_species = torch.arange(n_local, device=device) - first_t[sorted_species]
        chunk_of_rank = base_t[sorted_species] + torch.div(offset_in_species, chunk_t, rounding_mode="floor")
        slot = (offset_in_species % chunk_t)[centre_rank]
        chunk_max: List[List[int]] = []
        if self.uniform_blocks:  # equal allocations chunk after chunk: no heap fragmentation
            for s in range(n_species):
                for c in range(chunk_range[s], chunk_range[s + 1]):
                    chunk_max.append(widest[s])
        else:
            chunk_max_t = torch.zeros((n_chunks, n_species), dtype=torch.long, device=device)
            chunk_max_t = chunk_max_t.scatter_reduce(0, chunk_of_rank.unsqueeze(1).expand(-1, n_species),
                                                     counts, "amax")
            per_chunk: List[List[int]] = chunk_max_t.tolist()
            chunk_max = per_chunk
        firsts = torch.tensor(chunk_first, dtype=torch.long, device=device)
        starts = torch.where(firsts > 0, pair_end[torch.clamp(firsts - 1, min=0)], torch.zeros_like(firsts))
        pair_offsets: List[int] = starts.tolist()
        pair_offsets.append(int(key_sorted.shape[0]))

        need_grad = compute_forces or compute_virial
        create_graph = self.training
        grad_was_enabled = torch.is_grad_enabled()
        if need_grad:
            torch.set_grad_enabled(True)
        # Outside training, results go into buffers allocated before the loop: small
        # long-lived allocations made between chunks would fragment the heap.
        energy_parts: List[torch.Tensor] = []
        grad_parts: List[torch.Tensor] = []
        n_pairs = vectors_sorted.shape[0]
        energy_out = torch.zeros(n_local, dtype=dtype, device=device)
        grad_out = torch.zeros((n_pairs if need_grad and not create_graph else 0, 3), dtype=dtype, device=device)
        max_functions = max(self.n_functions)
        want_descriptors = want_descriptors or want_jacobian
        n_rows = n_local if want_descriptors else 0
        jac_out = torch.zeros((n_pairs if want_jacobian else 0, max_functions, 3), dtype=dtype, device=device)
        g_out = torch.zeros((n_rows, max_functions), dtype=dtype, device=device)
        g_hat_out = torch.zeros((n_rows, max_functions), dtype=dtype, device=device)
        for s, element in enumerate(self.elements):
            for c in range(chunk_range[s], chunk_range[s + 1]):
                p0, p1 = pair_offsets[c], pair_offsets[c + 1]
                size = min(chunk_of_species[s], species_first[s + 1] - chunk_first[c])
                r0, r1 = chunk_first[c], chunk_first[c] + size
                v = vectors_sorted[p0:p1]
                autograd_path = need_grad and not self.analytic_forces
                if autograd_path:
                    v = v.detach().requires_grad_(True)
                m = chunk_max[c]
                m_max = max(m)
                slot_c, species_c, within_c = slot[p0:p1], species_sorted[p0:p1], within[p0:p1]
                padded = torch.zeros((size, n_species, m_max, 3), dtype=dtype, device=device)
                padded[:, :, :, 0] = self.padding_distance
                padded = padded.index_put((slot_c, species_c, within_c), v)
                block_vectors = [padded[:, e, : m[e]] for e in range(n_species)]
                block_distances = [torch.linalg.norm(b, dim=-1) for b in block_vectors]
                if want_jacobian:
                    g, saved = element.descriptor.forward_saving(block_vectors, block_distances)
                    g_hat = element.scaling(g)
                    energies = torch.zeros(size, dtype=dtype, device=device)
                    block_jac = element.descriptor.jacobian(saved, block_vectors, block_distances)
                    padded_jac = torch.stack([torch.nn.functional.pad(
                        b, [0, 0, 0, max_functions - b.shape[2], 0, m_max - b.shape[1]]) for b in block_jac], dim=1)
                    jac_out[p0:p1] = padded_jac[slot_c, species_c, within_c]
                elif need_grad and self.analytic_forces:
                    energies, g, g_hat, block_grads = element.with_gradients(
                        block_vectors, block_distances, self.energy_scale, self.atomic_energy_shift[s],
                        create_graph, member)
                    padded_grad = torch.stack(
                        [torch.nn.functional.pad(b, [0, 0, 0, m_max - b.shape[1]]) for b in block_grads], dim=1)
                    grad = padded_grad[slot_c, species_c, within_c]
                    if create_graph:
                        grad_parts.append(grad)
                    else:
                        grad_out[p0:p1] = grad
                else:
                    g, g_hat, output = element(block_vectors, block_distances, member)
                    energies = output * self.energy_scale + self.atomic_energy_shift[s]
                    if autograd_path:
                        grads = torch.autograd.grad([energies.sum()], [v], create_graph=create_graph,
                                                    allow_unused=True)
                        grad = grads[0]
                        if grad is None:
                            grad = torch.zeros_like(v)
                        if create_graph:
                            grad_parts.append(grad)
                        else:
                            grad_out[p0:p1] = grad.detach()
                if create_graph:
                    energy_parts.append(energies)
                else:
                    energy_out[r0:r1] = energies.detach()
                if want_descriptors:
                    g_out[r0:r1, : g.shape[1]] = g.detach()
                    g_hat_out[r0:r1, : g.shape[1]] = g_hat.detach()
        torch.set_grad_enabled(grad_was_enabled)

        result: Dict[str, torch.Tensor] = {}
        if create_graph and n_local > 0:
            atom_energies = torch.cat(energy_parts)[rank]
        else:
            atom_energies = energy_out[rank]
        atom_energies = atom_energies.to(geometry.dtype)
        result[keys.ENERGIES] = atom_energies
        result[keys.ENERGY] = atom_energies.sum()
        if need_grad:
            if create_graph and len(grad_parts) > 0:
                d_vectors = torch.cat(grad_parts)  # (P, 3) dE/dr_ij, sorted
            elif create_graph:
                d_vectors = torch.zeros((0, 3), dtype=dtype, device=device)
            else:
                d_vectors = grad_out
            geometry_sorted = geometry[perm] if self.mixed_precision else vectors_sorted
            self._add_forces_and_virials(result, geometry_sorted, d_vectors, centre[perm], neighbour[perm], n_atoms,
                                         compute_forces, compute_virial)
        if want_descriptors:
            result[keys.DESCRIPTORS] = g_out[rank]
            result[keys.SCALED_DESCRIPTORS] = g_hat_out[rank]
        if want_jacobian:  # pairs in the jacobian's (sorted) order
            result["descriptor_jacobian"] = jac_out
            result["pair_centres"] = centre[perm]
            result["pair_neighbours"] = neighbour[perm]
            result["pair_vectors"] = vectors_sorted
        return result

    def _add_forces_and_virials(self, result: Dict[str, torch.Tensor], vectors: torch.Tensor,
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

    def _evaluate_native(self, vectors: torch.Tensor, geometry: torch.Tensor, neighbour_species: torch.Tensor,
                         pair_end: torch.Tensor, rank: torch.Tensor, centres: torch.Tensor,
                         neighbours: torch.Tensor, local_species: torch.Tensor, n_atoms: int, n_local: int,
                         compute_forces: bool, compute_virial: bool,
                         want_descriptors: bool, member: int) -> Dict[str, torch.Tensor]:
        """`_evaluate` with the fused kernels: one call per centre element over all its centres
        (pairs sorted by centre rank; no padding, no chunks). `geometry`: the same vectors
        in the dtype forces and virials are summed in."""
        dtype = vectors.dtype
        device = vectors.device
        need_grad = compute_forces or compute_virial
        energy_out = torch.zeros(n_local, dtype=geometry.dtype, device=device)
        d_vectors = torch.zeros((vectors.shape[0] if need_grad else 0, 3), dtype=dtype, device=device)
        max_functions = max(self.n_functions)
        n_rows = n_local if want_descriptors else 0
        g_out = torch.zeros((n_rows, max_functions), dtype=dtype, device=device)
        g_hat_out = torch.zeros((n_rows, max_functions), dtype=dtype, device=device)
        zero = torch.zeros(1, dtype=torch.long, device=device)
        species_count: List[int] = torch.bincount(local_species, minlength=len(self.elements)).tolist()
        species_first = [0]
        for count in species_count:
            species_first.append(species_first[-1] + count)
        for s, element in enumerate(self.elements):
            r0, r1 = species_first[s], species_first[s + 1]
            if r1 > r0:  # (TorchScript unrolls this loop: no `continue`)
                ends = pair_end[r0:r1]
                p0 = int(pair_end[r0 - 1]) if r0 > 0 else 0
                p1 = int(ends[-1])
                offsets = torch.cat([zero, ends - p0])
                v = vectors[p0:p1]
                sp = neighbour_species[p0:p1]
                g = element.kernel(v, offsets, sp, None)
                if need_grad:
                    grad_was_enabled = torch.is_grad_enabled()
                    torch.set_grad_enabled(True)
                    energies, g_hat, d_g = element.energies_and_slopes(g, self.energy_scale, self.atomic_energy_shift[s],
                                                                       False, member)
                    torch.set_grad_enabled(grad_was_enabled)
                    d_vectors[p0:p1] = element.kernel(v, offsets, sp, d_g.detach())
                else:
                    g_hat = element.scaling(g)
                    energies = element.net.member_output(g_hat, member) * self.energy_scale + self.atomic_energy_shift[s]
                energy_out[r0:r1] = energies.detach()
                if want_descriptors:
                    g_out[r0:r1, : g.shape[1]] = g
                    g_hat_out[r0:r1, : g.shape[1]] = g_hat.detach()
        atom_energies = energy_out[rank]
        result: Dict[str, torch.Tensor] = {keys.ENERGIES: atom_energies, keys.ENERGY: atom_energies.sum()}
        if need_grad:
            self._add_forces_and_virials(result, geometry, d_vectors, centres, neighbours, n_atoms, compute_forces,
                                         compute_virial)
        if want_descriptors:
            result[keys.DESCRIPTORS] = g_out[rank]
            result[keys.SCALED_DESCRIPTORS] = g_hat_out[rank]
        return result


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
