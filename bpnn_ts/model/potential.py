"""The Behler-Parrinello potential, physics only: a pair list -> symmetry functions -> element
networks -> energies, forces and virials (and descriptors, Jacobians, extrapolation counts,
committee spreads). Input checks, neighbour search and the engine contract are engine.py's.

One loop over elements (`BPNNPotential.forward`), each calling `ElementModel.evaluate`, the one
per-element routine; the `.pt2` programs (pt2_program.py) call it too. Which descriptor path runs:

| path            | runs when                                                     | role                        |
|-----------------|---------------------------------------------------------------|-----------------------------|
| fused kernels   | kernels on (`use_native_kernels`), a device they run on (CPU;  | production (TorchScript     |
|                 | CUDA where the library has CUDA kernels), no Jacobian asked,  | files, training uncached,   |
|                 | `analytic_forces`                                             | every `.pt2` file)          |
| dense, analytic | otherwise (files without kernels, Jacobians for training      | portable path; held to the  |
|                 | caches, other devices); chunked to keep blocks in cache       | oracle below                |
| dense, autograd | `analytic_forces = False` (and `analytic_net_gradient = False` | the test oracle: forces by  |
|                 | on the elements for the nets)                                 | autograd, nothing by hand   |

Tests hold the fused path and the analytic dense path to the autograd oracle, and all of them to
finite differences of the energy (tests/test_potential.py, test_native.py, test_properties.py).
In training mode every path returns energies, forces and virials differentiable w.r.t. the weights.
"""

from typing import Dict, List, Optional, Tuple

import torch

from .. import keys
from .chunks import DenseSettings
from .descriptors.element_descriptor import ElementDescriptor
from .descriptors.scaling import Scaling
from .element import ElementModel
from .forces import add_forces_and_virials, in_pair_list_order, zero_forces_and_virials
from .jit import interface
from .kernels import NativeKernel, NoKernel
from .nn import CommitteeMLP, ElementMLP, activation_code
from .pairs import PairList, Request, centre_pairs, element_pairs, needs_pair_gradients
from .spec import ModelSpec
from .uncertainty import combine_members


