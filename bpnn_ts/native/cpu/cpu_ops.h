// The CPU kernels of the bpnn ops, registered for the CPU key in register.cpp (which says what
// each op computes; schemas in op_schemas.h). Defined in acsf_cpu.cpp (acsf, acsf_backward),
// acsf_jvp_cpu.cpp (acsf_jvp, acsf_backward_jvp) and neighbors_cpu.cpp (cell_list,
// neighbor_list, cell_list_capacity). Hidden: no kernel symbol is exported from the library.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace bpnn_cpu {

C10_HIDDEN torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                              const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                              int64_t n_species, int64_t cutoff_type, double cutoff_alpha);

C10_HIDDEN torch::Tensor acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                       const torch::Tensor& species, const torch::Tensor& radial,
                                       const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                       int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g);

C10_HIDDEN torch::Tensor acsf_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                  const torch::Tensor& species, const torch::Tensor& radial,
                                  const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                  int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& u);

C10_HIDDEN torch::Tensor acsf_backward_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                           const torch::Tensor& species, const torch::Tensor& radial,
                                           const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                           int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g,
                                           const torch::Tensor& u);

C10_HIDDEN std::vector<torch::Tensor> cell_list(const torch::Tensor& points, int64_t n_centres, double cutoff);

C10_HIDDEN std::vector<torch::Tensor> neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell,
                                                    const torch::Tensor& pbc, double cutoff);

C10_HIDDEN std::vector<torch::Tensor> cell_list_capacity(const torch::Tensor& points, int64_t n_centres,
                                                         double cutoff, int64_t capacity);

}  // namespace bpnn_cpu
