"""Radial symmetry functions of one (centre element, neighbour element) block."""

from typing import List

import torch

from ..cutoffs import cutoff_function


class RadialBlock(torch.nn.Module):
    """G2 functions over the neighbours of one element, for a chunk of centres.

    Input: distances (B, M) of each centre's neighbours of element `species`
    (padding at distances beyond every r_c). Output: (B, K), K = number of functions.
    """

    def __init__(self, species: int, eta: List[float], r_s: List[float], r_c: List[float],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        self.species = species
        self.cutoff_type = cutoff_type
        self.cutoff_alpha = cutoff_alpha
        self.register_buffer("eta", torch.tensor(eta, dtype=torch.float64))
        self.register_buffer("r_s", torch.tensor(r_s, dtype=torch.float64))
        self.register_buffer("r_c", torch.tensor(r_c, dtype=torch.float64))

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        r = distances.unsqueeze(-1)  # (B, M, 1)
        fc = cutoff_function(r, self.r_c, self.cutoff_type, self.cutoff_alpha)  # (B, M, K)
        return (torch.exp(-self.eta * (r - self.r_s) ** 2) * fc).sum(dim=1)