@interface
class Physics(torch.nn.Module):
    """What BPNNModel (engine.py) calls of its potential. The slot is typed by this interface so
    that TorchScript keeps the potential's methods as calls of their own: inlined, the general
    path (~19,000 values) made every call of `forward` set up a frame that large, ~11 µs of a
    molecule's ~45 µs through bpnn::evaluate. BPNNPotential below says what each method does."""

    def forward(self, pair_list: PairList, request: Request, compute_uncertainty: bool) -> Dict[str, torch.Tensor]:
        pass

    def sums_dtype(self) -> torch.dtype:
        pass

    def dtype_name(self) -> str:
        pass

    def training_range_known(self) -> bool:
        pass

    def uses_fused_kernels(self) -> bool:
        pass

    def set_mixed_precision(self, enable: bool) -> None:
        pass

    def set_chunk_size(self, cpu: int, cuda: int) -> None:
        pass

    def set_block_budget(self, cpu: int, cuda: int) -> None:
        pass

    def whole_evaluation_ready(self, device: torch.device) -> bool:
        pass

    def evaluate_whole(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
                       pbc: torch.Tensor, engine_list: Optional[Tuple[torch.Tensor, torch.Tensor, int]],
                       species_of_z: torch.Tensor, compute_virial: bool, count_extrapolation: bool) -> List[torch.Tensor]:
        pass

    def energies_from_descriptors(self, descriptors: torch.Tensor, species: torch.Tensor,
                                  create_graph: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        pass


class BPNNPotential(torch.nn.Module):
    """E = sum_i [energy_scale * NN_{Z_i}(scaled G_i) + atomic_energy_shift[Z_i]], in eV and Å,
    for the architecture `spec`. Evaluation settings (results do not depend on them):
    chunk sizes and block budgets of the dense path, `analytic_forces` (False: autograd through
    the descriptor, the test oracle), `fused_kernels` (set by use_native_kernels) and
    `mixed_precision` (float32 descriptors and nets, float64 geometry and sums)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        numbers = list(spec.atomic_numbers)
        elements: List[ElementModel] = []
        for z in numbers:
            own = spec.functions_of(z)
            descriptor = ElementDescriptor(own, numbers, spec.cutoff_type, spec.cutoff_alpha)
            nets = [ElementMLP(len(own), spec.hidden_layers, spec.activations) for _ in range(spec.committee_size)]
            net = nets[0] if spec.committee_size == 1 else CommitteeMLP(nets)
            scaling = Scaling(len(own), spec.scaling, spec.scale_min, spec.scale_max)
            elements.append(ElementModel(descriptor, scaling, net))
        self.elements = torch.nn.ModuleList(elements)
        self.atomic_numbers_list: List[int] = numbers
        self.n_functions: List[int] = [len(spec.functions_of(z)) for z in numbers]
        self.cutoff_radius = spec.cutoff
        self.padding_distance = 2.0 * self.cutoff_radius + 1.0  # empty block slots sit here
        self.energy_scale = float(spec.energy_scale)
        self.n_members = int(spec.committee_size)
        self.register_buffer("atomic_energy_shift", torch.tensor(
            [spec.atomic_energy_shift.get(z, 0.0) for z in numbers], dtype=torch.float64))
        self.chunk_size_cpu = 32
        self.chunk_size_cuda = 2048
        self.block_budget_cpu = 1 << 20  # elements of the largest triplet block per chunk
        self.block_budget_cuda = 1 << 26
        self.uniform_blocks = True  # every chunk of an element gets the same block widths (the widest)
        self.analytic_forces = True
        self.fused_kernels = False
        self.mixed_precision = False
        self.activation_codes: List[int] = [activation_code(a) for a in spec.activations]
        self.cutoff_type = int(spec.cutoff_type)
        self.cutoff_alpha = float(spec.cutoff_alpha)

    @torch.jit.unused
    def use_native_kernels(self, spec: ModelSpec, enable: bool) -> None:
        """Put the fused C++ kernels (or none) into every element's kernel slot."""
        numbers = self.atomic_numbers_list
        for z, element in zip(numbers, self.elements):
            kernel = NativeKernel(spec.functions_of(z), numbers, spec.cutoff_type, spec.cutoff_alpha) if enable \
                else NoKernel()
            element.kernel = kernel.to(self.atomic_energy_shift.device)
        self.fused_kernels = enable

    @torch.jit.export
    def dtype_name(self) -> str:
        """"float64", "float32" or "mixed" (bpnn_ts/precision.py)."""
        if self.mixed_precision:
            return "mixed"
        return "float64" if self.atomic_energy_shift.dtype == torch.float64 else "float32"

    @torch.jit.export
    def sums_dtype(self) -> torch.dtype:
        """The dtype of positions, pair vectors and the sums of energies, forces and virials:
        float64 in mixed precision, else the model's."""
        return torch.float64 if self.mixed_precision else self.atomic_energy_shift.dtype

    @torch.jit.export
    def uses_fused_kernels(self) -> bool:
        """True if the elements' descriptor slots hold the fused C++ kernels."""
        return self.fused_kernels

    @torch.jit.export
    def set_mixed_precision(self, enable: bool) -> None:
        """float32 descriptors and nets with float64 geometry and sums (True), or one precision."""
        self.mixed_precision = enable

    @torch.jit.export
    def set_chunk_size(self, cpu: int, cuda: int) -> None:
        """The dense path's most centres per chunk on CPU / CUDA (checked by the caller)."""
        self.chunk_size_cpu = cpu
        self.chunk_size_cuda = cuda

    @torch.jit.export
    def set_block_budget(self, cpu: int, cuda: int) -> None:
        """The dense path's most elements of a chunk's largest triplet block on CPU / CUDA."""
        self.block_budget_cpu = cpu
        self.block_budget_cuda = cuda

    @torch.jit.export
    def training_range_known(self) -> bool:
        """True if every element has its training range [Gmin, Gmax] (scaling statistics)."""
        known = True
        for element in self.elements:
            known = known and element.scaling.has_statistics
        return known

    def dense_settings(self, device: torch.device) -> DenseSettings:
        """The dense path's chunking on `device`."""
        cuda = device.type == "cuda"
        return DenseSettings(self.chunk_size_cuda if cuda else self.chunk_size_cpu,
                             self.block_budget_cuda if cuda else self.block_budget_cpu, self.uniform_blocks,
                             self.padding_distance)

    def forward(self, pair_list: PairList, request: Request, compute_uncertainty: bool) -> Dict[str, torch.Tensor]:
        """Energy, per-atom energies, and what `request` asks for (keys.py) of the local atoms of
        `pair_list`; with `compute_uncertainty` (committees) every member is evaluated and the
        result holds their mean, values and spreads."""
        members: List[Optional[int]] = [None]
        if compute_uncertainty:
            members = []
            for k in range(self.n_members):
                members.append(k)
        device = pair_list.vectors.device
        pairs = centre_pairs(pair_list, len(self.elements), self.atomic_energy_shift.dtype)
        fused = self.fused_kernels and self._kernels_run_on(device) and self.analytic_forces
        dense = self.dense_settings(device)
        sums = pairs.geometry.dtype
        need_grad = needs_pair_gradients(request) and not request.jacobian
        results: List[Dict[str, torch.Tensor]] = []
        energy_parts: List[List[torch.Tensor]] = []  # per member, per element with centres: (B_s,) by rank
        pair_gradients: List[torch.Tensor] = []  # per member, (P, 3) in sorted order
        for _ in members:
            results.append(zero_forces_and_virials(pairs.n_atoms, sums, device, request.forces, request.virial))
            energy_parts.append([])
            pair_gradients.append(torch.zeros((pairs.vectors.shape[0] if request.pair_gradients else 0, 3),
                                              dtype=sums, device=device))
        descriptors: List[Tuple[torch.Tensor, torch.Tensor]] = []
        jacobians: List[torch.Tensor] = []
        extrapolation: List[torch.Tensor] = []
        for s, element in enumerate(self.elements):
            p0, p1 = pairs.element_pair_first[s], pairs.element_pair_first[s + 1]
            if pairs.element_first[s + 1] > pairs.element_first[s]:  # (TorchScript unrolls this loop: no `continue`)
                out = element.evaluate(element_pairs(pairs, s), members, request, fused, dense, self.training,
                                       self.analytic_forces, self.energy_scale, self.atomic_energy_shift[s])
                for m in range(len(members)):
                    energy_parts[m].append(out.energies[m].to(sums))
                    if need_grad:
                        add_forces_and_virials(results[m], pairs.geometry[p0:p1], out.d_vectors[m],
                                               pairs.centres[p0:p1], pairs.neighbours[p0:p1], request.forces,
                                               request.virial)
                    if request.pair_gradients:
                        pair_gradients[m][p0:p1] = out.d_vectors[m].detach().to(sums)
                descriptors.append((out.descriptors, out.scaled_descriptors))
                jacobians.append(out.jacobian)
                extrapolation.append(out.extrapolation)
        for m in range(len(members)):
            energies = torch.cat(energy_parts[m]) if len(energy_parts[m]) > 0 else torch.zeros(0, dtype=sums,
                                                                                                  device=device)
            atom_energies = energies[pairs.rank]  # (n_local,)
            results[m][keys.ENERGIES] = atom_energies
            results[m][keys.ENERGY] = atom_energies.sum()
            if request.pair_gradients:
                results[m][keys.PAIR_GRADIENTS] = in_pair_list_order(pair_gradients[m], pairs.order)
        result = combine_members(results) if compute_uncertainty else results[0]
        self._add_extras(result, pairs.rank, request, descriptors, jacobians, extrapolation, pairs.vectors)
        if request.jacobian:  # pairs in the Jacobian's (sorted) order
            result[keys.PAIR_CENTRES] = pairs.centres
            result[keys.PAIR_NEIGHBOURS] = pairs.neighbours
            result[keys.PAIR_VECTORS] = pairs.vectors
        return result

    def _add_extras(self, result: Dict[str, torch.Tensor], rank: torch.Tensor, request: Request,
                    descriptors: List[Tuple[torch.Tensor, torch.Tensor]], jacobians: List[torch.Tensor],
                    extrapolation: List[torch.Tensor], like: torch.Tensor) -> None:
        """Descriptors (n_local, max F), the Jacobian (P, max F, 3) and extrapolation counts
        (n_local,) from the elements' parts (in rank and sorted-pair order), as asked for."""
        widest = max(self.n_functions)
        if request.descriptors:
            raw: List[torch.Tensor] = [torch.zeros((0, widest), dtype=like.dtype, device=like.device)]
            scaled: List[torch.Tensor] = [raw[0]]
            for g, g_hat in descriptors:
                raw.append(torch.nn.functional.pad(g, [0, widest - g.shape[1]]))
                scaled.append(torch.nn.functional.pad(g_hat, [0, widest - g_hat.shape[1]]))
            result[keys.DESCRIPTORS] = torch.cat(raw)[rank]
            result[keys.SCALED_DESCRIPTORS] = torch.cat(scaled)[rank]
        if request.jacobian:
            padded: List[torch.Tensor] = [torch.zeros((0, widest, 3), dtype=like.dtype, device=like.device)]
            for jacobian in jacobians:
                padded.append(torch.nn.functional.pad(jacobian, [0, 0, 0, widest - jacobian.shape[1]]))
            result[keys.DESCRIPTOR_JACOBIAN] = torch.cat(padded)
        if request.extrapolation:
            if not self.training_range_known():
                raise ValueError("this model has no training range [Gmin, Gmax] of its symmetry functions "
                                 "(no scaling statistics): it cannot count extrapolation")
            counts: List[torch.Tensor] = [torch.zeros(0, dtype=torch.long, device=like.device)]
            for part in extrapolation:
                counts.append(part)
            result[keys.EXTRAPOLATION] = torch.cat(counts)[rank]

    @torch.jit.export
    def whole_evaluation_ready(self, device: torch.device) -> bool:
        """True if `evaluate_whole` computes what `forward` would: fused kernels on the CPU, inference
        (not training), one precision, analytic forces and network gradients."""
        ready = self.fused_kernels and device.type == "cpu" and not self.training and not self.mixed_precision
        ready = ready and self.analytic_forces
        for element in self.elements:
            ready = ready and element.analytic_net_gradient
        return ready

    @torch.jit.export
    def evaluate_whole(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor,
                       pbc: torch.Tensor, engine_list: Optional[Tuple[torch.Tensor, torch.Tensor, int]],
                       species_of_z: torch.Tensor, compute_virial: bool, count_extrapolation: bool) -> List[torch.Tensor]:
        """One system (positions (N, 3) Å, atomic numbers (N,), cell (3, 3), pbc (3,)) in one op,
        bpnn::evaluate, or on an engine's list (pairs (2, P), shifts (P, 3), n_local: checked),
        bpnn::evaluate_list (native/cpu/evaluate_cpu.cpp: [energy, energies, forces, virial, atomic
        virials, extrapolation, closest pair, its distance]; [] where the general path must check
        the input). Needs `whole_evaluation_ready`."""
        radial: List[torch.Tensor] = []
        angular: List[torch.Tensor] = []
        scaling: List[torch.Tensor] = []
        layers: List[torch.Tensor] = []
        for element in self.elements:
            tables = element.kernel.tables()
            radial.append(tables[0])
            angular.append(tables[1])
            scaling.extend(element.scaling.tables())
            layers.extend(element.net.layer_tensors())
        with torch.no_grad():
            if engine_list is None:
                return torch.ops.bpnn.evaluate(positions, atomic_numbers, cell, pbc, species_of_z, self.cutoff_radius,
                                               radial, angular, self.n_functions, self.cutoff_type,
                                               self.cutoff_alpha, scaling, layers, self.activation_codes,
                                               self.n_members, self.energy_scale, self.atomic_energy_shift,
                                               compute_virial, count_extrapolation)
            pairs, shifts, n_local = engine_list
            return torch.ops.bpnn.evaluate_list(positions, atomic_numbers, cell, pairs, shifts, n_local, species_of_z,
                                                self.cutoff_radius, radial, angular, self.n_functions,
                                                self.cutoff_type, self.cutoff_alpha, scaling, layers,
                                                self.activation_codes, self.n_members, self.energy_scale,
                                                self.atomic_energy_shift, compute_virial, count_extrapolation)

    def _kernels_run_on(self, device: torch.device) -> bool:
        """True if every element's fused kernel computes on `device` (CPU; CUDA where the ops have
        CUDA kernels): kernels.py's DescriptorKernel.runs_on."""
        runs = True
        for element in self.elements:
            runs = runs and element.kernel.runs_on(device)
        return runs

    @torch.jit.export
    def energies_from_descriptors(self, descriptors: torch.Tensor, species: torch.Tensor,
                                  create_graph: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies (N,) and dE/dG (N, max F) from raw descriptors (N, max F, zero-padded)
        of atoms of `species` (N,): the networks only (training on cached descriptors)."""
        slopes = torch.zeros_like(descriptors)
        energies = torch.zeros(descriptors.shape[0], dtype=descriptors.dtype, device=descriptors.device)
        for s, element in enumerate(self.elements):
            index = torch.where(species == s)[0]
            if index.numel() > 0:
                width = self.n_functions[s]
                own, _, d_g = element.energies_and_slopes(descriptors[index, :width], self.energy_scale,
                                                          self.atomic_energy_shift[s], create_graph, None)
                energies = energies.index_put((index,), own)
                slopes = slopes.index_put((index,), torch.nn.functional.pad(d_g, [0, slopes.shape[1] - width]))
        return energies, slopes
