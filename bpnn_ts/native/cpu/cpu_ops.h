// The CPU kernels of the bpnn ops, registered for the CPU key in register.cpp (which says what
// each op computes; schemas in op_schemas.h). Defined in acsf_cpu.cpp (acsf, acsf_backward),
// acsf_jvp_cpu.cpp (acsf_jvp, acsf_backward_jvp), neighbors_cpu.cpp (cell_list,
// neighbor_list, cell_list_capacity) and evaluate_cpu.cpp (evaluate). Hidden: no kernel symbol is exported from the library.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "../common/acsf_plan.h"

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

// What the whole evaluation (evaluate_cpu.cpp) does between a centre's symmetry functions and their
// force contraction: the element's networks. Called from several threads at once, each with its
// own centre.
struct CentreNetwork {
  virtual ~CentreNetwork() = default;
  // G (n_functions,) of centre b, rounded to the model's dtype -> writes dE/dG (n_functions,), eV,
  // to d_g (and keeps the centre's energy).
  virtual void slopes(int64_t b, const double* g, double* d_g) = 0;
};

// One element's centres in one pass each: G, then network.slopes, then dE/dr_ij of the centre's
// pairs written to grad (P, 3) in the pairs' order. vectors (P, 3) grouped by centre (offsets
// (n_centres + 1,)), neighbour species (P,), all checked by the caller. Defined for float and double.
template <typename scalar_t>
C10_HIDDEN void acsf_through_network(const bpnn_plan::Plan& plan, const scalar_t* vectors, const int64_t* offsets,
                                     const int64_t* species, int64_t n_centres, int64_t n_functions,
                                     CentreNetwork& network, scalar_t* grad);

C10_HIDDEN std::vector<torch::Tensor> evaluate(
    const torch::Tensor& positions, const torch::Tensor& atomic_numbers, const torch::Tensor& cell,
    const torch::Tensor& pbc, const torch::Tensor& species_of_z, double cutoff, at::TensorList radial,
    at::TensorList angular, at::IntArrayRef n_functions, int64_t cutoff_type, double cutoff_alpha,
    at::TensorList scaling, at::TensorList layers, at::IntArrayRef activations,
    int64_t n_members, double energy_scale, const torch::Tensor& energy_shift, bool compute_virial,
    bool count_extrapolation);

C10_HIDDEN std::vector<torch::Tensor> evaluate_list(
    const torch::Tensor& positions, const torch::Tensor& atomic_numbers, const torch::Tensor& cell,
    const torch::Tensor& pairs, const torch::Tensor& shifts, int64_t n_local, const torch::Tensor& species_of_z,
    double cutoff, at::TensorList radial, at::TensorList angular, at::IntArrayRef n_functions, int64_t cutoff_type,
    double cutoff_alpha, at::TensorList scaling, at::TensorList layers, at::IntArrayRef activations,
    int64_t n_members, double energy_scale, const torch::Tensor& energy_shift, bool compute_virial,
    bool count_extrapolation);

C10_HIDDEN std::vector<torch::Tensor> cell_list(const torch::Tensor& points, int64_t n_centres, double cutoff);

C10_HIDDEN std::vector<torch::Tensor> neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell,
                                                    const torch::Tensor& pbc, double cutoff);

C10_HIDDEN std::vector<torch::Tensor> cell_list_capacity(const torch::Tensor& points, int64_t n_centres,
                                                         double cutoff, int64_t capacity);

}  // namespace bpnn_cpu
