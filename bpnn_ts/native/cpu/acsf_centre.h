// Per-centre maths of the fused ACSF kernels (n2p2 symmetry-function types 2, 3, 9): G of one
// centre, and dE/dr_ij from dE/dG, on that centre's Scratch. No tensors and no threads (those are
// acsf_cpu.cpp and thread_pool.h). Centre i, neighbours j and k, r_j = r_ij = R_j - R_i,
// r_jk = r_k - r_j, cos = cos theta_ijk = r_j . r_k / (|r_j| |r_k|):
//   G2 (radial)              = sum_j exp(-eta (r_ij - r_s)^2) f_c(r_ij)
//   G4 (narrow, n2p2 type 3) = 2^(1 - zeta) sum_{j<k} (1 + lambda cos)^zeta
//                              exp(-eta [(r_ij - r_s)^2 + (r_ik - r_s)^2 + (r_jk - r_s)^2])
//                              f_c(r_ij) f_c(r_ik) f_c(r_jk)
//   G5 (wide, n2p2 type 9)   = the same without the r_jk terms
// j and k run over the neighbours of the function's element(s), each unordered pair {j, k} once;
// (1 + lambda cos)^zeta is 0 where 1 + lambda cos <= 0. Definitions: bpnn_ts/model/descriptors/params.py.
//
// Backward, with w_f = dE/dG_f:
//   radial:  dE/dr_j = sum_f w_f dG_f/d|r_j| r_j / |r_j|,
//            dG/dr = exp(-eta (r - r_s)^2) (f_c'(r) - 2 eta (r - r_s) f_c(r))
//   angular: per pair {j, k}, the functions' terms T_f summed into s_cos = sum_f w_f dT_f/dcos,
//            s_j = sum_f w_f dT_f/d|r_j|, s_k (the same for |r_k|), s_jk (for |r_jk|, narrow only):
//            dE/dr_j += s_cos dcos/dr_j + s_j r_j / |r_j| + s_jk d|r_jk|/dr_j
//            dE/dr_k += s_cos dcos/dr_k + s_k r_k / |r_k| + s_jk d|r_jk|/dr_k
//            dcos/dr_j = r_k / (|r_j||r_k|) - cos r_j / |r_j|^2 (and j <-> k),
//            d|r_jk|/dr_j = -(r_k - r_j) / |r_jk| = -d|r_jk|/dr_k.
//
// The scratch and its loading (layout, rows) are acsf_scratch.h and acsf_load.h. The entry points
// (*_any, BPNN_CENTRE_STEPS below) are compiled for AVX2 + FMA and for plain x86-64 and picked at
// run time (target_clones). Nothing in them may throw but an allocation failure (inputs are
// checked before, acsf_inputs.h): GCC (seen with 12.2) compiles calls to target_clones functions
// as if they could not, so an exception leaving one ends the process instead of reaching the caller.
//
// Derivatives: the same templates run on the dual numbers of dual.h (the ops acsf_jvp and
// acsf_backward_jvp). With the vectors r + eps u as input, forward_centre's tangent is dG[u] and
// backward_centre's the Hessian-vector product sum_f w_f d^2G_f/dr dr . u; nested duals give the
// next order. One copy of the maths, so a change to it changes its derivatives with it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../common/acsf_plan.h"
#include "../common/acsf_terms.h"
#include "../common/dual.h"
#include "acsf_load.h"
#include "acsf_scratch.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BPNN_NO_CLONES)
#define BPNN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BPNN_CLONES
#endif

