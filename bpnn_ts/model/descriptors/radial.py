"""Radial symmetry functions of one (centre element, neighbour element) block."""

from typing import List, Tuple

import torch

from ..cutoffs import cutoff_function, cutoff_function_and_slope


class RadialBlock(torch.nn.Module):
    """G2 functions over the neighbours of one element, for a chunk of centres.

    Input: distances (B, M) of each centre's neighbours of element `species`
    (padding at distances beyond every r_c). Output: (B, K), K = number of functions.
    `forward_saving` + `backward` give dE/d(neighbour vectors) from dE/dG
    analytically (no autograd graph through the descriptor).
    """

    def __init__(self, species: int, eta: List[float], r_s: List[float], r_c: List[float],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        self.species = species
        self.n_functions = len(eta)
        self.cutoff_type = cutoff_type
        self.cutoff_alpha = cutoff_alpha
        self.register_buffer("eta", torch.tensor(eta, dtype=torch.float64).view(1, -1, 1))
        self.register_buffer("r_s", torch.tensor(r_s, dtype=torch.float64).view(1, -1, 1))
        self.register_buffer("r_c", torch.tensor(r_c, dtype=torch.float64).view(1, -1, 1))

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        r = distances.unsqueeze(1)  # (B, 1, M)
        fc = cutoff_function(r, self.r_c, self.cutoff_type, self.cutoff_alpha)  # (B, K, M)
        return (torch.exp(-self.eta * (r - self.r_s) ** 2) * fc).sum(dim=2)

    @torch.jit.export
    def forward_saving(self, distances: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """G (B, K) and what `backward` needs: [dG_K/dr per neighbour (B, K, M)]."""
        r = distances.unsqueeze(1)
        fc, fc_slope = cutoff_function_and_slope(r, self.r_c, self.cutoff_type, self.cutoff_alpha)
        shifted = r - self.r_s
        gauss = torch.exp(-self.eta * shifted * shifted)
        slope = gauss * (fc_slope - 2.0 * self.eta * shifted * fc)
        return (gauss * fc).sum(dim=2), [slope]

    @torch.jit.export
    def backward(self, weights: torch.Tensor, saved: List[torch.Tensor], vectors: torch.Tensor,
                 distances: torch.Tensor) -> torch.Tensor:
        """dE/d(neighbour vectors) (B, M, 3) from weights = dE/dG (B, K)."""
        d_distance = (weights.unsqueeze(-1) * saved[0]).sum(dim=1)  # (B, M)
        return (d_distance / distances).unsqueeze(-1) * vectors

    @torch.jit.export
    def jacobian(self, saved: List[torch.Tensor], vectors: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
        """dG_K/d(neighbour vector) (B, M, K, 3)."""
        slope = (saved[0] / distances.unsqueeze(1)).transpose(1, 2)  # (B, M, K)
        return slope.unsqueeze(-1) * vectors.unsqueeze(2)
