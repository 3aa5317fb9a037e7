// TEST ONLY: the library bpnn_emulation, the GPU code run on the host, one loop iteration per
// would-be CUDA thread, so that tests on machines without a GPU check it against the CPU ops:
//   acsf, acsf_backward, acsf_jvp, acsf_backward_jvp   the per-thread code of the CUDA ACSF
//       kernels (cuda/acsf_device.h, through cuda/acsf_device_ops.h) on the flat plan a launch
//       would copy (tests/test_cuda_kernels.py)
//   cell_list, neighbor_list   the device neighbour search (cuda/neighbor_list_device.h, HostRunner)
//       (tests/test_cuda_neighbors.py)
// The schemas of the bpnn ops of the same names (op_schemas.h); CPU tensors; no autograd; slow (one
// thread). The ACSF ops check their inputs with the CPU ops' code (cpu/acsf_inputs.h), so they
// refuse what the CPU ops refuse, with the same messages. Not part of the model-file contract: no
// model calls them.
//
// Built only for the tests, into a shared library of its own (CMake target bpnn_emulation, option
// BPNN_TEST_OPS; tests/helpers.py: emulation_ops() loads it), never into libbpnn or the Python
// build. It does not link libbpnn: the process may hold another build of the bpnn ops (the Python
// build), and a second TORCH_LIBRARY(bpnn) would fail. The headers it needs are compiled in, with
// the plan cache (common/acsf_plan.cpp), all with hidden symbols.
#include <torch/library.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "../common/acsf_plan.h"
#include "../common/dual.h"
#include "../cpu/acsf_inputs.h"
#include "../cuda/acsf_device.h"
#include "../cuda/acsf_device_ops.h"
#include "../cuda/acsf_device_plan.h"
#include "../cuda/neighbor_list_device.h"
#include "../op_schemas.h"

namespace {

using bpnn_cpu::KernelInputs;

// The GPU kernels' passes on the host (acsf_device_ops.h's Backend), one loop iteration per
// would-be CUDA thread, on the flat plan a launch would copy.
struct Emulation {
  static bpnn_device::Tables tables(const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_species,
                                    int64_t cutoff_type, double cutoff_alpha, const torch::Device&) {
    bpnn_device::FlatPlan flat = bpnn_device::flatten(
        *bpnn_plan::make_plan(radial, angular, n_species, cutoff_type, cutoff_alpha));
    bpnn_device::Tables t{flat.header, torch::tensor(flat.values, torch::kFloat64)};
    t.plan.data = t.values.data_ptr<double>();
    return t;
  }
  template <typename real, typename scalar_t>
  static void pairs(const bpnn_device::DevicePlan& plan, int64_t n_pairs, const scalar_t* vectors,
                    const double* directions, real* work) {
    for (int64_t p = 0; p < n_pairs; ++p) bpnn_device::pair_factors(plan, p, n_pairs, vectors, directions, work);
  }
  template <typename real>
  static void forward(const bpnn_device::DevicePlan& plan, int64_t n_centres, const int64_t* offsets,
                      const int64_t* species, const real* work, int64_t n_functions,
                      typename bpnn_dual::Sum<real>::type* g) {
    for (int64_t b = 0; b < n_centres; ++b) {
      bpnn_device::centre_forward(plan, b, offsets, species, work, n_functions, g);
    }
  }
  template <typename real>
  static void backward(const bpnn_device::DevicePlan& plan, int64_t n_centres, const int64_t* offsets,
                       const int64_t* species, const real* work, int64_t n_functions, const double* weight,
                       real* out) {
    for (int64_t b = 0; b < n_centres; ++b) {
      bpnn_device::centre_backward(plan, b, offsets, species, work, n_functions, weight, out);
    }
  }
};

// The emulated ops check their inputs as the CPU ops do (KernelInputs), then run Emulation.
using EmulatedOps = bpnn_device::DeviceOps<Emulation>;

torch::Tensor emulated_acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                            const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                            int64_t n_species, int64_t cutoff_type, double cutoff_alpha) {
  KernelInputs(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  return EmulatedOps::acsf(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                           cutoff_alpha);
}

torch::Tensor emulated_acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                     const torch::Tensor& species, const torch::Tensor& radial,
                                     const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                     int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g) {
  KernelInputs(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  return EmulatedOps::acsf_backward(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                                    cutoff_alpha, d_g);
}

torch::Tensor emulated_acsf_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                const torch::Tensor& species, const torch::Tensor& radial,
                                const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& u) {
  KernelInputs(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  return EmulatedOps::acsf_jvp(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                               cutoff_alpha, u);
}

torch::Tensor emulated_acsf_backward_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                         const torch::Tensor& species, const torch::Tensor& radial,
                                         const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                         int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g,
                                         const torch::Tensor& u) {
  KernelInputs(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  return EmulatedOps::acsf_backward_jvp(vectors, offsets, species, radial, angular, n_functions, n_species,
                                        cutoff_type, cutoff_alpha, d_g, u);
}

std::vector<torch::Tensor> emulated_cell_list(const torch::Tensor& points, int64_t n_centres, double cutoff) {
  TORCH_CHECK(points.device().is_cpu() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on the CPU");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  TORCH_CHECK(n_centres >= 0 && n_centres <= points.size(0), "bpnn: n_centres out of range");
  return bpnn_device::cell_list(bpnn_device::HostRunner{}, points, n_centres, cutoff);
}

std::vector<torch::Tensor> emulated_neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell,
                                                  const torch::Tensor& pbc, double cutoff) {
  TORCH_CHECK(positions.device().is_cpu() && cell.device().is_cpu() && pbc.device().is_cpu(),
              "bpnn: the emulated neighbor_list runs on the CPU only");
  return bpnn_device::neighbor_list(bpnn_device::HostRunner{}, positions, cell, pbc, cutoff);
}

}  // namespace

TORCH_LIBRARY(bpnn_emulation, m) {
  m.def(bpnn_schemas::kAcsf);
  m.def(bpnn_schemas::kAcsfBackward);
  m.def(bpnn_schemas::kAcsfJvp);
  m.def(bpnn_schemas::kAcsfBackwardJvp);
  m.def(bpnn_schemas::kCellList, &emulated_cell_list);
  m.def(bpnn_schemas::kNeighborList, &emulated_neighbor_list);
}

TORCH_LIBRARY_IMPL(bpnn_emulation, CPU, m) {
  m.impl("acsf", emulated_acsf);
  m.impl("acsf_backward", emulated_acsf_backward);
  m.impl("acsf_jvp", emulated_acsf_jvp);
  m.impl("acsf_backward_jvp", emulated_acsf_backward_jvp);
}
