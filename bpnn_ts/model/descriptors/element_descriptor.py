"""All atom-centred symmetry functions of one centre element, as radial and angular blocks."""

from typing import Dict, List, Sequence, Tuple

import torch

from .angular import AngularBlock
from .params import RadialSF, SymmetryFunction
from .radial import RadialBlock


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
        self.n_species = len(species_numbers)  # elements a neighbour can be
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
