// Torch binding of the fused CPU kernels: torch.ops.bpnn.acsf (symmetry functions, n2p2 types
// 2, 3, 9), acsf_backward (their derivatives contracted with dE/dG), their directional
// derivatives acsf_jvp and acsf_backward_jvp, cell_list (pair search, cell_list.h) and
// neighbor_list (the whole neighbour search, periodic images included, neighbor_list.h). Here:
// input checks, contiguity, dtype dispatch, centres over threads (thread_pool.h), outputs, and the
// op registration; the maths of one centre is acsf_centre.h (run on the dual numbers of dual.h
// for the derivatives), the parameter tables acsf_plan.h, autograd acsf_autograd.h. This file is
// compiled into the C++ loader library (bpnn_run and the LAMMPS plugin) and, for Python, by
// torch.utils.cpp_extension (bpnn_ts/native/__init__.py).
// The op schemas are part of the model-file contract (export/CONTRACT.md): do not change them.
// CUDA tensors: acsf_cuda.cu registers the same four ACSF ops for the CUDA key where the library
// is built with CUDA (-DBPNN_WITH_CUDA); their per-thread maths is acsf_device.h, which the
// test-only ops bpnn_emulation::* at the end of this file run on the host.
//
// Inputs (shared by the ACSF ops):
//   vectors (P, 3)  pair vectors r_ij = R_j - R_i, Å, grouped by centre
//   offsets (B + 1) pairs of centre b are offsets[b] .. offsets[b + 1] - 1
//   species (P,)    species index of each neighbour j
//   radial, angular the functions' parameters (acsf_plan.h names their columns)
// and, by op (G_b = G of centre b, a function of its own pairs' vectors only):
//   acsf                        -> G (B, F)
//   acsf_backward(d_g (B, F))   -> sum_f d_g_bf dG_bf/dr_p (P, 3), p a pair of centre b
//   acsf_jvp(u)                 -> dG_b[u] = sum_p dG_b/dr_p . u_p (B, F) for u (P, 3) or (1, P, 3);
//                                  d^2G_b[u_0, u_1] for u (2, P, 3)
//   acsf_backward_jvp(d_g, u)   -> acsf_backward differentiated along u: sum_f d_g_bf
//                                  d^2G_bf/dr_p dr . u (P, 3), the Hessian-vector product; the
//                                  third derivative contracted with u_0 and u_1 for u (2, P, 3)
// The derivative ops compute in float64 and return the dtype of `vectors`.
#include <torch/library.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "acsf_autograd.h"
#include "acsf_centre.h"
#include "acsf_device.h"
#include "acsf_device_ops.h"
#include "acsf_device_plan.h"
#include "acsf_plan.h"
#include "cell_list.h"
#include "dual.h"
#include "neighbor_list.h"
#include "thread_pool.h"

namespace {

using bpnn_acsf::Scratch;
using bpnn_dual::Dual;
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
  // torch's intra-op threads. Vectors of dtype scalar_t; for dual `real`, moved along
  // `tangents` ((P, 3) float64 each, one per dual level, dual.h's Seed).
  template <typename real, typename scalar_t, typename Centre>
  void for_each_centre(int64_t n_functions, const double* const* tangents, Centre&& centre) const {
    const scalar_t* v = vectors.data_ptr<scalar_t>();
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    const size_t n_shapes = bpnn_acsf::max_shapes(plan);
    bpnn_threads::run_in_chunks<Scratch<real>>(n_centres, [&](int64_t begin, int64_t end, Scratch<real>& w) {
      if (static_cast<int64_t>(w.g.size()) != n_functions) w.g.resize(n_functions);
      for (int64_t b = begin; b < end; ++b) {
        const int64_t p0 = off[b], m = off[b + 1] - p0;
        if (m > w.capacity) w.resize(m, plan, n_shapes);
        w.m = m;
        for (int64_t i = 0; i < 3 * m; ++i) {
          w.in[i] = bpnn_dual::Seed<real>::at(static_cast<double>(v[3 * p0 + i]), tangents, 3 * p0 + i);
        }
        bpnn_acsf::load_centre_any(plan, sp + p0, w);
        centre(b, p0, w);
      }
    });
  }
};

