// Torch binding of the fused CPU kernels: torch.ops.bpnn.acsf (symmetry functions, n2p2 types
// 2, 3, 9), acsf_backward (their derivatives contracted with dE/dG) and cell_list (pair search,
// cell_list.h). Here: input checks, contiguity, dtype dispatch, centres over threads
// (thread_pool.h), outputs, and the op registration; the maths of one centre is acsf_centre.h,
// the parameter tables acsf_plan.h. This file is compiled into the C++ loader library (bpnn_run
// and the LAMMPS plugin) and, for Python, by torch.utils.cpp_extension (bpnn_ts/native/__init__.py).
// The op schemas are part of the model-file contract (export/CONTRACT.md): do not change them.
//
// Inputs (shared by both ACSF ops):
//   vectors (P, 3)  pair vectors r_ij = R_j - R_i, Å, grouped by centre
//   offsets (B + 1) pairs of centre b are offsets[b] .. offsets[b + 1] - 1
//   species (P,)    species index of each neighbour j
//   radial, angular the functions' parameters (acsf_plan.h names their columns)
#include <torch/library.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "acsf_centre.h"
#include "acsf_plan.h"
#include "cell_list.h"
#include "thread_pool.h"

namespace {

using bpnn_acsf::Scratch;
using bpnn_plan::Plan;

// The inputs both ACSF ops share, checked and made contiguous.
struct KernelInputs {
  torch::Tensor vectors, offsets, species;
  Plan plan;
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

  // Calls centre(b, p0, w) for every centre b (first pair p0) with its scratch w loaded, over
  // torch's intra-op threads.
  template <typename scalar_t, typename Centre>
  void for_each_centre(int64_t n_functions, Centre&& centre) const {
    const scalar_t* v = vectors.data_ptr<scalar_t>();
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    const size_t n_shapes = bpnn_acsf::max_shapes(plan);
    bpnn_threads::run_in_chunks<Scratch<scalar_t>>(n_centres, [&](int64_t begin, int64_t end, Scratch<scalar_t>& w) {
      if (static_cast<int64_t>(w.g.size()) != n_functions) w.g.resize(n_functions);
      for (int64_t b = begin; b < end; ++b) {
        const int64_t p0 = off[b], m = off[b + 1] - p0;
        if (m > w.capacity) w.resize(m, plan, n_shapes);
        w.m = m;
        for (int64_t i = 0; i < 3 * m; ++i) w.in[i] = static_cast<double>(v[3 * p0 + i]);
        bpnn_acsf::load_centre_any(plan, sp + p0, w);
        centre(b, p0, w);
      }
    });
  }
};

torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                   const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                   int64_t n_species, int64_t cutoff_type, double cutoff_alpha) {
  KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  auto out = torch::zeros({in.n_centres, n_functions}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf", [&] {
    scalar_t* g = out.data_ptr<scalar_t>();
    in.for_each_centre<scalar_t>(n_functions, [&](int64_t b, int64_t, Scratch<scalar_t>& w) {
      bpnn_acsf::forward_centre_any(in.plan, w);
      for (int64_t f = 0; f < n_functions; ++f) g[b * n_functions + f] = static_cast<scalar_t>(w.g[f]);
    });
  });
  return out;
}

torch::Tensor acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                            const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                            int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g) {
  KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  TORCH_CHECK(d_g.dim() == 2 && d_g.size(0) == in.n_centres && d_g.size(1) == n_functions,
              "bpnn: d_g must be (B, n_functions)");
  auto weights = d_g.to(torch::kFloat64).contiguous();
  const double* weight = weights.data_ptr<double>();
  auto out = torch::zeros({in.vectors.size(0), 3}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf_backward", [&] {
    scalar_t* grad = out.data_ptr<scalar_t>();
    in.for_each_centre<scalar_t>(n_functions, [&](int64_t b, int64_t p0, Scratch<scalar_t>& w) {
      bpnn_acsf::backward_centre_any(in.plan, weight + b * n_functions, w);
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

}  // namespace

TORCH_LIBRARY(bpnn, m) {
  m.def("cell_list(Tensor points, int n_centres, float cutoff) -> Tensor[]");
  m.def("acsf(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, int n_functions, "
        "int n_species, int cutoff_type, float cutoff_alpha) -> Tensor");
  m.def("acsf_backward(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
        "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor d_g) -> Tensor");
}

TORCH_LIBRARY_IMPL(bpnn, CPU, m) {
  m.impl("acsf", acsf);
  m.impl("acsf_backward", acsf_backward);
  m.impl("cell_list", bpnn_cells::cell_list);
}
