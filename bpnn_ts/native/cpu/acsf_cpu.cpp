// CPU kernels of bpnn::acsf (G (B, F)) and bpnn::acsf_backward (dE/dr_ij (P, 3) from dE/dG), in
// float32 and float64, and the per-centre pass of bpnn::evaluate (acsf_through_network): inputs
// checked (acsf_inputs.h), centres over threads (centre_loop.h), the maths of one centre
// acsf_centre.h, results written in the dtype of `vectors`. Registered in register.cpp, which
// says what the ops compute.
#include <ATen/Dispatch.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "acsf_centre.h"
#include "acsf_inputs.h"
#include "centre_loop.h"
#include "cpu_ops.h"

namespace bpnn_acsf {
namespace {
BPNN_CENTRE_STEPS(BPNN_CLONES, float)
BPNN_CENTRE_STEPS(BPNN_CLONES, double)
BPNN_REMEMBERING_STEPS(BPNN_CLONES, float)
BPNN_REMEMBERING_STEPS(BPNN_CLONES, double)
}  // namespace
}  // namespace bpnn_acsf

namespace bpnn_cpu {

using bpnn_acsf::Scratch;

torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                   const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                   int64_t n_species, int64_t cutoff_type, double cutoff_alpha) {
  const KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  auto out = torch::zeros({in.n_centres, n_functions}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf", [&] {
    scalar_t* g = out.data_ptr<scalar_t>();
    for_each_centre<scalar_t, scalar_t>(in, n_functions, nullptr, [&](int64_t b, int64_t, Scratch<scalar_t>& w) {
      bpnn_acsf::forward_centre_any(*in.plan, w);
      for (int64_t f = 0; f < n_functions; ++f) g[b * n_functions + f] = static_cast<scalar_t>(w.g[f]);
    });
  });
  return out;
}

torch::Tensor acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                            const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                            int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g) {
  const KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  auto weights = weights_of(d_g, in, n_functions);
  const double* weight = weights.data_ptr<double>();
  auto out = torch::zeros({in.vectors.size(0), 3}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf_backward", [&] {
    scalar_t* grad = out.data_ptr<scalar_t>();
    for_each_centre<scalar_t, scalar_t>(in, n_functions, nullptr, [&](int64_t b, int64_t p0, Scratch<scalar_t>& w) {
      bpnn_acsf::backward_centre_any(*in.plan, weight + b * n_functions, w);
      for (int64_t slot = 0; slot < w.m; ++slot) {
        scalar_t* row = grad + 3 * (p0 + w.order[slot]);
        row[0] = static_cast<scalar_t>(w.gx[slot]);
        row[1] = static_cast<scalar_t>(w.gy[slot]);
        row[2] = static_cast<scalar_t>(w.gz[slot]);
      }
    });
  });
  return out;
}

template <typename scalar_t>
void acsf_through_network(const bpnn_plan::Plan& plan, const scalar_t* vectors, const int64_t* offsets,
                          const int64_t* species, int64_t n_centres, int64_t n_functions, CentreNetwork& network,
                          scalar_t* grad) {
  for_each_centre_of<scalar_t, scalar_t>(
      plan, vectors, offsets, species, n_centres, n_functions, nullptr, [&](int64_t b, int64_t p0, Scratch<scalar_t>& w) {
        thread_local std::vector<double> g, d_g;
        g.resize(n_functions);
        d_g.resize(n_functions);
        bpnn_acsf::forward_remembering_any(plan, w);
        for (int64_t f = 0; f < n_functions; ++f) g[f] = static_cast<double>(static_cast<scalar_t>(w.g[f]));
        network.slopes(b, g.data(), d_g.data());
        bpnn_acsf::backward_recalling_any(plan, d_g.data(), w);
        for (int64_t slot = 0; slot < w.m; ++slot) {
          scalar_t* row = grad + 3 * (p0 + w.order[slot]);
          row[0] = static_cast<scalar_t>(w.gx[slot]);
          row[1] = static_cast<scalar_t>(w.gy[slot]);
          row[2] = static_cast<scalar_t>(w.gz[slot]);
        }
      });
}

template void acsf_through_network<float>(const bpnn_plan::Plan&, const float*, const int64_t*, const int64_t*,
                                          int64_t, int64_t, CentreNetwork&, float*);
template void acsf_through_network<double>(const bpnn_plan::Plan&, const double*, const int64_t*, const int64_t*,
                                           int64_t, int64_t, CentreNetwork&, double*);

}  // namespace bpnn_cpu
