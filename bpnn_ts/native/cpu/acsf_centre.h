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
#include "acsf_sets.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BPNN_NO_CLONES)
#define BPNN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BPNN_CLONES
#endif

namespace bpnn_acsf {
namespace {

// G of one centre (the scratch is loaded) into w.g. With `remember`, the rows' costly terms are
// held for backward_centre<real, true> on the same scratch (acsf_load.h: RowMode).
template <typename real, bool remember = false>
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
  collect_rows(plan, w);
  int64_t held = 0;
  if (remember) {
    for (const RowRange& row : w.rows) held += row.n;
    w.hold(held, plan);
    held = 0;
  }
  for (RowBatch& batch : w.batches) {
    const ElementPair& pair = plan.pairs[batch.key];
    batch.base = held;
    const int64_t n = remember ? load_batch<real, true, RowMode::remember>(plan, pair, w, batch)
                               : load_batch<real, false>(plan, pair, w, batch);
    held += n;
    add_batch_functions(pair, w, n);
  }
}

// dE/dr_ij of one centre (the scratch is loaded) into w.gx, w.gy, w.gz from dE/dG = weight. With
// `recall`, right after forward_centre<real, true> on this scratch: its rows and held terms.
template <typename real, bool recall = false>
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
  if (!recall) collect_rows(plan, w);
  for (RowBatch& batch : w.batches) {
    const ElementPair& pair = plan.pairs[batch.key];
    const int64_t n = recall ? load_batch<real, true, RowMode::recall>(plan, pair, w, batch)
                             : load_batch<real, true>(plan, pair, w, batch);
    real* __restrict s_cos = w.s_cos.data();
    real* __restrict s_j = w.s_j.data();
    real* __restrict s_k = w.s_k.data();
    real* __restrict s_jk = w.s_jk.data();
    std::fill(s_cos, s_cos + n, real(0.0));
    std::fill(s_j, s_j + n, real(0.0));
    std::fill(s_k, s_k + n, real(0.0));
    std::fill(s_jk, s_jk + n, real(0.0));
    add_batch_slopes(pair, weight, w, n);
    const real* __restrict cos = w.cos.data();
    const real* __restrict dx = w.dx.data();
    const real* __restrict dy = w.dy.data();
    const real* __restrict dz = w.dz.data();
    const real* __restrict jx = w.kept.end(kJx);
    const real* __restrict jy = w.kept.end(kJy);
    const real* __restrict jz = w.kept.end(kJz);
    const real* __restrict j_inv_r = w.kept.end(kJInvR);
    const real* __restrict kx = w.kept.end(kKx);
    const real* __restrict ky = w.kept.end(kKy);
    const real* __restrict kz = w.kept.end(kKz);
    const real* __restrict k_inv_r = w.kept.end(kKInvR);
    const real* __restrict inv_rjk = w.kept.inv_rjk;
    const real* __restrict rjk = w.kept.rjk;
    real* __restrict cjx = w.cjx.data();
    real* __restrict cjy = w.cjy.data();
    real* __restrict cjz = w.cjz.data();
    real* __restrict cgx = w.cgx.data();
    real* __restrict cgy = w.cgy.data();
    real* __restrict cgz = w.cgz.data();
#pragma omp simd
    for (int64_t u = 0; u < n; ++u) {
      const bpnn_terms::Triplet<real> t{dx[u], dy[u], dz[u], rjk[u], inv_rjk[u], cos[u]};
      const bpnn_terms::TripletGradient<real> d = bpnn_terms::triplet_gradient(
          s_cos[u], s_j[u], s_k[u], s_jk[u], jx[u], jy[u], jz[u], j_inv_r[u], kx[u], ky[u], kz[u], k_inv_r[u], t);
      cjx[u] = d.jx;
      cjy[u] = d.jy;
      cjz[u] = d.jz;
      cgx[u] = d.kx;
      cgy[u] = d.ky;
      cgz[u] = d.kz;
    }
    // The pairs come in runs of one j (a row): its sums are kept in registers for the run (a
    // store to gx[j] per pair would make each pair wait for the last one's store).
    const int32_t* __restrict slot = w.kept.slot;
    const int32_t* __restrict j_slot = w.kept.j_slot;
    int32_t j = n > 0 ? j_slot[0] : 0;
    real sx = real(0.0), sy = real(0.0), sz = real(0.0);
    for (int64_t u = 0; u < n; ++u) {
      if (j_slot[u] != j) {
        gx[j] += sx;
        gy[j] += sy;
        gz[j] += sz;
        j = j_slot[u];
        sx = sy = sz = real(0.0);
      }
      sx += cjx[u];
      sy += cjy[u];
      sz += cjz[u];
      gx[slot[u]] += cgx[u];
      gy[slot[u]] += cgy[u];
      gz[slot[u]] += cgz[u];
    }
    if (n > 0) {
      gx[j] += sx;
      gy[j] += sy;
      gz[j] += sz;
    }
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

// forward_centre<real, true> and backward_centre<real, true> (float and double only; the
// whole evaluation of acsf_cpu.cpp: a centre's backward pass right after its forward pass).
#define BPNN_REMEMBERING_STEPS(clones, real)                                                               \
  clones void forward_remembering_any(const Plan& plan, Scratch<real>& w) { forward_centre<real, true>(plan, w); } \
  clones void backward_recalling_any(const Plan& plan, const double* weight, Scratch<real>& w) {           \
    backward_centre<real, true>(plan, weight, w);                                                         \
  }
