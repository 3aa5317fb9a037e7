"""Evaluation in dense blocks, chunked over centres (the pure-torch path).

Layout (see ../shared notes on fast ACSF layouts): centres are sorted by element
and cut into chunks of one element (at most `chunk_size_*` centres and about
`block_budget_*` elements in the largest triplet block); each chunk's neighbours
are scattered into a dense (B, n_species, M, 3) block, with the same M for
every chunk of an element, so every symmetry-function block works on batched
dense tensors of repeating sizes. Forces: dE/dG by autograd through the
element net only, contracted with analytic dG/dr_ij of each block (or, with
`analytic_forces = False`, autograd through the descriptor: the test oracle).
A mixin of BPNNPotential (TorchScript compiles its methods as the model's own).
"""

from typing import Dict, List

import torch

from . import keys
from .forces import add_forces_and_virials, zero_forces_and_virials


class ChunkedEvaluation:
    """`_evaluate_chunked` and its chunk sizing for BPNNPotential."""

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

    def _evaluate_chunked(self, vectors: torch.Tensor, geometry: torch.Tensor, centre: torch.Tensor,
                          neighbour: torch.Tensor, rank: torch.Tensor, local_species: torch.Tensor,
                          sorted_species: torch.Tensor, neighbour_species: torch.Tensor, n_atoms: int, n_local: int,
                          compute_forces: bool, compute_virial: bool, want_descriptors: bool, want_jacobian: bool,
                          member: int) -> Dict[str, torch.Tensor]:
        """`_evaluate` in dense per-chunk blocks (the torch path: CUDA, training, Jacobians).
        vectors (P, 3) in the model dtype, `geometry` the same in the dtype of the sums; pairs
        (centre, neighbour); centres ranked by element (`rank`: atom -> rank)."""
        dtype = vectors.dtype
        device = vectors.device
        n_species = len(self.atomic_numbers_list)
        chunk = self.chunk_size_cuda if device.type == "cuda" else self.chunk_size_cpu
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
            for name, zeros in zero_forces_and_virials(n_atoms, geometry.dtype, device, compute_forces,
                                                       compute_virial).items():
                result[name] = zeros
            add_forces_and_virials(result, geometry_sorted, d_vectors, centre[perm], neighbour[perm], compute_forces,
                                   compute_virial)
        if want_descriptors:
            result[keys.DESCRIPTORS] = g_out[rank]
            result[keys.SCALED_DESCRIPTORS] = g_hat_out[rank]
        if want_jacobian:  # pairs in the jacobian's (sorted) order
            result["descriptor_jacobian"] = jac_out
            result["pair_centres"] = centre[perm]
            result["pair_neighbours"] = neighbour[perm]
            result["pair_vectors"] = vectors_sorted
        return result
