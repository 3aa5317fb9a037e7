// The torch side of the GPU kernels (acsf_device.h), shared by the CUDA launchers (acsf_cuda.cu)
// and their host emulation (the test-only ops bpnn_emulation::*, emulation/emulation_ops.cpp):
// checks of shapes only (reading data would wait for the device), the plan, the per-pair
// workspace and the outputs as torch tensors on the input's device, and the two passes, run by a
// Backend:
//   Backend::tables(radial, angular, n_species, cutoff_type, cutoff_alpha, device) -> Tables
//   Backend::pairs<real, scalar_t>(plan, n_pairs, vectors, directions, work)        one per pair
//   Backend::forward<real>(plan, n_centres, offsets, species, work, n_functions, g)   one per centre
//   Backend::backward<real>(plan, n_centres, offsets, species, work, n_functions, weight, out)
// The ops' arguments and results are those of the CPU ops (register.cpp). Outputs of dual
// passes are (..., 2^K) float64 blocks, one per dual component, of which the last (the mixed
// derivative along every direction) is returned.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstdint>

#include "../common/dual.h"
#include "acsf_device.h"

namespace bpnn_device {

// The flat plan on the device, and the tensor that holds its values (alive while it is used).
struct Tables {
  DevicePlan plan;
  torch::Tensor values;
};

// vectors (P, 3), offsets (B + 1,), species (P,): shapes checked; int64, contiguous, on vectors' device.
struct Inputs {
  torch::Tensor vectors, offsets, species;
  int64_t n_pairs, n_centres;

  Inputs(const torch::Tensor& v, const torch::Tensor& o, const torch::Tensor& s) {
    TORCH_CHECK(v.dim() == 2 && v.size(1) == 3, "bpnn: vectors must be (P, 3)");
    TORCH_CHECK(o.dim() == 1 && o.size(0) >= 1, "bpnn: offsets must be (B + 1,)");
    TORCH_CHECK(s.dim() == 1 && s.size(0) == v.size(0), "bpnn: species must be (P,)");
    vectors = v.contiguous();
    offsets = o.to(v.device(), torch::kInt64).contiguous();
    species = s.to(v.device(), torch::kInt64).contiguous();
    n_pairs = v.size(0);
    n_centres = o.size(0) - 1;
  }
};

template <class Backend>
struct DeviceOps {
  using Dual1 = bpnn_dual::Dual<double>;
  using Dual2 = bpnn_dual::Dual<Dual1>;

