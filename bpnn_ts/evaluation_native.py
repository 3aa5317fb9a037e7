"""Evaluation with the fused C++ descriptor kernels (CPU, inference): one kernel call per centre
element over all its centres, pairs sorted by centre rank; no padding, no chunks.
A mixin of BPNNPotential (TorchScript compiles its methods as the model's own)."""

from typing import Dict, List

import torch

from . import keys
from .forces import add_forces_and_virials


class NativeEvaluation:
    """`_evaluate_native` for BPNNPotential (uses its elements, energy scale and shifts)."""

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
            add_forces_and_virials(result, geometry, d_vectors, centres, neighbours, n_atoms, compute_forces,
                                   compute_virial)
        if want_descriptors:
            result[keys.DESCRIPTORS] = g_out[rank]
            result[keys.SCALED_DESCRIPTORS] = g_hat_out[rank]
        return result
