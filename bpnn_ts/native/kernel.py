"""The descriptor-kernel slot of each element: pure torch (no kernel) or the fused C++ ops.

`ElementModel.kernel` is typed by the TorchScript interface `DescriptorKernel`, so a
model scripts whether or not the C++ ops exist: only `NativeKernel` refers to
`torch.ops.bpnn.*`, and only models that were switched to it need the ops at load time.
"""

from typing import List, Optional, Sequence, Tuple

import torch

from ..descriptors.params import RadialSF, SymmetryFunction
from ..neighbors import native_neighbor_list, neighbor_list


@torch.jit.interface
class DescriptorKernel(torch.nn.Module):
    def forward(self, vectors: torch.Tensor, offsets: torch.Tensor, species: torch.Tensor,
                d_g: Optional[torch.Tensor]) -> torch.Tensor:
        """G (B, F) if `d_g` is None, else dE/dr_ij (P, 3) from dE/dG = d_g (B, F).
        vectors (P, 3) grouped by centre, offsets (B + 1,), species (P,) of the neighbours."""
        pass


class NoKernel(torch.nn.Module):
    """Placeholder: the model computes its descriptors with pure torch blocks."""

    def forward(self, vectors: torch.Tensor, offsets: torch.Tensor, species: torch.Tensor,
                d_g: Optional[torch.Tensor]) -> torch.Tensor:
        raise ValueError("this model has no fused descriptor kernel (use_native_kernels was not enabled)")


class NativeKernel(torch.nn.Module):
    """torch.ops.bpnn.acsf / acsf_backward for the functions of one centre element (CPU)."""

    def __init__(self, functions: Sequence[SymmetryFunction], species_numbers: Sequence[int],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        index = {z: s for s, z in enumerate(species_numbers)}
        radial: List[List[float]] = []
        angular: List[List[float]] = []
        for column, f in enumerate(functions):
            if isinstance(f, RadialSF):
                radial.append([column, index[f.neighbor], f.eta, f.r_s, f.r_c])
            else:
                angular.append([column, index[f.neighbors[0]], index[f.neighbors[1]], float(f.narrow),
                                f.eta, f.zeta, f.lambda_, f.r_s, f.r_c])
        self.register_buffer("radial", torch.tensor(radial, dtype=torch.float64).reshape(-1, 5))
        self.register_buffer("angular", torch.tensor(angular, dtype=torch.float64).reshape(-1, 9))
        self.n_functions = len(functions)
        self.n_species = len(species_numbers)
        self.cutoff_type = int(cutoff_type)
        self.cutoff_alpha = float(cutoff_alpha)

    def forward(self, vectors: torch.Tensor, offsets: torch.Tensor, species: torch.Tensor,
                d_g: Optional[torch.Tensor]) -> torch.Tensor:
        if d_g is None:
            return torch.ops.bpnn.acsf(vectors, offsets, species, self.radial, self.angular, self.n_functions,
                                       self.n_species, self.cutoff_type, self.cutoff_alpha)
        return torch.ops.bpnn.acsf_backward(vectors, offsets, species, self.radial, self.angular,
                                            self.n_functions, self.n_species, self.cutoff_type,
                                            self.cutoff_alpha, d_g)


@torch.jit.interface
class PairSearch(torch.nn.Module):
    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """pairs (2, P) and integer shifts (P, 3) of every pair closer than `cutoff` (Å)."""
        pass


class TorchPairSearch(torch.nn.Module):
    """The pure-torch cell list (bpnn_ts.neighbors.neighbor_list)."""

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
        return neighbor_list(positions, cell, pbc, cutoff)


class NativePairSearch(torch.nn.Module):
    """Periodic images in torch, the pair search in C++ (torch.ops.bpnn.cell_list); CPU only."""

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
        if positions.device.type != "cpu":
            return neighbor_list(positions, cell, pbc, cutoff)
        return native_neighbor_list(positions, cell, pbc, cutoff)