  // Workspace of the pair pass: n_pairs rows of plan.stride() values of `real`.
  template <typename real>
  static torch::Tensor workspace(const DevicePlan& plan, int64_t n_pairs, const torch::Device& device) {
    const int64_t bytes = std::max<int64_t>(1, n_pairs * plan.stride() * static_cast<int64_t>(sizeof(real)));
    return torch::empty({bytes}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
  }

  template <typename real>
  static real* as(const torch::Tensor& t) {
    return reinterpret_cast<real*>(t.data_ptr());
  }

  static torch::Tensor weights_of(const torch::Tensor& d_g, const Inputs& in, int64_t n_functions) {
    TORCH_CHECK(d_g.dim() == 2 && d_g.size(0) == in.n_centres && d_g.size(1) == n_functions,
                "bpnn: d_g must be (B, n_functions) = (", in.n_centres, ", ", n_functions, "), got ", d_g.sizes());
    return d_g.to(in.vectors.device(), torch::kFloat64).contiguous();
  }

  // u (P, 3) or (K, P, 3), K = 1 or 2, as (K, P, 3) float64.
  static torch::Tensor directions_of(const torch::Tensor& u, const Inputs& in) {
    const int64_t n = in.n_pairs;
    const bool one = u.dim() == 2 && u.size(0) == n && u.size(1) == 3;
    const bool stacked = u.dim() == 3 && (u.size(0) == 1 || u.size(0) == 2) && u.size(1) == n && u.size(2) == 3;
    TORCH_CHECK(one || stacked, "bpnn: u must be (P, 3) or (K, P, 3) with K = 1 or 2 and P = ", n, ", got ",
                u.sizes());
    return (one ? u.unsqueeze(0) : u).to(in.vectors.device(), torch::kFloat64).contiguous();
  }

  // G (B, F) summed into g (B, F[, 2^K]) float64 for scalar type `real`.
  template <typename real, typename scalar_t>
  static void forward_into(const Tables& t, const Inputs& in, const scalar_t* vectors, const double* directions,
                           int64_t n_functions, torch::Tensor& g) {
    if (in.n_pairs == 0 || in.n_centres == 0) return;
    const torch::Tensor work = workspace<real>(t.plan, in.n_pairs, in.vectors.device());
    Backend::template pairs<real, scalar_t>(t.plan, in.n_pairs, vectors, directions, as<real>(work));
    Backend::template forward<real>(t.plan, in.n_centres, in.offsets.data_ptr<int64_t>(),
                                    in.species.data_ptr<int64_t>(), as<real>(work), n_functions,
                                    as<typename bpnn_dual::Sum<real>::type>(g));
  }

  // sum_f weight_f dG_f/dr (P, 3) added into out (P, 3[, 2^K]) of `real`.
  template <typename real, typename scalar_t>
  static void backward_into(const Tables& t, const Inputs& in, const scalar_t* vectors, const double* directions,
                            int64_t n_functions, const torch::Tensor& weights, torch::Tensor& out) {
    if (in.n_pairs == 0 || in.n_centres == 0) return;
    const torch::Tensor work = workspace<real>(t.plan, in.n_pairs, in.vectors.device());
    Backend::template pairs<real, scalar_t>(t.plan, in.n_pairs, vectors, directions, as<real>(work));
    Backend::template backward<real>(t.plan, in.n_centres, in.offsets.data_ptr<int64_t>(),
                                     in.species.data_ptr<int64_t>(), as<real>(work), n_functions,
                                     weights.data_ptr<double>(), as<real>(out));
  }

  static torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                            const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                            int64_t n_species, int64_t cutoff_type, double cutoff_alpha) {
    const Inputs in(vectors, offsets, species);
    const Tables t = Backend::tables(radial, angular, n_species, cutoff_type, cutoff_alpha, in.vectors.device());
    auto g = torch::zeros({in.n_centres, n_functions}, in.vectors.options().dtype(torch::kFloat64));
    AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf_device", [&] {
      forward_into<scalar_t, scalar_t>(t, in, in.vectors.data_ptr<scalar_t>(), nullptr, n_functions, g);
    });
    return g.to(vectors.scalar_type());
  }

  static torch::Tensor acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                     const torch::Tensor& species, const torch::Tensor& radial,
                                     const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                     int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g) {
    const Inputs in(vectors, offsets, species);
    const torch::Tensor weights = weights_of(d_g, in, n_functions);
    const Tables t = Backend::tables(radial, angular, n_species, cutoff_type, cutoff_alpha, in.vectors.device());
    auto out = torch::zeros({in.n_pairs, 3}, in.vectors.options());
    AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf_backward_device", [&] {
      backward_into<scalar_t, scalar_t>(t, in, in.vectors.data_ptr<scalar_t>(), nullptr, n_functions, weights, out);
    });
    return out;
  }

  static torch::Tensor acsf_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                const torch::Tensor& species, const torch::Tensor& radial,
                                const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& u) {
    const Inputs in(vectors.to(torch::kFloat64), offsets, species);
    const torch::Tensor directions = directions_of(u, in);
    const Tables t = Backend::tables(radial, angular, n_species, cutoff_type, cutoff_alpha, in.vectors.device());
    const int64_t k = directions.size(0);
    auto g = torch::zeros({in.n_centres, n_functions, int64_t(1) << k}, in.vectors.options());
    const double* v = in.vectors.data_ptr<double>();
    if (k == 1) {
      forward_into<Dual1, double>(t, in, v, directions.data_ptr<double>(), n_functions, g);
    } else {
      forward_into<Dual2, double>(t, in, v, directions.data_ptr<double>(), n_functions, g);
    }
    return g.select(2, (int64_t(1) << k) - 1).contiguous().to(vectors.scalar_type());
  }

  static torch::Tensor acsf_backward_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                         const torch::Tensor& species, const torch::Tensor& radial,
                                         const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                                         int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g,
                                         const torch::Tensor& u) {
    const Inputs in(vectors.to(torch::kFloat64), offsets, species);
    const torch::Tensor weights = weights_of(d_g, in, n_functions);
    const torch::Tensor directions = directions_of(u, in);
    const Tables t = Backend::tables(radial, angular, n_species, cutoff_type, cutoff_alpha, in.vectors.device());
    const int64_t k = directions.size(0);
    auto out = torch::zeros({in.n_pairs, 3, int64_t(1) << k}, in.vectors.options());
    const double* v = in.vectors.data_ptr<double>();
    if (k == 1) {
      backward_into<Dual1, double>(t, in, v, directions.data_ptr<double>(), n_functions, weights, out);
    } else {
      backward_into<Dual2, double>(t, in, v, directions.data_ptr<double>(), n_functions, weights, out);
    }
    return out.select(2, (int64_t(1) << k) - 1).contiguous().to(vectors.scalar_type());
  }
};

}  // namespace bpnn_device
