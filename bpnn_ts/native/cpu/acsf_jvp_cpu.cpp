// CPU kernels of bpnn::acsf_jvp and bpnn::acsf_backward_jvp: the CPU kernels of acsf and
// acsf_backward (acsf_centre.h) run on the dual numbers of dual.h, seeded with the directions u,
// one dual level per direction (Dual<double> for one, nested for two), computed in float64 and
// returned in the dtype of `vectors`. A translation unit of its own: the duals' instantiations are
// the slowest part of the build, compiled beside acsf_cpu.cpp. Registered in register.cpp.
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "../common/dual.h"
#include "acsf_centre.h"
#include "acsf_inputs.h"
#include "centre_loop.h"
#include "cpu_ops.h"

namespace bpnn_acsf {
namespace {
// One direction: as the plain steps (training's backward runs it); two: nested, one build.
using Dual1 = bpnn_dual::Dual<double>;
using Dual2 = bpnn_dual::Dual<Dual1>;
BPNN_CENTRE_STEPS(BPNN_CLONES, Dual1)
BPNN_CENTRE_STEPS(, Dual2)
}  // namespace
}  // namespace bpnn_acsf

namespace bpnn_cpu {
namespace {

using bpnn_acsf::Scratch;
using bpnn_dual::Dual;

// Tangent pointers of the (K, P, 3) directions, outermost dual first.
std::vector<const double*> tangents_of(const torch::Tensor& directions) {
  std::vector<const double*> tangents;
  for (int64_t k = 0; k < directions.size(0); ++k) {
    tangents.push_back(directions.data_ptr<double>() + k * directions.stride(0));
  }
  return tangents;
}

// out (B, F) = the mixed derivative of G along every direction (real: Dual of depth K).
template <typename real>
void jvp_into(const KernelInputs& in, int64_t n_functions, const torch::Tensor& directions, double* out) {
  const std::vector<const double*> tangents = tangents_of(directions);
  for_each_centre<real, double>(in, n_functions, tangents.data(), [&](int64_t b, int64_t, Scratch<real>& w) {
    bpnn_acsf::forward_centre_any(*in.plan, w);
    for (int64_t f = 0; f < n_functions; ++f) out[b * n_functions + f] = bpnn_dual::mixed(w.g[f]);
  });
}

// out (P, 3) = the mixed derivative of sum_f weight_f dG_f/dr along every direction.
template <typename real>
void backward_jvp_into(const KernelInputs& in, int64_t n_functions, const double* weight,
                       const torch::Tensor& directions, double* out) {
  const std::vector<const double*> tangents = tangents_of(directions);
  for_each_centre<real, double>(in, n_functions, tangents.data(), [&](int64_t b, int64_t p0, Scratch<real>& w) {
    bpnn_acsf::backward_centre_any(*in.plan, weight + b * n_functions, w);
    for (int64_t slot = 0; slot < w.m; ++slot) {
      double* row = out + 3 * (p0 + w.order[slot]);
      row[0] = bpnn_dual::mixed(w.gx[slot]);
      row[1] = bpnn_dual::mixed(w.gy[slot]);
      row[2] = bpnn_dual::mixed(w.gz[slot]);
    }
  });
}

}  // namespace

torch::Tensor acsf_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                       const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                       int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& u) {
  const KernelInputs in(vectors.to(torch::kFloat64), offsets, species, radial, angular, n_species, cutoff_type,
                        cutoff_alpha);
  auto directions = directions_of(u, in.vectors.size(0));
  auto out = torch::zeros({in.n_centres, n_functions}, in.vectors.options());
  if (directions.size(0) == 1) {
    jvp_into<Dual<double>>(in, n_functions, directions, out.data_ptr<double>());
  } else {
    jvp_into<Dual<Dual<double>>>(in, n_functions, directions, out.data_ptr<double>());
  }
  return out.to(vectors.scalar_type());
}

torch::Tensor acsf_backward_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                const torch::Tensor& species, const torch::Tensor& radial, const torch::Tensor& angular,
                                int64_t n_functions, int64_t n_species, int64_t cutoff_type, double cutoff_alpha,
                                const torch::Tensor& d_g, const torch::Tensor& u) {
  const KernelInputs in(vectors.to(torch::kFloat64), offsets, species, radial, angular, n_species, cutoff_type,
                        cutoff_alpha);
  auto weights = weights_of(d_g, in, n_functions);
  auto directions = directions_of(u, in.vectors.size(0));
  auto out = torch::zeros({in.vectors.size(0), 3}, in.vectors.options());
  if (directions.size(0) == 1) {
    backward_jvp_into<Dual<double>>(in, n_functions, weights.data_ptr<double>(), directions, out.data_ptr<double>());
  } else {
    backward_jvp_into<Dual<Dual<double>>>(in, n_functions, weights.data_ptr<double>(), directions,
                                          out.data_ptr<double>());
  }
  return out.to(vectors.scalar_type());
}

}  // namespace bpnn_cpu
