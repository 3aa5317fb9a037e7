"""Evaluation with the fused C++ descriptor kernels (CPU, inference): one kernel call per centre
element over all its centres, pairs sorted by centre rank; no padding, no chunks.
A mixin of BPNNPotential (TorchScript compiles its methods as the model's own)."""

from typing import Dict, List

import torch

from . import keys
from .forces import add_forces_and_virials, zero_forces_and_virials


class NativeEvaluation:
    """`_evaluate_native` for BPNNPotential (uses its elements, energy scale and shifts)."""

    def _evaluate_native(self, vectors: torch.Tensor, geometry: torch.Tensor, neighbour_species: torch.Tensor,
                         pair_end: torch.Tensor, rank: torch.Tensor, centres: torch.Tensor,
                         neighbours: torch.Tensor, local_species: torch.Tensor, n_atoms: int, n_local: int,
                         compute_forces: bool, compute_virial: bool, want_descriptors: bool,
                         members: List[int]) -> List[Dict[str, torch.Tensor]]:
        """`_evaluate` with the fused kernels for each of `members` (-1: the committee mean): one
        kernel call per centre element over all its centres (pairs sorted by centre rank; no
        padding, no chunks), the descriptors shared by all members. `geometry`: the same
        vectors in the dtype forces and virials are summed in. Descriptors: in the first result."""
        dtype = vectors.dtype
        device = vectors.device
        need_grad = compute_forces or compute_virial
        results: List[Dict[str, torch.Tensor]] = []
        energy_outs: List[torch.Tensor] = []
        for _ in members:
            results.append(zero_forces_and_virials(n_atoms, geometry.dtype, device, compute_forces, compute_virial))
            energy_outs.append(torch.zeros(n_local, dtype=geometry.dtype, device=device))
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
                for m, member in enumerate(members):
                    if need_grad:
                        grad_was_enabled = torch.is_grad_enabled()
                        torch.set_grad_enabled(True)
                        energies, g_hat, d_g = element.energies_and_slopes(
                            g, self.energy_scale, self.atomic_energy_shift[s], False, member)
                        torch.set_grad_enabled(grad_was_enabled)
                        d_vectors = element.kernel(v, offsets, sp, d_g.detach())
                        add_forces_and_virials(results[m], geometry[p0:p1], d_vectors, centres[p0:p1],
                                               neighbours[p0:p1], compute_forces, compute_virial)
                    else:
                        g_hat = element.scaling(g)
                        energies = (element.net.member_output(g_hat, member) * self.energy_scale
                                    + self.atomic_energy_shift[s])
                    energy_outs[m][r0:r1] = energies.detach()
                    if want_descriptors and m == 0:
                        g_out[r0:r1, : g.shape[1]] = g
                        g_hat_out[r0:r1, : g.shape[1]] = g_hat.detach()
        for m in range(len(members)):
            atom_energies = energy_outs[m][rank]
            results[m][keys.ENERGIES] = atom_energies
            results[m][keys.ENERGY] = atom_energies.sum()
            if want_descriptors and m == 0:
                results[m][keys.DESCRIPTORS] = g_out[rank]
                results[m][keys.SCALED_DESCRIPTORS] = g_hat_out[rank]
        return results