namespace bpnn_acsf {
namespace {

// G of one centre (the scratch is loaded) into w.g.
template <typename real>
BPNN_INLINE void forward_centre(const Plan& plan, Scratch<real>& w) {
  const int64_t m = w.m;
  std::fill(w.g.begin(), w.g.end(), typename bpnn_dual::Sum<real>::type(0.0));
  for (const Radial& fn : plan.radial) {
    const real eta = real(fn.eta), r_s = real(fn.r_s);
    const real* __restrict r = w.r.data();
    const real* __restrict f = &w.fc[fn.cut * m];
    real sum = real(0.0);
#pragma omp simd reduction(+ : sum)
    for (int64_t a = w.block[fn.species]; a < w.block[fn.species + 1]; ++a) {
      const real shifted = r[a] - r_s;
      sum += bpnn_terms::gaussian(eta, shifted) * f[a];
    }
    w.g[fn.column] += sum;
  }
  collect_rows(plan, w, w.rows);
  for (const RowRange& row : w.rows) {
    const ElementPair& pair = plan.pairs[row.key];
    const int64_t n = load_row<real, false>(plan, pair, w, row.j, row.k0, row.n);
    for (const Angular& fn : pair.functions) {
      const real* __restrict value = &w.value[fn.shape * m];
      const real* __restrict gk = &w.gk[fn.group * m];
      real sum = real(0.0);
      if (fn.narrow) {
        const real* __restrict jk = &w.gjk[fn.group * m];
#pragma omp simd reduction(+ : sum)
        for (int64_t u = 0; u < n; ++u) sum += value[u] * gk[u] * jk[u];
      } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t u = 0; u < n; ++u) sum += value[u] * gk[u];
      }
      w.g[fn.column] += fn.prefactor * w.gr[fn.group * m + row.j] * sum;
    }
  }
}

