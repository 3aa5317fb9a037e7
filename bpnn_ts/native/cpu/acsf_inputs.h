// The inputs of the CPU ACSF ops, checked and made contiguous: one place for the checks, shared
// by the CPU ops (acsf_cpu.cpp, acsf_jvp_cpu.cpp) and the test-only emulation of the GPU code
// (emulation/emulation_ops.cpp), which must refuse what the CPU ops refuse, with their messages.
// Header-only (inline), so the emulation library compiles it in without linking libbpnn.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>

#include "../common/acsf_plan.h"

namespace bpnn_cpu {

// vectors (P, 3) on the CPU, offsets (B + 1,) from 0 to P, non-decreasing, species (P,) in
// 0 .. n_species - 1 (int64, contiguous), and the plan of the parameter tables.
struct KernelInputs {
  torch::Tensor vectors, offsets, species;
  std::shared_ptr<const bpnn_plan::Plan> plan;
  int64_t n_centres;

  KernelInputs(const torch::Tensor& v, const torch::Tensor& o, const torch::Tensor& s, const torch::Tensor& radial,
               const torch::Tensor& angular, int64_t n_species, int64_t cutoff_type, double cutoff_alpha)
      : vectors(v.contiguous()), offsets(o.to(torch::kInt64).contiguous()), species(s.to(torch::kInt64).contiguous()),
        plan(bpnn_plan::make_plan(radial, angular, n_species, cutoff_type, cutoff_alpha)), n_centres(o.size(0) - 1) {
    TORCH_CHECK(v.device().is_cpu(), "bpnn: the fused ACSF kernel runs on the CPU only");
    TORCH_CHECK(v.dim() == 2 && v.size(1) == 3, "bpnn: vectors must be (P, 3)");
    TORCH_CHECK(o.dim() == 1 && o.size(0) >= 1, "bpnn: offsets must be (B + 1,)");
    TORCH_CHECK(s.dim() == 1 && s.size(0) == v.size(0), "bpnn: species must be (P,)");
    const int64_t* off = offsets.data_ptr<int64_t>();
    TORCH_CHECK(off[0] == 0 && off[n_centres] == v.size(0), "bpnn: offsets must run from 0 to the number of pairs");
    for (int64_t b = 0; b < n_centres; ++b) TORCH_CHECK(off[b] <= off[b + 1], "bpnn: offsets must not decrease");
    const int64_t* sp = species.data_ptr<int64_t>();
    for (int64_t p = 0; p < species.size(0); ++p) {
      TORCH_CHECK(sp[p] >= 0 && sp[p] < n_species, "bpnn: neighbour species out of range: species[", p, "] = ", sp[p],
                  ", expected 0 .. ", n_species - 1);
    }
  }
};

// dE/dG = d_g (B, n_functions) as float64 rows.
inline torch::Tensor weights_of(const torch::Tensor& d_g, const KernelInputs& in, int64_t n_functions) {
  TORCH_CHECK(d_g.dim() == 2 && d_g.size(0) == in.n_centres && d_g.size(1) == n_functions,
              "bpnn: d_g must be (B, n_functions) = (", in.n_centres, ", ", n_functions, "), got ", d_g.sizes());
  return d_g.to(torch::kFloat64).contiguous();
}

// The directions u (P, 3) or (K, P, 3), K = 1 or 2, as (K, P, 3) float64.
inline torch::Tensor directions_of(const torch::Tensor& u, int64_t n_pairs) {
  const bool one = u.dim() == 2 && u.size(0) == n_pairs && u.size(1) == 3;
  const bool stacked = u.dim() == 3 && (u.size(0) == 1 || u.size(0) == 2) && u.size(1) == n_pairs && u.size(2) == 3;
  TORCH_CHECK(one || stacked, "bpnn: u must be (P, 3) or (K, P, 3) with K = 1 or 2 and P = ", n_pairs, ", got ",
              u.sizes());
  return (one ? u.unsqueeze(0) : u).to(torch::kFloat64).contiguous();
}

}  // namespace bpnn_cpu
