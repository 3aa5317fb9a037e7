// The bpnn op library: every op's schema (op_schemas.h) and every kernel registration, CPU,
// Autograd and (built with CUDA) CUDA, in this one file. The ops:
//   acsf                  symmetry functions (n2p2 types 2, 3, 9) of each centre
//   acsf_backward         their derivatives contracted with dE/dG
//   acsf_jvp, acsf_backward_jvp   their directional derivatives (dual numbers)
//   cell_list             pair search on given points (images built by the caller)
//   neighbor_list         the whole neighbour search, periodic images included
//   cell_list_capacity    cell_list into outputs of a given size (for CUDA graphs; no model calls it)
//   cuda_kernels          whether this library holds the CUDA kernels
//   evaluate              a whole evaluation of one system (CPU; cpu/evaluate_cpu.cpp says what it returns)
//   evaluate_list         the same on an engine's pair list (pairs, shifts, n_local: ghosts)
// The kernels: cpu/ (cpu_ops.h: acsf_cpu.cpp, acsf_jvp_cpu.cpp, neighbors_cpu.cpp), cuda/
// (cuda_ops.h: acsf_cuda.cu, neighbor_list_cuda.cu; only with -DBPNN_WITH_CUDA), autograd
// acsf_autograd.h. Compiled into the C++ loader library (libbpnn.so: bpnn_run and the LAMMPS
// plugin; cpp_loader/CMakeLists.txt) and, for Python, by torch.utils.cpp_extension
// (bpnn_ts/native/__init__.py), from the same sources with the same flags.
// The op schemas are part of the model-file contract (export/CONTRACT.md): do not change them.
//
// Inputs (shared by the ACSF ops):
//   vectors (P, 3)  pair vectors r_ij = R_j - R_i, Å, grouped by centre
//   offsets (B + 1) pairs of centre b are offsets[b] .. offsets[b + 1] - 1
//   species (P,)    species index of each neighbour j
//   radial, angular the functions' parameters (common/acsf_plan.h names their columns)
// and, by op (G_b = G of centre b, a function of its own pairs' vectors only):
//   acsf                        -> G (B, F)
//   acsf_backward(d_g (B, F))   -> sum_f d_g_bf dG_bf/dr_p (P, 3), p a pair of centre b
//   acsf_jvp(u)                 -> dG_b[u] = sum_p dG_b/dr_p . u_p (B, F) for u (P, 3) or (1, P, 3);
//                                  d^2G_b[u_0, u_1] for u (2, P, 3)
//   acsf_backward_jvp(d_g, u)   -> acsf_backward differentiated along u: sum_f d_g_bf
//                                  d^2G_bf/dr_p dr . u (P, 3), the Hessian-vector product; the
//                                  third derivative contracted with u_0 and u_1 for u (2, P, 3)
// The derivative ops compute in float64 and return the dtype of `vectors`.
// The neighbour searches: cpu/cell_list.h and cpu/neighbor_list.h (CPU), cuda/neighbor_list_device.h
// (CUDA, and cell_list_capacity on the CPU) say what they return.
#include <torch/library.h>

#include "acsf_autograd.h"
#include "cpu/cpu_ops.h"
#include "op_schemas.h"
#ifdef BPNN_WITH_CUDA
#include "cuda/cuda_ops.h"
#endif

namespace {

// Whether this library holds the CUDA kernels (built where a CUDA toolkit and a CUDA torch were
// found); the model files ask this before routing CUDA tensors to the fused ops.
bool cuda_kernels() {
#ifdef BPNN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

TORCH_LIBRARY(bpnn, m) {
  m.def(bpnn_schemas::kCudaKernels, &cuda_kernels);
  m.def(bpnn_schemas::kCellList);
  m.def(bpnn_schemas::kNeighborList);
  m.def(bpnn_schemas::kCellListCapacity);
  m.def(bpnn_schemas::kAcsf);
  m.def(bpnn_schemas::kAcsfBackward);
  m.def(bpnn_schemas::kAcsfJvp);
  m.def(bpnn_schemas::kAcsfBackwardJvp);
  m.def(bpnn_schemas::kEvaluate);
  m.def(bpnn_schemas::kEvaluateList);
}

TORCH_LIBRARY_IMPL(bpnn, CPU, m) {
  m.impl("acsf", bpnn_cpu::acsf);
  m.impl("acsf_backward", bpnn_cpu::acsf_backward);
  m.impl("acsf_jvp", bpnn_cpu::acsf_jvp);
  m.impl("acsf_backward_jvp", bpnn_cpu::acsf_backward_jvp);
  m.impl("cell_list", bpnn_cpu::cell_list);
  m.impl("neighbor_list", bpnn_cpu::neighbor_list);
  m.impl("cell_list_capacity", bpnn_cpu::cell_list_capacity);
  m.impl("evaluate", bpnn_cpu::evaluate);
  m.impl("evaluate_list", bpnn_cpu::evaluate_list);
}

TORCH_LIBRARY_IMPL(bpnn, Autograd, m) {
  m.impl("acsf", bpnn_autograd::acsf);
  m.impl("acsf_backward", bpnn_autograd::acsf_backward);
  m.impl("acsf_jvp", bpnn_autograd::acsf_jvp);
  m.impl("acsf_backward_jvp", bpnn_autograd::acsf_backward_jvp);
}

#ifdef BPNN_WITH_CUDA
TORCH_LIBRARY_IMPL(bpnn, CUDA, m) {
  m.impl("acsf", bpnn_cuda::acsf);
  m.impl("acsf_backward", bpnn_cuda::acsf_backward);
  m.impl("acsf_jvp", bpnn_cuda::acsf_jvp);
  m.impl("acsf_backward_jvp", bpnn_cuda::acsf_backward_jvp);
  m.impl("cell_list", bpnn_cuda::cell_list);
  m.impl("neighbor_list", bpnn_cuda::neighbor_list);
  m.impl("cell_list_capacity", bpnn_cuda::cell_list_capacity);
}
#endif