// dE/dr_ij of one centre (the scratch is loaded) into w.gx, w.gy, w.gz from dE/dG = weight.
template <typename real>
BPNN_INLINE void backward_centre(const Plan& plan, const double* weight, Scratch<real>& w) {
  const int64_t m = w.m;
  real* __restrict gx = w.gx.data();
  real* __restrict gy = w.gy.data();
  real* __restrict gz = w.gz.data();
  const real* __restrict x = w.x.data();
  const real* __restrict y = w.y.data();
  const real* __restrict z = w.z.data();
  const real* __restrict inv_r = w.inv_r.data();
  std::fill(gx, gx + m, real(0.0));
  std::fill(gy, gy + m, real(0.0));
  std::fill(gz, gz + m, real(0.0));
  // Radial: dE/dr_j = sum_f w_f dG_f/d|r_j| r_j / |r_j|.
  for (const Radial& fn : plan.radial) {
    const real eta = real(fn.eta), r_s = real(fn.r_s);
    const real wf = weight[fn.column];
    if (wf == real(0.0)) continue;
    const real* __restrict r = w.r.data();
    const real* __restrict f = &w.fc[fn.cut * m];
    const real* __restrict df = &w.dfc[fn.cut * m];
#pragma omp simd
    for (int64_t a = w.block[fn.species]; a < w.block[fn.species + 1]; ++a) {
      const real shifted = r[a] - r_s;
      const real gauss = bpnn_terms::gaussian(eta, shifted);
      const real d_r = wf * gauss * bpnn_terms::gaussian_bracket(eta, shifted, f[a], df[a]) * inv_r[a];
      gx[a] += d_r * x[a];
      gy[a] += d_r * y[a];
      gz[a] += d_r * z[a];
    }
  }
  // Angular: per pair {j, k}, the functions' dT/dcos, dT/d|r_j|, dT/d|r_k|, dT/d|r_jk| summed,
  // then chained through d cos/d r_j = r_k / (|r_j||r_k|) - cos r_j / |r_j|^2 (and j <-> k)
  // and d|r_jk|/d r_j = -r_jk / |r_jk|.
  collect_rows(plan, w, w.rows);
  for (const RowRange& row : w.rows) {
    const int64_t j = row.j;
    const ElementPair& pair = plan.pairs[row.key];
    const int64_t n = load_row<real, true>(plan, pair, w, j, row.k0, row.n);
    real* __restrict s_cos = w.s_cos.data();
    real* __restrict s_j = w.s_j.data();
    real* __restrict s_k = w.s_k.data();
    real* __restrict s_jk = w.s_jk.data();
    std::fill(s_cos, s_cos + n, real(0.0));
    std::fill(s_j, s_j + n, real(0.0));
    std::fill(s_k, s_k + n, real(0.0));
    std::fill(s_jk, s_jk + n, real(0.0));
    for (const Angular& fn : pair.functions) {
      const real c = weight[fn.column] * fn.prefactor;
      if (c == real(0.0)) continue;
      const real lambda = pair.shapes[fn.shape].lambda;
      const real gj = w.gr[fn.group * m + j], dgj = w.dgr[fn.group * m + j];
      const real* __restrict value = &w.value[fn.shape * m];
      const real* __restrict slope = &w.slope[fn.shape * m];
      const real* __restrict gk = &w.gk[fn.group * m];
      const real* __restrict dgk = &w.dgk[fn.group * m];
      if (fn.narrow) {
        const real* __restrict jk = &w.gjk[fn.group * m];
        const real* __restrict djk = &w.dgjk[fn.group * m];
#pragma omp simd
        for (int64_t u = 0; u < n; ++u) {
          bpnn_terms::add_angular_slopes<true>(c, lambda, value[u], slope[u], gj, dgj, gk[u], dgk[u], jk[u], djk[u],
                                               s_cos[u], s_j[u], s_k[u], s_jk[u]);
        }
      } else {
#pragma omp simd
        for (int64_t u = 0; u < n; ++u) {
          bpnn_terms::add_angular_slopes<false>(c, lambda, value[u], slope[u], gj, dgj, gk[u], dgk[u], real(0.0),
                                                real(0.0), s_cos[u], s_j[u], s_k[u], s_jk[u]);
        }
      }
    }
    const real xj = x[j], yj = y[j], zj = z[j], inv_rj = inv_r[j];
    const real* __restrict cos = w.cos.data();
    const real* __restrict dx = w.dx.data();
    const real* __restrict dy = w.dy.data();
    const real* __restrict dz = w.dz.data();
    const real* __restrict kx = w.kx.data();
    const real* __restrict ky = w.ky.data();
    const real* __restrict kz = w.kz.data();
    const real* __restrict k_inv_r = w.k_inv_r.data();
    const real* __restrict inv_rjk = w.inv_rjk.data();
    const real* __restrict rjk = w.rjk.data();
    real* __restrict cgx = w.cgx.data();
    real* __restrict cgy = w.cgy.data();
    real* __restrict cgz = w.cgz.data();
    real gxj = real(0.0), gyj = real(0.0), gzj = real(0.0);
#pragma omp simd reduction(+ : gxj, gyj, gzj)
    for (int64_t u = 0; u < n; ++u) {
      const bpnn_terms::Triplet<real> t{dx[u], dy[u], dz[u], rjk[u], inv_rjk[u], cos[u]};
      const bpnn_terms::TripletGradient<real> d = bpnn_terms::triplet_gradient(
          s_cos[u], s_j[u], s_k[u], s_jk[u], xj, yj, zj, inv_rj, kx[u], ky[u], kz[u], k_inv_r[u], t);
      gxj += d.jx;
      gyj += d.jy;
      gzj += d.jz;
      cgx[u] = d.kx;
      cgy[u] = d.ky;
      cgz[u] = d.kz;
    }
    const int32_t* __restrict slot = w.slot.data();
    for (int64_t u = 0; u < n; ++u) {
      gx[slot[u]] += cgx[u];
      gy[slot[u]] += cgy[u];
      gz[slot[u]] += cgz[u];
    }
    gx[j] += gxj;
    gy[j] += gyj;
    gz[j] += gzj;
  }
}

}  // namespace
}  // namespace bpnn_acsf

// The per-centre steps on Scratch<real> (load_centre_any, forward_centre_any, backward_centre_any),
// with `clones` BPNN_CLONES (each instruction set) or nothing (one build). Each translation unit
// defines those of the scalar types it runs, inside namespace bpnn_acsf { namespace { ... } }, and
// calls them unqualified (found through Scratch's namespace): acsf_cpu.cpp float and double,
// acsf_jvp_cpu.cpp the duals.
#define BPNN_CENTRE_STEPS(clones, real)                                                          \
  clones void load_centre_any(const Plan& plan, const int64_t* species, Scratch<real>& w) {      \
    load_centre(plan, species, w);                                                               \
  }                                                                                              \
  clones void forward_centre_any(const Plan& plan, Scratch<real>& w) { forward_centre(plan, w); } \
  clones void backward_centre_any(const Plan& plan, const double* weight, Scratch<real>& w) {    \
    backward_centre(plan, weight, w);                                                            \
  }
