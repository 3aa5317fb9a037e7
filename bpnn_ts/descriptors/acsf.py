"""Atom-centred symmetry functions of one centre element, and their scaling."""

from typing import Dict, List, Sequence, Tuple

import torch

from .angular import AngularBlock
from .params import RadialSF, SymmetryFunction
from .radial import RadialBlock

SCALING_TYPES: Dict[str, int] = {"none": 0, "scale": 1, "center": 2, "scalecenter": 3, "sigma": 4}


class ElementDescriptor(torch.nn.Module):
    """All symmetry functions of centres of one element, in the given column order.

    Input: for a chunk of B centres, per neighbour species s, padded neighbour
    vectors (B, M_s, 3) and distances (B, M_s) (padding lies beyond every r_c).
    Output: (B, n_functions) raw G.
    """

    def __init__(self, functions: Sequence[SymmetryFunction], species_numbers: Sequence[int],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        if not functions:
            raise ValueError("every element needs at least one symmetry function")
        index = {z: s for s, z in enumerate(species_numbers)}
        radial: Dict[int, List[int]] = {}
        angular: Dict[Tuple[int, int, bool], List[int]] = {}
        for column, f in enumerate(functions):
            if isinstance(f, RadialSF):
                radial.setdefault(index[f.neighbor], []).append(column)
            else:
                key = (index[f.neighbors[0]], index[f.neighbors[1]], f.narrow)
                angular.setdefault(key, []).append(column)
        radial_blocks: List[torch.nn.Module] = []
        angular_blocks: List[torch.nn.Module] = []
        block_columns: List[int] = []
        for species, columns in sorted(radial.items()):
            fs = [functions[c] for c in columns]
            radial_blocks.append(RadialBlock(species, [f.eta for f in fs], [f.r_s for f in fs],
                                             [f.r_c for f in fs], cutoff_type, cutoff_alpha))
            block_columns += columns
        for (sj, sk, narrow), columns in sorted(angular.items()):
            fs = [functions[c] for c in columns]
            angular_blocks.append(AngularBlock(
                sj, sk, narrow, [f.eta for f in fs], [f.zeta for f in fs],
                [f.lambda_ for f in fs], [f.r_s for f in fs], [f.r_c for f in fs],
                cutoff_type, cutoff_alpha))
            block_columns += columns
        self.radial_blocks = torch.nn.ModuleList(radial_blocks)
        self.angular_blocks = torch.nn.ModuleList(angular_blocks)
        self.n_functions = len(functions)
        inverse = [0] * len(functions)
        for position, column in enumerate(block_columns):
            inverse[column] = position
        self.register_buffer("column_order", torch.tensor(inverse, dtype=torch.long))
        self.register_buffer("block_columns", torch.tensor(block_columns, dtype=torch.long))

    def forward(self, vectors: List[torch.Tensor], distances: List[torch.Tensor]) -> torch.Tensor:
        parts: List[torch.Tensor] = []
        for block in self.radial_blocks:
            parts.append(block(distances[block.species]))
        for block in self.angular_blocks:
            parts.append(block(vectors[block.species_j], distances[block.species_j],
                               vectors[block.species_k], distances[block.species_k]))
        return torch.cat(parts, dim=1)[:, self.column_order]

    @torch.jit.export
    def largest_block(self, widths: List[int]) -> int:
        """Elements of the largest per-centre block (K x M, or K x Mj x Mk for angular
        blocks) given the neighbour count `widths` of each species."""
        largest = 1
        for block in self.radial_blocks:
            largest = max(largest, block.n_functions * widths[block.species])
        for block in self.angular_blocks:
            largest = max(largest, block.n_functions * widths[block.species_j] * widths[block.species_k])
        return largest

    @torch.jit.export
    def forward_saving(self, vectors: List[torch.Tensor], distances: List[torch.Tensor]
                       ) -> Tuple[torch.Tensor, List[List[torch.Tensor]]]:
        """G (B, n_functions) and, per block, what `backward` needs."""
        parts: List[torch.Tensor] = []
        saved: List[List[torch.Tensor]] = []
        for block in self.radial_blocks:
            g, kept = block.forward_saving(distances[block.species])
            parts.append(g)
            saved.append(kept)
        for block in self.angular_blocks:
            g, kept = block.forward_saving(vectors[block.species_j], distances[block.species_j],
                                           vectors[block.species_k], distances[block.species_k])
            parts.append(g)
            saved.append(kept)
        return torch.cat(parts, dim=1)[:, self.column_order], saved

    @torch.jit.export
    def backward(self, d_g: torch.Tensor, saved: List[List[torch.Tensor]], vectors: List[torch.Tensor],
                 distances: List[torch.Tensor]) -> List[torch.Tensor]:
        """dE/d(neighbour vectors) per neighbour species, each (B, M_s, 3), from dE/dG (B, n_functions)."""
        d_g_blocks = d_g[:, self.block_columns]
        grads = [torch.zeros_like(v) for v in vectors]
        first = 0
        index = 0
        for block in self.radial_blocks:
            last = first + block.n_functions
            s = block.species
            grads[s] = grads[s] + block.backward(d_g_blocks[:, first:last], saved[index], vectors[s], distances[s])
            first = last
            index += 1
        for block in self.angular_blocks:
            last = first + block.n_functions
            sj, sk = block.species_j, block.species_k
            grad_j, grad_k = block.backward(d_g_blocks[:, first:last], saved[index], vectors[sj],
                                            distances[sj], vectors[sk], distances[sk])
            grads[sj] = grads[sj] + grad_j
            grads[sk] = grads[sk] + grad_k
            first = last
            index += 1
        return grads

    @torch.jit.export
    def jacobian(self, saved: List[List[torch.Tensor]], vectors: List[torch.Tensor],
                 distances: List[torch.Tensor]) -> List[torch.Tensor]:
        """dG/d(neighbour vectors) per neighbour species, each (B, M_s, n_functions, 3)."""
        jac = [torch.zeros((v.shape[0], v.shape[1], self.n_functions, 3), dtype=v.dtype, device=v.device)
               for v in vectors]
        first = 0
        index = 0
        for block in self.radial_blocks:
            last = first + block.n_functions
            s = block.species
            jac[s] = jac[s].index_add(2, self.block_columns[first:last],
                                      block.jacobian(saved[index], vectors[s], distances[s]))
            first = last
            index += 1
        for block in self.angular_blocks:
            last = first + block.n_functions
            sj, sk = block.species_j, block.species_k
            jac_j, jac_k = block.jacobian(saved[index], vectors[sj], distances[sj], vectors[sk], distances[sk])
            columns = self.block_columns[first:last]
            jac[sj] = jac[sj].index_add(2, columns, jac_j)
            jac[sk] = jac[sk].index_add(2, columns, jac_k)
            first = last
            index += 1
        return jac


class Scaling(torch.nn.Module):
    """n2p2's five input scalings as G_hat = (G - shift) * factor + offset (per function).

      none        G
      scale       Smin + (Smax - Smin)(G - Gmin) / (Gmax - Gmin)
      center      G - Gmean
      scalecenter Smin + (Smax - Smin)(G - Gmean) / (Gmax - Gmin)
      sigma       Smin + (Smax - Smin)(G - Gmean) / sigma
    A function with Gmax == Gmin (or sigma == 0) gets factor 0, as in n2p2.
    The statistics (Gmin, Gmax, Gmean, sigma) are kept for extrapolation checks.
    """

    def __init__(self, n_functions: int, kind: str = "none", s_min: float = 0.0, s_max: float = 1.0):
        super().__init__()
        if kind not in SCALING_TYPES:
            raise ValueError(f"scaling type must be one of {sorted(SCALING_TYPES)}, got {kind!r}")
        self.kind = kind
        self.s_min = float(s_min)
        self.s_max = float(s_max)
        zeros = torch.zeros(n_functions, dtype=torch.float64)
        for name in ("g_min", "g_max", "g_mean", "g_sigma", "shift", "offset"):
            self.register_buffer(name, zeros.clone())
        self.register_buffer("factor", torch.ones(n_functions, dtype=torch.float64))
        self.has_statistics = False  # until set_statistics: identity scaling

    @torch.jit.unused
    def set_statistics(self, g_min, g_max, g_mean, g_sigma) -> None:
        """Set the statistics (each (n_functions,)) and derive shift/factor/offset."""
        stats = [torch.as_tensor(v, dtype=self.factor.dtype, device=self.factor.device).reshape(-1)
                 for v in (g_min, g_max, g_mean, g_sigma)]
        for name, value in zip(("g_min", "g_max", "g_mean", "g_sigma"), stats):
            if value.shape != self.factor.shape:
                raise ValueError(f"scaling statistic `{name}` must have shape "
                                 f"{tuple(self.factor.shape)}, got {tuple(value.shape)}")
            if not torch.isfinite(value).all():
                raise ValueError(f"scaling statistic `{name}` must be finite, got {value.tolist()}")
            getattr(self, name).copy_(value)
        g_min, g_max, g_mean, g_sigma = stats
        span = self.s_max - self.s_min
        safe_ratio = lambda den: torch.where(den > 0, span / torch.where(den > 0, den, torch.ones_like(den)),  # noqa: E731
                                             torch.zeros_like(den))
        kind = self.kind
        shift = {"none": 0.0 * g_min, "scale": g_min}.get(kind, g_mean)
        factor = {"none": torch.ones_like(g_min), "center": torch.ones_like(g_min),
                  "sigma": safe_ratio(g_sigma)}.get(kind, safe_ratio(g_max - g_min))
        offset = torch.full_like(g_min, self.s_min if kind in ("scale", "scalecenter", "sigma") else 0.0)
        self.shift.copy_(shift)
        self.factor.copy_(factor)
        self.offset.copy_(offset)
        self.has_statistics = True

    @torch.jit.unused
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Loading a state dict restores `has_statistics` too (it is not a tensor): statistics
        were set if any function's recorded range [Gmin, Gmax] or sigma is not empty."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.has_statistics = bool((self.g_max > self.g_min).any() or (self.g_sigma > 0).any())

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return (g - self.shift) * self.factor + self.offset
