"""Angular symmetry functions of one (centre element, neighbour-element pair) block."""

from typing import List

import torch

from ..cutoffs import cutoff_function


class AngularBlock(torch.nn.Module):
    """Narrow (G4, n2p2 type 3) or wide (G5, type 9) functions over neighbour
    pairs {j, k} with j of element `species_j` and k of `species_k`, for a chunk
    of centres. Dense layout: each centre's neighbours of one element form a
    padded (B, M, 3) block, so cos(theta) comes from one batched Gram matrix.

    Inputs: vectors_j (B, Mj, 3), distances_j (B, Mj), and the same for k.
    Output: (B, K). Each unordered pair counts once (same-element blocks sum the
    ordered pairs j != k and halve).
    """

    def __init__(self, species_j: int, species_k: int, narrow: bool, eta: List[float],
                 zeta: List[float], lambda_: List[float], r_s: List[float], r_c: List[float],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        self.species_j = species_j
        self.species_k = species_k
        self.same_species = species_j == species_k
        self.narrow = narrow
        self.cutoff_type = cutoff_type
        self.cutoff_alpha = cutoff_alpha
        as_tensor = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
        self.register_buffer("eta", as_tensor(eta))
        self.register_buffer("zeta", as_tensor(zeta))
        self.register_buffer("lambda_", as_tensor(lambda_))
        self.register_buffer("r_s", as_tensor(r_s))
        self.register_buffer("r_c", as_tensor(r_c))
        prefactor = [2.0 ** (1.0 - z) * (0.5 if species_j == species_k else 1.0) for z in zeta]
        self.register_buffer("prefactor", as_tensor(prefactor))

    def _radial(self, distances: torch.Tensor) -> torch.Tensor:
        """(B, M, K) exp(-eta (r - r_s)^2) f_c(r)."""
        r = distances.unsqueeze(-1)
        fc = cutoff_function(r, self.r_c, self.cutoff_type, self.cutoff_alpha)
        return torch.exp(-self.eta * (r - self.r_s) ** 2) * fc

    def forward(self, vectors_j: torch.Tensor, distances_j: torch.Tensor,
                vectors_k: torch.Tensor, distances_k: torch.Tensor) -> torch.Tensor:
        radial_j = self._radial(distances_j)  # (B, Mj, K)
        radial_k = self._radial(distances_k)  # (B, Mk, K)
        dot = torch.bmm(vectors_j, vectors_k.transpose(1, 2))  # (B, Mj, Mk)
        cos = dot / (distances_j.unsqueeze(2) * distances_k.unsqueeze(1))
        base = 1.0 + self.lambda_ * cos.unsqueeze(-1)  # (B, Mj, Mk, K)
        positive = base > 0.0
        term = torch.where(positive, torch.pow(torch.where(positive, base, torch.ones_like(base)),
                                               self.zeta), torch.zeros_like(base))
        if self.same_species:
            n = vectors_j.shape[1]
            off_diagonal = ~torch.eye(n, dtype=torch.bool, device=vectors_j.device)
            term = term * off_diagonal.unsqueeze(0).unsqueeze(-1).to(term.dtype)
        if self.narrow:
            r_jk2 = (distances_j * distances_j).unsqueeze(2) + (distances_k * distances_k).unsqueeze(1) - 2.0 * dot
            distinct = r_jk2 > 1e-20  # false on the diagonal and between padding slots
            r_jk = torch.sqrt(torch.where(distinct, r_jk2, torch.ones_like(r_jk2))).unsqueeze(-1)
            fc_jk = cutoff_function(r_jk, self.r_c, self.cutoff_type, self.cutoff_alpha)
            term = term * torch.exp(-self.eta * (r_jk - self.r_s) ** 2) * fc_jk
            term = term * distinct.unsqueeze(-1).to(term.dtype)
        summed_k = (term * radial_k.unsqueeze(1)).sum(dim=2)  # (B, Mj, K)
        return (summed_k * radial_j).sum(dim=1) * self.prefactor
