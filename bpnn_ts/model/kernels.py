"""The descriptor-kernel slot of each element: none (the torch blocks compute descriptors) or the
fused C++ ops of bpnn_ts/native.

`ElementModel.kernel` is typed by the TorchScript interface `DescriptorKernel`, so a model
scripts whether or not the C++ ops exist: only `NativeKernel` refers to `torch.ops.bpnn.*`,
and only models switched to it need the ops at load time. The same ops run on CUDA tensors where
the library holds CUDA kernels (`torch.ops.bpnn.cuda_kernels()`); `runs_on(device)` tells the
potential whether to route a device's tensors through the slot. The ops are differentiable (their autograd is C++,
bpnn_ts/native/acsf_autograd.h, so C++ engines have it too): dE/dr_ij = acsf_backward(d_g) is
differentiable w.r.t. d_g (through acsf_jvp), which is what training on forces needs.
"""

from typing import Dict, List, Optional, Sequence

import torch

from .descriptors.params import RadialSF, SymmetryFunction
from .jit import interface

# Columns of the kernels' parameter tables, named once; mirrored by the enums RadialColumn and
# AngularColumn in bpnn_ts/native/common/acsf_plan.h (tests/test_layout.py checks that they agree).
RADIAL_COLUMNS = ("column", "species", "eta", "r_s", "r_c")
ANGULAR_COLUMNS = ("column", "species_j", "species_k", "narrow", "eta", "zeta", "lambda", "r_s", "r_c")


@interface
class DescriptorKernel(torch.nn.Module):
    def forward(self, vectors: torch.Tensor, offsets: torch.Tensor, species: torch.Tensor,
                d_g: Optional[torch.Tensor]) -> torch.Tensor:
        """G (B, F) if `d_g` is None, else dE/dr_ij (P, 3) from dE/dG = d_g (B, F).
        vectors (P, 3) grouped by centre, offsets (B + 1,), species (P,) of the neighbours."""
        pass

    def runs_on(self, device: torch.device) -> bool:
        """True if this kernel computes on tensors of `device` (else the torch blocks do)."""
        pass

    def tables(self) -> List[torch.Tensor]:
        """[radial, angular] parameter tables of the fused ops ([] without a kernel)."""
        pass


class NoKernel(torch.nn.Module):
    """Placeholder: the element computes its descriptors with the torch blocks."""

    def forward(self, vectors: torch.Tensor, offsets: torch.Tensor, species: torch.Tensor,
                d_g: Optional[torch.Tensor]) -> torch.Tensor:
        raise ValueError("this model has no fused descriptor kernel (use_native_kernels was not enabled)")

    @torch.jit.export
    def runs_on(self, device: torch.device) -> bool:
        return False

    @torch.jit.export
    def tables(self) -> List[torch.Tensor]:
        return []


def parameter_rows(function: SymmetryFunction, column: int, species_index: Dict[int, int]) -> List[float]:
    """One row of the radial (RADIAL_COLUMNS) or angular (ANGULAR_COLUMNS) parameter table."""
    if isinstance(function, RadialSF):
        values = {"column": column, "species": species_index[function.neighbor], "eta": function.eta,
                  "r_s": function.r_s, "r_c": function.r_c}
        return [float(values[name]) for name in RADIAL_COLUMNS]
    values = {"column": column, "species_j": species_index[function.neighbors[0]],
              "species_k": species_index[function.neighbors[1]], "narrow": float(function.narrow),
              "eta": function.eta, "zeta": function.zeta, "lambda": function.lambda_, "r_s": function.r_s,
              "r_c": function.r_c}
    return [float(values[name]) for name in ANGULAR_COLUMNS]


class NativeKernel(torch.nn.Module):
    """torch.ops.bpnn.acsf / acsf_backward for the functions of one centre element (CPU, and CUDA
    where the ops were built with CUDA); the arguments after the pair data (`radial` ..
    `cutoff_alpha`) are those of every bpnn ACSF op."""

    def __init__(self, functions: Sequence[SymmetryFunction], species_numbers: Sequence[int],
                 cutoff_type: int, cutoff_alpha: float):
        super().__init__()
        index = {z: s for s, z in enumerate(species_numbers)}
        rows = [(f, parameter_rows(f, column, index)) for column, f in enumerate(functions)]
        radial = [row for f, row in rows if isinstance(f, RadialSF)]
        angular = [row for f, row in rows if not isinstance(f, RadialSF)]
        self.register_buffer("radial", torch.tensor(radial, dtype=torch.float64).reshape(-1, len(RADIAL_COLUMNS)))
        self.register_buffer("angular", torch.tensor(angular, dtype=torch.float64).reshape(-1, len(ANGULAR_COLUMNS)))
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

    @torch.jit.export
    def runs_on(self, device: torch.device) -> bool:
        """The CPU always; CUDA where the loaded ops hold CUDA kernels (asked when the model runs,
        so one model file uses them wherever the library has them)."""
        if device.type == "cpu":
            return True
        return device.type == "cuda" and torch.ops.bpnn.cuda_kernels()

    @torch.jit.export
    def tables(self) -> List[torch.Tensor]:
        """[radial, angular]: the parameter tables every bpnn ACSF op takes."""
        return [self.radial, self.angular]
