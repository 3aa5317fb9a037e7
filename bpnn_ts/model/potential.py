"""The Behler-Parrinello potential, physics only: a pair list -> symmetry functions -> element
networks -> energies, forces and virials (and descriptors, Jacobians, extrapolation counts,
committee spreads). Input checks, neighbour search and the engine contract are engine.py's.

Two evaluations, each a loop over elements: the fused C++ kernels (CPU, inference and training;
one call per element over all its centres, descriptors shared by committee members) and dense
torch blocks chunked over centres (CUDA, Jacobians, models without kernels; once per member).
In training mode both return energies, forces and virials differentiable w.r.t. the weights.
"""

from typing import Dict, List, Optional, Tuple

import torch

from .. import keys
from .descriptors.element_descriptor import ElementDescriptor
from .descriptors.scaling import Scaling
from .element import ElementModel
from .forces import add_forces_and_virials, in_pair_list_order, zero_forces_and_virials
from .kernels import NativeKernel, NoKernel
from .nn import CommitteeMLP, ElementMLP
from .pairs import CentrePairs, PairList, Request, block_index, centre_pairs, neighbour_counts, plan_chunks
from .spec import ModelSpec
from .uncertainty import combine_members


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
    def training_range_known(self) -> bool:
        """True if every element has its training range [Gmin, Gmax] (scaling statistics)."""
        known = True
        for element in self.elements:
            known = known and element.scaling.has_statistics
        return known

    def forward(self, pair_list: PairList, request: Request, compute_uncertainty: bool) -> Dict[str, torch.Tensor]:
        """Energy, per-atom energies, and what `request` asks for (keys.py) of the local atoms of
        `pair_list`; with `compute_uncertainty` (committees) every member is evaluated and the
        result holds their mean, values and spreads."""
        members: List[Optional[int]] = [None]
        if compute_uncertainty:
            members = []
            for k in range(self.n_members):
                members.append(k)
        n_species = len(self.elements)
        dtype = self.atomic_energy_shift.dtype
        device = pair_list.vectors.device
        results: List[Dict[str, torch.Tensor]] = []
        if self.fused_kernels and self._kernels_run_on(device) and not request.jacobian and self.analytic_forces:
            results = self._evaluate_fused(centre_pairs(pair_list, n_species, dtype, False), members, request)
        else:
            pairs = centre_pairs(pair_list, n_species, dtype, True)
            for member in members:
                results.append(self._evaluate_chunked(pairs, member, request, len(results) == 0))
        result = combine_members(results) if compute_uncertainty else results[0]
        if request.extrapolation:
            result[keys.EXTRAPOLATION] = self._count_extrapolation(result[keys.DESCRIPTORS],
                                                                   pair_list.species[:pair_list.n_local])
            if not request.descriptors:
                result.pop(keys.DESCRIPTORS)
                result.pop(keys.SCALED_DESCRIPTORS)
        return result

    def _kernels_run_on(self, device: torch.device) -> bool:
        """True if every element's fused kernel computes on `device` (CPU; CUDA where the ops have
        CUDA kernels): kernels.py's DescriptorKernel.runs_on."""
        runs = True
        for element in self.elements:
            runs = runs and element.kernel.runs_on(device)
        return runs

    def _evaluate_fused(self, pairs: CentrePairs, members: List[Optional[int]],
                        request: Request) -> List[Dict[str, torch.Tensor]]:
        """With the fused kernels, per element over all its centres; one result per member
        (differentiable w.r.t. the weights in training mode)."""
        n_local = pairs.rank.shape[0]
        sums = pairs.geometry.dtype
        device = pairs.vectors.device
        need_grad = request.forces or request.virial or request.pair_gradients
        want_descriptors = request.descriptors or request.extrapolation
        results: List[Dict[str, torch.Tensor]] = []
        pair_gradients: List[torch.Tensor] = []  # per member, (P, 3) in sorted order
        energy_parts: List[List[torch.Tensor]] = []  # per member, per element with centres: (B_s,) by rank
        for _ in members:
            results.append(zero_forces_and_virials(pairs.n_atoms, sums, device, request.forces, request.virial))
            energy_parts.append([])
            pair_gradients.append(torch.zeros((pairs.vectors.shape[0] if request.pair_gradients else 0, 3),
                                              dtype=sums, device=device))
        g_out, g_hat_out = self._descriptor_buffers(n_local if want_descriptors else 0, pairs.vectors)
        pair_end = torch.cumsum(torch.bincount(pairs.centre_rank, minlength=n_local), 0)
        zero = torch.zeros(1, dtype=torch.long, device=device)
        first = pairs.element_first
        for s, element in enumerate(self.elements):
            r0, r1 = first[s], first[s + 1]
            if r1 > r0:  # (TorchScript unrolls this loop: no `continue`)
                ends = pair_end[r0:r1]
                p0 = int(pair_end[r0 - 1]) if r0 > 0 else 0
                p1 = int(ends[-1])
                out = element.evaluate_fused(pairs.vectors[p0:p1], torch.cat([zero, ends - p0]),
                                             pairs.neighbour_species[p0:p1], self.energy_scale,
                                             self.atomic_energy_shift[s], members, need_grad, self.training)
                for m in range(len(members)):
                    energy_parts[m].append(out.energies[m].to(sums))
                    if need_grad:
                        add_forces_and_virials(results[m], pairs.geometry[p0:p1], out.d_vectors[m],
                                               pairs.centres[p0:p1], pairs.neighbours[p0:p1], request.forces,
                                               request.virial)
                    if request.pair_gradients:
                        pair_gradients[m][p0:p1] = out.d_vectors[m].detach().to(sums)
                if want_descriptors:
                    g_out[r0:r1, : out.descriptors.shape[1]] = out.descriptors
                    g_hat_out[r0:r1, : out.descriptors.shape[1]] = out.scaled_descriptors
        for m in range(len(members)):
            energies = torch.cat(energy_parts[m]) if n_local > 0 else torch.zeros(0, dtype=sums, device=device)
            atom_energies = energies[pairs.rank]  # (n_local,)
            results[m][keys.ENERGIES] = atom_energies
            results[m][keys.ENERGY] = atom_energies.sum()
            if request.pair_gradients:
                results[m][keys.PAIR_GRADIENTS] = in_pair_list_order(pair_gradients[m], pairs.order)
        if want_descriptors:
            results[0][keys.DESCRIPTORS] = g_out[pairs.rank]
            results[0][keys.SCALED_DESCRIPTORS] = g_hat_out[pairs.rank]
        return results

    def _evaluate_chunked(self, pairs: CentrePairs, member: Optional[int], request: Request,
                          want_descriptors: bool) -> Dict[str, torch.Tensor]:
        """In dense blocks per chunk of centres of one element (the torch path)."""
        n_local = pairs.rank.shape[0]
        dtype = pairs.vectors.dtype
        device = pairs.vectors.device
        n_species = len(self.elements)
        counts, within, widest = neighbour_counts(pairs, n_species)
        cuda = device.type == "cuda"
        most = self.chunk_size_cuda if cuda else self.chunk_size_cpu
        budget = self.block_budget_cuda if cuda else self.block_budget_cpu
        sizes: List[int] = []
        for s, element in enumerate(self.elements):
            sizes.append(element.centres_per_chunk(widest[s], most, budget))
        plan = plan_chunks(pairs, counts, within, widest, sizes, self.uniform_blocks)

        need_grad = request.forces or request.virial or request.pair_gradients
        create_graph = self.training
        grad_was_enabled = torch.is_grad_enabled()
        if need_grad:
            torch.set_grad_enabled(True)
        # Outside training, results go into buffers allocated before the loop: small long-lived
        # allocations made between chunks would fragment the heap.
        n_pairs = pairs.vectors.shape[0]
        energy_parts: List[torch.Tensor] = []
        grad_parts: List[torch.Tensor] = []
        energy_out = torch.zeros(n_local, dtype=dtype, device=device)
        grad_out = torch.zeros((n_pairs if need_grad and not create_graph else 0, 3), dtype=dtype, device=device)
        max_functions = max(self.n_functions)
        jac_out = torch.zeros((n_pairs if request.jacobian else 0, max_functions, 3), dtype=dtype, device=device)
        want_descriptors = want_descriptors and (request.descriptors or request.extrapolation or request.jacobian)
        g_out, g_hat_out = self._descriptor_buffers(n_local if want_descriptors else 0, pairs.vectors)
        for s, element in enumerate(self.elements):
            for c in range(plan.element_chunks[s], plan.element_chunks[s + 1]):
                p0, p1 = plan.pair_start[c], plan.pair_start[c + 1]
                r0, r1 = plan.first_rank[c], plan.first_rank[c] + plan.n_centres[c]
                out = element.evaluate_chunk(pairs.vectors[p0:p1], block_index(plan, pairs, c), self.padding_distance,
                                             self.energy_scale, self.atomic_energy_shift[s], member, request,
                                             create_graph, self.analytic_forces)
                if create_graph:
                    energy_parts.append(out.energies)
                    if need_grad:
                        grad_parts.append(out.d_vectors)
                else:
                    energy_out[r0:r1] = out.energies.detach()
                    if need_grad:
                        grad_out[p0:p1] = out.d_vectors.detach()
                if request.jacobian:
                    jac_out[p0:p1, : out.jacobian.shape[1]] = out.jacobian
                if want_descriptors:
                    g_out[r0:r1, : out.descriptors.shape[1]] = out.descriptors.detach()
                    g_hat_out[r0:r1, : out.descriptors.shape[1]] = out.scaled_descriptors.detach()
        torch.set_grad_enabled(grad_was_enabled)

        result: Dict[str, torch.Tensor] = {}
        energies = torch.cat(energy_parts) if create_graph and n_local > 0 else energy_out
        atom_energies = energies[pairs.rank].to(pairs.geometry.dtype)
        result[keys.ENERGIES] = atom_energies
        result[keys.ENERGY] = atom_energies.sum()
        if need_grad:
            d_vectors = grad_out
            if create_graph:
                d_vectors = torch.cat(grad_parts) if len(grad_parts) > 0 else torch.zeros((0, 3), dtype=dtype,
                                                                                          device=device)
            zeros = zero_forces_and_virials(pairs.n_atoms, pairs.geometry.dtype, device, request.forces, request.virial)
            for name, value in zeros.items():
                result[name] = value
            add_forces_and_virials(result, pairs.geometry, d_vectors, pairs.centres, pairs.neighbours,
                                   request.forces, request.virial)
            if request.pair_gradients:
                result[keys.PAIR_GRADIENTS] = in_pair_list_order(d_vectors.detach().to(pairs.geometry.dtype),
                                                                 pairs.order)
        if want_descriptors:
            result[keys.DESCRIPTORS] = g_out[pairs.rank]
            result[keys.SCALED_DESCRIPTORS] = g_hat_out[pairs.rank]
        if request.jacobian:  # pairs in the Jacobian's (sorted) order
            result[keys.DESCRIPTOR_JACOBIAN] = jac_out
            result[keys.PAIR_CENTRES] = pairs.centres
            result[keys.PAIR_NEIGHBOURS] = pairs.neighbours
            result[keys.PAIR_VECTORS] = pairs.vectors
        return result

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

    def _descriptor_buffers(self, rows: int, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Zeroed raw and scaled descriptor outputs (rows, max F)."""
        shape = [rows, max(self.n_functions)]
        return (torch.zeros(shape, dtype=like.dtype, device=like.device),
                torch.zeros(shape, dtype=like.dtype, device=like.device))

    def _count_extrapolation(self, g: torch.Tensor, local_species: torch.Tensor) -> torch.Tensor:
        """(n_local,) functions outside [Gmin, Gmax] per atom, from G (n_local, max F)."""
        if not self.training_range_known():
            raise ValueError("this model has no training range [Gmin, Gmax] of its symmetry functions "
                             "(no scaling statistics): it cannot count extrapolation")
        counts = torch.zeros(local_species.shape[0], dtype=torch.long, device=g.device)
        for s, element in enumerate(self.elements):
            rows = local_species == s
            counts[rows] = element.scaling.count_outside(g[rows, : self.n_functions[s]])
        return counts
