"""Angular symmetry functions of one (centre element, neighbour-element pair) block."""

from typing import List, Tuple

import torch

from ..cutoffs import cutoff_function, cutoff_function_and_slope


class AngularBlock(torch.nn.Module):
    """Narrow (G4, n2p2 type 3) or wide (G5, type 9) functions over neighbour
    pairs {j, k} with j of element `species_j` and k of `species_k`, for a chunk
    of centres. Dense layout: each centre's neighbours of one element form a
    padded (B, M, 3) block; cos(theta) comes from one batched Gram matrix and
    triplet terms are (B, K, Mj, Mk), so sums over a neighbour are `bmm`s.

    Inputs: vectors_j (B, Mj, 3), distances_j (B, Mj), and the same for k.
    Output: (B, K). Each unordered pair counts once (same-element blocks sum the
    ordered pairs j != k and halve). `forward_saving` + `backward` give
    dE/d(neighbour vectors) from dE/dG analytically.
    """

    def __init__(self, species_j: int, species_k: int, narrow: bool, eta: List[float],
                 zeta: List[float], lambda_: List[float], r_s: List[float], r_c: List[float],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        self.species_j = species_j
        self.species_k = species_k
        self.n_functions = len(eta)
        self.same_species = species_j == species_k
        self.narrow = narrow
        self.cutoff_type = cutoff_type
        self.cutoff_alpha = cutoff_alpha
        as_tensor = lambda values: torch.tensor(values, dtype=torch.float64).view(1, -1, 1, 1)  # noqa: E731
        self.register_buffer("eta", as_tensor(eta))
        self.register_buffer("zeta", as_tensor(zeta))
        self.register_buffer("lambda_", as_tensor(lambda_))
        self.register_buffer("r_s", as_tensor(r_s))
        self.register_buffer("r_c", as_tensor(r_c))
        self.register_buffer("lambda_zeta", as_tensor([a * b for a, b in zip(lambda_, zeta)]))
        prefactor = [2.0 ** (1.0 - z) * (0.5 if species_j == species_k else 1.0) for z in zeta]
        self.register_buffer("prefactor", torch.tensor(prefactor, dtype=torch.float64).view(1, -1))

    def _radial(self, distances: torch.Tensor, with_slope: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, K, M) exp(-eta (r - r_s)^2) f_c(r) and its r-derivative (empty unless asked)."""
        r = distances.unsqueeze(1)
        eta, r_s, r_c = self.eta.squeeze(-1), self.r_s.squeeze(-1), self.r_c.squeeze(-1)
        shifted = r - r_s
        gauss = torch.exp(-eta * shifted * shifted)
        if not with_slope:
            return gauss * cutoff_function(r, r_c, self.cutoff_type, self.cutoff_alpha), torch.empty(0)
        fc, fc_slope = cutoff_function_and_slope(r, r_c, self.cutoff_type, self.cutoff_alpha)
        return gauss * fc, gauss * (fc_slope - 2.0 * eta * shifted * fc)

    def forward(self, vectors_j: torch.Tensor, distances_j: torch.Tensor,
                vectors_k: torch.Tensor, distances_k: torch.Tensor) -> torch.Tensor:
        g, _ = self._compute(vectors_j, distances_j, vectors_k, distances_k, False)
        return g

    @torch.jit.export
    def forward_saving(self, vectors_j: torch.Tensor, distances_j: torch.Tensor,
                       vectors_k: torch.Tensor, distances_k: torch.Tensor
                       ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """G (B, K) and the intermediates `backward` needs."""
        return self._compute(vectors_j, distances_j, vectors_k, distances_k, True)

    def _compute(self, vectors_j: torch.Tensor, distances_j: torch.Tensor, vectors_k: torch.Tensor,
                 distances_k: torch.Tensor, keep: bool) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        batch, m_j, m_k = vectors_j.shape[0], vectors_j.shape[1], vectors_k.shape[1]
        n = self.n_functions
        radial_j, slope_j = self._radial(distances_j, keep)
        if self.same_species:
            radial_k, slope_k = radial_j, slope_j
        else:
            radial_k, slope_k = self._radial(distances_k, keep)
        dot = torch.bmm(vectors_j, vectors_k.transpose(1, 2))  # (B, Mj, Mk)
        cos = dot / (distances_j.unsqueeze(2) * distances_k.unsqueeze(1))
        base = 1.0 + self.lambda_ * cos.unsqueeze(1)  # (B, K, Mj, Mk)
        positive = base > 0.0
        base_safe = torch.where(positive, base, torch.ones_like(base))
        term = torch.where(positive, torch.pow(base_safe, self.zeta), torch.zeros_like(base))
        if self.same_species:
            off_diagonal = ~torch.eye(m_j, dtype=torch.bool, device=vectors_j.device)
            term = term * off_diagonal.to(term.dtype)
        saved: List[torch.Tensor] = []
        term_r_jk_slope = torch.empty(0)
        r_jk = torch.empty(0)
        if self.narrow:
            r_jk2 = (distances_j * distances_j).unsqueeze(2) + (distances_k * distances_k).unsqueeze(1) - 2.0 * dot
            distinct = (r_jk2 > 1e-20).unsqueeze(1)  # false on the diagonal and between padding slots
            r_jk = torch.sqrt(torch.where(distinct, r_jk2.unsqueeze(1), torch.ones_like(r_jk2.unsqueeze(1))))
            shifted = r_jk - self.r_s
            gauss = torch.exp(-self.eta * shifted * shifted) * distinct.to(term.dtype)
            if keep:
                fc, fc_slope = cutoff_function_and_slope(r_jk, self.r_c, self.cutoff_type, self.cutoff_alpha)
                term_r_jk_slope = term * gauss * (fc_slope - 2.0 * self.eta * shifted * fc)
            else:
                fc = cutoff_function(r_jk, self.r_c, self.cutoff_type, self.cutoff_alpha)
            term = term * gauss * fc
        flat = term.reshape(batch * n, m_j, m_k)
        summed_k = torch.bmm(flat, radial_k.reshape(batch * n, m_k, 1)).view(batch, n, m_j)
        g = (summed_k * radial_j).sum(dim=2) * self.prefactor
        if keep:
            if self.same_species:
                summed_j = summed_k
            else:
                summed_j = torch.bmm(flat.transpose(1, 2), radial_j.reshape(batch * n, m_j, 1)).view(batch, n, m_k)
            saved = [radial_j, slope_j, radial_k, slope_k, summed_k, summed_j, term / base_safe, cos,
                     term_r_jk_slope, r_jk]
        return g, saved

    @torch.jit.export
    def backward(self, weights: torch.Tensor, saved: List[torch.Tensor], vectors_j: torch.Tensor,
                 distances_j: torch.Tensor, vectors_k: torch.Tensor, distances_k: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """dE/d(vectors_j) (B, Mj, 3) and dE/d(vectors_k) (B, Mk, 3) from weights = dE/dG (B, K).

        With t_jk the triplet term, c = cos(theta_jk), r_jk = |r_k - r_j|:
        dE/dr_j = sum_K w_K [dG/d|r_j| u_j + sum_k dG/dc (u_k - c u_j) / |r_j| - dG/dr_jk (r_k - r_j)/r_jk].
        """
        radial_j, slope_j, radial_k, slope_k = saved[0], saved[1], saved[2], saved[3]
        summed_k, summed_j, term_over_base, cos = saved[4], saved[5], saved[6], saved[7]
        w = (weights * self.prefactor).unsqueeze(-1)  # (B, K, 1)
        weighted_j = w * radial_j  # (B, K, Mj)
        pair_weight = weighted_j.unsqueeze(-1) * radial_k.unsqueeze(2)  # (B, K, Mj, Mk)
        d_cos = (pair_weight * term_over_base * self.lambda_zeta).sum(dim=1)  # (B, Mj, Mk)
        unit_j = vectors_j / distances_j.unsqueeze(-1)
        unit_k = vectors_k / distances_k.unsqueeze(-1)
        d_cos_c = d_cos * cos
        d_dist_j = (w * summed_k * slope_j).sum(dim=1) - d_cos_c.sum(dim=2) / distances_j
        grad_j = torch.bmm(d_cos, unit_k) / distances_j.unsqueeze(-1) + d_dist_j.unsqueeze(-1) * unit_j
        if self.narrow:
            d_r_jk = (pair_weight * saved[8]).sum(dim=1) / saved[9].squeeze(1)  # (B, Mj, Mk), / r_jk
            grad_j = grad_j + d_r_jk.sum(dim=2).unsqueeze(-1) * vectors_j - torch.bmm(d_r_jk, vectors_k)
        else:
            d_r_jk = torch.empty(0)
        if self.same_species:  # symmetric in j <-> k: the k role gives the same again
            return grad_j, grad_j
        d_cos_t = d_cos.transpose(1, 2)
        d_dist_k = (w * summed_j * slope_k).sum(dim=1) - d_cos_c.sum(dim=1) / distances_k
        grad_k = torch.bmm(d_cos_t, unit_j) / distances_k.unsqueeze(-1) + d_dist_k.unsqueeze(-1) * unit_k
        if self.narrow:
            grad_k = grad_k + d_r_jk.sum(dim=1).unsqueeze(-1) * vectors_k - torch.bmm(d_r_jk.transpose(1, 2), vectors_j)
        return grad_j, grad_k

    @torch.jit.export
    def jacobian(self, saved: List[torch.Tensor], vectors_j: torch.Tensor, distances_j: torch.Tensor,
                 vectors_k: torch.Tensor, distances_k: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """dG_K/d(vectors_j) (B, Mj, K, 3) and dG_K/d(vectors_k) (B, Mk, K, 3): `backward`
        without the contraction over K (for descriptor caches in training)."""
        radial_j, slope_j, radial_k, slope_k = saved[0], saved[1], saved[2], saved[3]
        summed_k, summed_j, term_over_base, cos = saved[4], saved[5], saved[6], saved[7]
        batch, n, m_j, m_k = term_over_base.shape
        prefactor = self.prefactor.unsqueeze(-1)  # (1, K, 1)
        pair = (prefactor * radial_j).unsqueeze(-1) * radial_k.unsqueeze(2)  # (B, K, Mj, Mk)
        d_cos = pair * term_over_base * self.lambda_zeta
        d_cos_c = d_cos * cos.unsqueeze(1)
        unit_j = vectors_j / distances_j.unsqueeze(-1)
        unit_k = vectors_k / distances_k.unsqueeze(-1)
        d_dist_j = prefactor * summed_k * slope_j - d_cos_c.sum(dim=3) / distances_j.unsqueeze(1)
        grad_j = (torch.bmm(d_cos.reshape(batch, n * m_j, m_k), unit_k).view(batch, n, m_j, 3)
                  / distances_j.unsqueeze(1).unsqueeze(-1) + d_dist_j.unsqueeze(-1) * unit_j.unsqueeze(1))
        d_r_jk = torch.empty(0)
        if self.narrow:
            d_r_jk = pair * saved[8] / saved[9]  # (B, K, Mj, Mk), / r_jk
            grad_j = (grad_j + d_r_jk.sum(dim=3).unsqueeze(-1) * vectors_j.unsqueeze(1)
                      - torch.bmm(d_r_jk.reshape(batch, n * m_j, m_k), vectors_k).view(batch, n, m_j, 3))
        grad_j = grad_j.transpose(1, 2)
        if self.same_species:
            return grad_j, grad_j
        d_cos_t = d_cos.transpose(2, 3).reshape(batch, n * m_k, m_j)
        d_dist_k = prefactor * summed_j * slope_k - d_cos_c.sum(dim=2) / distances_k.unsqueeze(1)
        grad_k = (torch.bmm(d_cos_t, unit_j).view(batch, n, m_k, 3) / distances_k.unsqueeze(1).unsqueeze(-1)
                  + d_dist_k.unsqueeze(-1) * unit_k.unsqueeze(1))
        if self.narrow:
            grad_k = (grad_k + d_r_jk.sum(dim=2).unsqueeze(-1) * vectors_k.unsqueeze(1)
                      - torch.bmm(d_r_jk.transpose(2, 3).reshape(batch, n * m_k, m_j), vectors_j).view(batch, n, m_k, 3))
        return grad_j, grad_k.transpose(1, 2)