// dE/dG = d_g (B, n_functions) as float64 rows.
torch::Tensor weights_of(const torch::Tensor& d_g, const KernelInputs& in, int64_t n_functions) {
  TORCH_CHECK(d_g.dim() == 2 && d_g.size(0) == in.n_centres && d_g.size(1) == n_functions,
              "bpnn: d_g must be (B, n_functions) = (", in.n_centres, ", ", n_functions, "), got ", d_g.sizes());
  return d_g.to(torch::kFloat64).contiguous();
}

// The directions u (P, 3) or (K, P, 3), K = 1 or 2, as (K, P, 3) float64.
torch::Tensor directions_of(const torch::Tensor& u, int64_t n_pairs) {
  const bool one = u.dim() == 2 && u.size(0) == n_pairs && u.size(1) == 3;
  const bool stacked = u.dim() == 3 && (u.size(0) == 1 || u.size(0) == 2) && u.size(1) == n_pairs && u.size(2) == 3;
  TORCH_CHECK(one || stacked, "bpnn: u must be (P, 3) or (K, P, 3) with K = 1 or 2 and P = ", n_pairs, ", got ",
              u.sizes());
  return (one ? u.unsqueeze(0) : u).to(torch::kFloat64).contiguous();
}

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
  in.for_each_centre<real, double>(n_functions, tangents.data(), [&](int64_t b, int64_t, Scratch<real>& w) {
    bpnn_acsf::forward_centre_any(in.plan, w);
    for (int64_t f = 0; f < n_functions; ++f) out[b * n_functions + f] = bpnn_dual::mixed(w.g[f]);
  });
}

// out (P, 3) = the mixed derivative of sum_f weight_f dG_f/dr along every direction.
template <typename real>
void backward_jvp_into(const KernelInputs& in, int64_t n_functions, const double* weight,
                       const torch::Tensor& directions, double* out) {
  const std::vector<const double*> tangents = tangents_of(directions);
  in.for_each_centre<real, double>(n_functions, tangents.data(), [&](int64_t b, int64_t p0, Scratch<real>& w) {
    bpnn_acsf::backward_centre_any(in.plan, weight + b * n_functions, w);
    for (int64_t slot = 0; slot < w.m; ++slot) {
      double* row = out + 3 * (p0 + w.order[slot]);
      row[0] = bpnn_dual::mixed(w.gx[slot]);
      row[1] = bpnn_dual::mixed(w.gy[slot]);
      row[2] = bpnn_dual::mixed(w.gz[slot]);
    }
  });
}

torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                   const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                   int64_t n_species, int64_t cutoff_type, double cutoff_alpha) {
  KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  auto out = torch::zeros({in.n_centres, n_functions}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf", [&] {
    scalar_t* g = out.data_ptr<scalar_t>();
    in.for_each_centre<scalar_t, scalar_t>(n_functions, nullptr, [&](int64_t b, int64_t, Scratch<scalar_t>& w) {
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
  auto weights = weights_of(d_g, in, n_functions);
  const double* weight = weights.data_ptr<double>();
  auto out = torch::zeros({in.vectors.size(0), 3}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf_backward", [&] {
    scalar_t* grad = out.data_ptr<scalar_t>();
    in.for_each_centre<scalar_t, scalar_t>(n_functions, nullptr, [&](int64_t b, int64_t p0, Scratch<scalar_t>& w) {
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

torch::Tensor acsf_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                       const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                       int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& u) {
  KernelInputs in(vectors.to(torch::kFloat64), offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
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
  KernelInputs in(vectors.to(torch::kFloat64), offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
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

// Whether this library holds the CUDA kernels (built where a CUDA toolkit and a CUDA torch were
// found); the model files ask this before routing CUDA tensors to the fused ops.
bool cuda_kernels() {
#ifdef BPNN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

// The GPU kernels' passes on the host (acsf_device_ops.h's Backend), one loop iteration per
// would-be CUDA thread, on the flat plan a launch would copy: the test-only ops bpnn_emulation::*.
struct Emulation {
  static bpnn_device::Tables tables(const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_species,
                                    int64_t cutoff_type, double cutoff_alpha, const torch::Device&) {
    bpnn_device::FlatPlan flat = bpnn_device::flatten(
        bpnn_plan::make_plan(radial, angular, n_species, cutoff_type, cutoff_alpha));
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

// The four ACSF ops' schemas, defined in the bpnn library and (test only) in bpnn_emulation.
void define_acsf_ops(torch::Library& m) {
  m.def("acsf(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, int n_functions, "
        "int n_species, int cutoff_type, float cutoff_alpha) -> Tensor");
  m.def("acsf_backward(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
        "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor d_g) -> Tensor");
  m.def("acsf_jvp(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
        "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor u) -> Tensor");
  m.def("acsf_backward_jvp(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
        "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor d_g, Tensor u) -> Tensor");
}

}  // namespace

TORCH_LIBRARY(bpnn, m) {
  m.def("cuda_kernels() -> bool", &cuda_kernels);
  m.def("cell_list(Tensor points, int n_centres, float cutoff) -> Tensor[]");
  m.def("neighbor_list(Tensor positions, Tensor cell, Tensor pbc, float cutoff) -> Tensor[]");
  define_acsf_ops(m);
}

TORCH_LIBRARY_IMPL(bpnn, CPU, m) {
  m.impl("acsf", acsf);
  m.impl("acsf_backward", acsf_backward);
  m.impl("acsf_jvp", acsf_jvp);
  m.impl("acsf_backward_jvp", acsf_backward_jvp);
  m.impl("cell_list", bpnn_cells::cell_list);
  m.impl("neighbor_list", bpnn_cells::neighbor_list);
}

TORCH_LIBRARY_IMPL(bpnn, Autograd, m) {
  m.impl("acsf", bpnn_autograd::acsf);
  m.impl("acsf_backward", bpnn_autograd::acsf_backward);
  m.impl("acsf_jvp", bpnn_autograd::acsf_jvp);
  m.impl("acsf_backward_jvp", bpnn_autograd::acsf_backward_jvp);
}

// ---- The device neighbour search (cell_list_device.h) run on the host, one loop iteration per
// would-be CUDA thread (neighbor_list_device.h: HostRunner); the CUDA kernels are in
// neighbor_list_cuda.cu. Here: bpnn::cell_list_capacity's CPU kernel, and the test-only library
// bpnn_emulation (cell_list, neighbor_list: the schemas of the bpnn ops; CPU tensors only), with
// which tests/test_cuda_neighbors.py checks the CUDA code's list against the CPU ops without a GPU. ----
#include "neighbor_list_device.h"

namespace {

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

std::vector<torch::Tensor> cell_list_capacity(const torch::Tensor& points, int64_t n_centres, double cutoff,
                                              int64_t capacity) {
  TORCH_CHECK(points.device().is_cpu() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on the CPU");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  TORCH_CHECK(n_centres >= 0 && n_centres <= points.size(0), "bpnn: n_centres out of range");
  TORCH_CHECK(capacity >= 0, "bpnn: capacity must be >= 0, got ", capacity);
  return bpnn_device::cell_list_capacity(bpnn_device::HostRunner{}, points, n_centres, cutoff, capacity);
}

}  // namespace

// cell_list with outputs of a given size, for CUDA graphs (neighbor_list_device.h says what it
// returns; the CUDA kernel is in neighbor_list_cuda.cu). Not called by model files.
TORCH_LIBRARY_FRAGMENT(bpnn, m) {
  m.def("cell_list_capacity(Tensor points, int n_centres, float cutoff, int capacity) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(bpnn, CPU, m) { m.impl("cell_list_capacity", cell_list_capacity); }

TORCH_LIBRARY_FRAGMENT(bpnn_emulation, m) {
  m.def("cell_list(Tensor points, int n_centres, float cutoff) -> Tensor[]", &emulated_cell_list);
  m.def("neighbor_list(Tensor positions, Tensor cell, Tensor pbc, float cutoff) -> Tensor[]", &emulated_neighbor_list);
}

// TEST ONLY: the CUDA kernels' per-thread code (acsf_device.h) run on the host, one loop iteration
// per would-be thread, so that tests on machines without a GPU check it against the CPU kernels
// (tests/test_cuda_kernels.py). Same schemas as the bpnn ACSF ops; CPU tensors; no autograd; slow
// (one thread). Not part of the model-file contract: no model calls them.
TORCH_LIBRARY(bpnn_emulation, m) {
  define_acsf_ops(m);
}

TORCH_LIBRARY_IMPL(bpnn_emulation, CPU, m) {
  m.impl("acsf", emulated_acsf);
  m.impl("acsf_backward", emulated_acsf_backward);
  m.impl("acsf_jvp", emulated_acsf_jvp);
  m.impl("acsf_backward_jvp", emulated_acsf_backward_jvp);
}
