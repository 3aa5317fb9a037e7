// Per-centre maths of the fused ACSF kernels (n2p2 symmetry-function types 2, 3, 9): G of one
// centre, and dE/dr_ij from dE/dG, on that centre's Scratch. No tensors and no threads (those are
// acsf_ops.cpp and thread_pool.h). Centre i, neighbours j and k, r_j = r_ij = R_j - R_i,
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
// Layout (structure of arrays): the centre's pairs sorted by neighbour element into slots, one
// array per quantity (x, y, z, r, 1/r, ...). The pair factors exp(-eta (r - r_s)^2) f_c(r) are
// computed once per distinct (eta, r_s, r_c) ("group") and reused by every angular function of
// that group, as n2p2 groups its functions. A row is one j and the k of one element (k > j for
// the same element); load_row compacts it to the k that can contribute (all if the element pair
// has wide functions, else r_jk below its largest narrow r_c), so the loops over k are branch-free
// and vectorize (acsf_math.h). The entry points (*_any, at the end) are compiled for AVX2 + FMA
// and for plain x86-64 and picked at run time (target_clones). Nothing in them may throw but an
// allocation failure (inputs are checked before, in acsf_ops.cpp): GCC (seen with 12.2) compiles
// calls to target_clones functions as if they could not, so an exception leaving one ends the
// process instead of reaching the caller.
//
// Derivatives: the same templates run on the dual numbers of dual.h (the ops acsf_jvp and
// acsf_backward_jvp). With the vectors r + eps u as input, forward_centre's tangent is dG[u] and
// backward_centre's the Hessian-vector product sum_f w_f d^2G_f/dr dr . u; nested duals give the
// next order. One copy of the maths, so a change to it changes its derivatives with it.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "acsf_math.h"
#include "acsf_plan.h"
#include "acsf_terms.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BPNN_NO_CLONES)
#define BPNN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BPNN_CLONES
#endif

namespace bpnn_acsf {
// Internal linkage: one translation unit (acsf_ops.cpp) includes this, and no kernel symbol is
// exported from the libraries it is compiled into.
namespace {

using bpnn_plan::Angular;
using bpnn_plan::ElementPair;
using bpnn_plan::Group;
using bpnn_plan::Plan;
using bpnn_plan::Radial;
using bpnn_plan::Shape;

// The rows of a centre: each j and the k of one element that form unordered pairs {j, k}
// with angular functions (same element: k > j), k = k0 .. k0 + n - 1.
struct RowRange {
  int64_t key, j, k0, n;
};

// Per-centre scratch. Slots are the centre's pairs sorted by neighbour element
// (block[s] .. block[s + 1] - 1 hold element s); "[n][m]" arrays are n rows of m slots.
template <typename real>
struct Scratch {
  int64_t m = 0;
  std::vector<real> in;                  // [m][3] the centre's pair vectors, unsorted
  std::vector<real> x, y, z, r, inv_r;   // [m]
  std::vector<real> fc, dfc;             // [cutoffs][m]  f_c(r), df_c/dr
  std::vector<real> gr, dgr;             // [groups][m]   exp(-eta (r - r_s)^2) f_c(r) and d/dr
  std::vector<int64_t> order, block, next; // order[slot]: pair (within the centre) in that slot
  // One row of neighbour pairs (j, k0 .. k0 + L - 1):
  std::vector<real> r2;                             // [m] |r_jk|^2 of the whole row
  std::vector<int32_t> slot;                          // [m] slot of each kept k
  std::vector<real> kx, ky, kz, k_inv_r;            // [m] of the kept k
  std::vector<real> dx, dy, dz, rjk, inv_rjk, cos;  // [m] r_k - r_j, |r_jk|, 1/|r_jk|, cos
  std::vector<real> gk, dgk;                        // [groups][m] group factors of the kept k
  std::vector<real> fcjk, dfcjk;                    // [cutoffs][m]
  std::vector<real> gjk, dgjk;                      // [groups][m]  narrow factors of r_jk
  std::vector<real> value, slope;                   // [shapes][m]  (1 + lambda cos)^zeta, d/dcos
  std::vector<real> s_cos, s_j, s_k, s_jk;          // [m] sums over functions (backward)
  std::vector<real> cgx, cgy, cgz;                  // [m] dE/dr_ik of the row (backward)
  std::vector<real> gx, gy, gz;                     // [m] dE/dr_ij (backward)
  std::vector<typename bpnn_dual::Sum<real>::type> g;  // [functions] G of the centre (forward)
  std::vector<RowRange> rows;

  int64_t capacity = 0;  // slots the arrays hold

  void resize(int64_t slots, const Plan& plan, size_t n_shapes) {
    m = capacity = slots;
    const size_t n_cut = plan.cutoffs.size(), n_groups = plan.groups.size();
    for (auto* v : {&x, &y, &z, &r, &inv_r, &r2, &kx, &ky, &kz, &k_inv_r, &cgx, &cgy, &cgz, &dx, &dy, &dz, &rjk, &inv_rjk, &cos, &s_cos, &s_j, &s_k, &s_jk, &gx,
                    &gy, &gz}) {
      v->resize(m);
    }
    in.resize(3 * m);
    for (auto* v : {&fc, &dfc, &fcjk, &dfcjk}) v->resize(n_cut * m);
    for (auto* v : {&gr, &dgr, &gk, &dgk, &gjk, &dgjk}) v->resize(n_groups * m);
    slot.resize(m);
    value.resize(n_shapes * m);
    slope.resize(n_shapes * m);
    order.resize(m);
  }
};

size_t max_shapes(const Plan& plan) {
  size_t n = 1;
  for (const ElementPair& pair : plan.pairs) n = std::max(n, pair.shapes.size());
  return n;
}

// out[t] = exp(-eta (r[t] - r_s)^2) f[t] of a group and, with `derivatives`, d_out[t] its
// r-derivative (f, df: the group's cutoff function and slope at r[t]); `masked`: 0 where keep[t] is 0.
template <typename real, bool derivatives, bool masked>
BPNN_INLINE void group_factors(const Group& group, const real* __restrict r, const real* __restrict keep, int64_t n,
                               const real* __restrict f, const real* __restrict df, real* __restrict out,
                               real* __restrict d_out) {
  const real eta = real(group.eta), r_s = real(group.r_s);
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) {
    const real shifted = r[t] - r_s;
    real gauss = bpnn_terms::gaussian(eta, shifted);
    if (masked) gauss = keep[t] != real(0) ? gauss : real(0);
    out[t] = gauss * f[t];
    if (derivatives) d_out[t] = gauss * bpnn_terms::gaussian_bracket(eta, shifted, f[t], df[t]);
  }
}

// Sorts the centre's pairs (w.in, species) into slots; distances, cutoffs and group factors.
template <typename real>
BPNN_INLINE void load_centre(const Plan& plan, const int64_t* species, Scratch<real>& w) {
  const int64_t m = w.m;
  w.block.assign(plan.n_species + 1, 0);
  for (int64_t a = 0; a < m; ++a) ++w.block[species[a] + 1];  // species checked by the caller
  for (int64_t e = 0; e < plan.n_species; ++e) w.block[e + 1] += w.block[e];
  w.next.assign(w.block.begin(), w.block.end() - 1);
  for (int64_t a = 0; a < m; ++a) w.order[w.next[species[a]]++] = a;
  real* __restrict x = w.x.data();
  real* __restrict y = w.y.data();
  real* __restrict z = w.z.data();
  real* __restrict r = w.r.data();
  real* __restrict inv_r = w.inv_r.data();
  for (int64_t slot = 0; slot < m; ++slot) {
    const real* v = &w.in[3 * w.order[slot]];
    x[slot] = v[0];
    y[slot] = v[1];
    z[slot] = v[2];
  }
#pragma omp simd
  for (int64_t a = 0; a < m; ++a) {
    r[a] = bpnn_math::sqrt(x[a] * x[a] + y[a] * y[a] + z[a] * z[a]);
    inv_r[a] = real(1.0) / r[a];
  }
  for (size_t c = 0; c < plan.cutoffs.size(); ++c) {
    bpnn_math::cutoff_array(plan.kind, r, m, real(plan.cutoffs[c]), real(plan.alpha), &w.fc[c * m], &w.dfc[c * m]);
  }
  for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const int cut = plan.groups[gi].cut;
    group_factors<real, true, false>(plan.groups[gi], r, nullptr, m, &w.fc[cut * m], &w.dfc[cut * m],
                                     &w.gr[gi * m], &w.dgr[gi * m]);
  }
}

// value[t] = (1 + lambda cos[t])^zeta and slope[t] = d value / d(1 + lambda cos) (0 where the
// base is not positive) for integer zeta; `zeta` > 0 is a compile-time zeta (unrolled), 0 a
// runtime one (repeated multiplication, one vectorized pass per factor).
template <int zeta, typename real>
BPNN_INLINE void shape_powers(const Shape& shape, const real* __restrict cos, int64_t n, real* __restrict value,
                              real* __restrict slope) {
  const real lambda = real(shape.lambda), zeta_value = real(shape.zeta);
  if (zeta > 0) {
#pragma omp simd
    for (int64_t t = 0; t < n; ++t) bpnn_terms::angular_power<zeta>(real(1.0) + lambda * cos[t], value[t], slope[t]);
    return;
  }
  // One vectorized pass per factor: the products of bpnn_terms::angular_power(raw, zeta, ..).
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) slope[t] = real(1.0);
  for (int e = 1; e < shape.integer_zeta; ++e) {
#pragma omp simd
    for (int64_t t = 0; t < n; ++t) {
      const real raw = real(1.0) + lambda * cos[t];
      slope[t] *= raw > real(0.0) ? raw : real(0.0);
    }
  }
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) {
    const real raw = real(1.0) + lambda * cos[t];
    value[t] = raw > real(0.0) ? slope[t] * raw : real(0.0);
    slope[t] = raw > real(0.0) ? zeta_value * slope[t] : real(0.0);
  }
}

// Fills `rows` for the loaded centre.
template <typename real>
void collect_rows(const Plan& plan, const Scratch<real>& w, std::vector<RowRange>& rows) {
  rows.clear();
  const int64_t n_species = plan.n_species;
  for (int64_t sa = 0; sa < n_species; ++sa) {
    for (int64_t sb = sa; sb < n_species; ++sb) {
      const int64_t key = sa * n_species + sb;
      if (plan.pairs[key].functions.empty()) continue;
      for (int64_t j = w.block[sa]; j < w.block[sa + 1]; ++j) {
        const int64_t k0 = sa == sb ? j + 1 : w.block[sb];
        const int64_t n = w.block[sb + 1] - k0;
        if (n > 0) rows.push_back({key, j, k0, n});
      }
    }
  }
}

// Loads the row j, k = k0 .. k0 + n - 1 into the compact row arrays, keeping only the k that
// can contribute (all if the element pair has wide functions, else r_jk below the largest
// narrow r_c; about half of them for the n2p2 water potential): their slots, r_jk vectors,
// |r_jk| (0 where j and k coincide), cos, the group factors of k gathered, the narrow factors
// exp(-eta (r_jk - r_s)^2) f_c(r_jk) and the shapes (1 + lambda cos)^zeta. Returns their count.
template <typename real, bool derivatives>
BPNN_INLINE int64_t load_row(const Plan& plan, const ElementPair& pair, Scratch<real>& w, int64_t j, int64_t k0, int64_t n) {
  const int64_t m = w.m;
  const real xj = w.x[j], yj = w.y[j], zj = w.z[j], inv_rj = w.inv_r[j];
  const real* __restrict x = w.x.data();
  const real* __restrict y = w.y.data();
  const real* __restrict z = w.z.data();
  const real* __restrict inv_r = w.inv_r.data();
  real* __restrict r2 = w.r2.data();
  const real limit2 = pair.has_wide ? real(std::numeric_limits<double>::infinity()) : real(pair.narrow_cutoff2);
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) {
    const real dx = x[k0 + t] - xj, dy = y[k0 + t] - yj, dz = z[k0 + t] - zj;
    r2[t] = dx * dx + dy * dy + dz * dz;
  }
  int32_t* __restrict slot = w.slot.data();
  int64_t nc = 0;
  for (int64_t t = 0; t < n; ++t) {
    slot[nc] = static_cast<int32_t>(k0 + t);
    nc += r2[t] < limit2 ? 1 : 0;
  }
  real* __restrict kx = w.kx.data();
  real* __restrict ky = w.ky.data();
  real* __restrict kz = w.kz.data();
  real* __restrict k_inv_r = w.k_inv_r.data();
  real* __restrict dx = w.dx.data();
  real* __restrict dy = w.dy.data();
  real* __restrict dz = w.dz.data();
  real* __restrict rjk = w.rjk.data();
  real* __restrict inv_rjk = w.inv_rjk.data();
  real* __restrict cos = w.cos.data();
#pragma omp simd
  for (int64_t u = 0; u < nc; ++u) {
    const int32_t k = slot[u];
    kx[u] = x[k];
    ky[u] = y[k];
    kz[u] = z[k];
    k_inv_r[u] = inv_r[k];
    const bpnn_terms::Triplet<real> t = bpnn_terms::triplet(xj, yj, zj, inv_rj, kx[u], ky[u], kz[u], k_inv_r[u]);
    dx[u] = t.dx;
    dy[u] = t.dy;
    dz[u] = t.dz;
    rjk[u] = t.rjk;
    inv_rjk[u] = t.inv_rjk;
    cos[u] = t.cos;
  }
  for (int gi : pair.groups) {
    const real* __restrict gr = &w.gr[gi * m];
    const real* __restrict dgr = &w.dgr[gi * m];
    real* __restrict gk = &w.gk[gi * m];
    real* __restrict dgk = &w.dgk[gi * m];
#pragma omp simd
    for (int64_t u = 0; u < nc; ++u) gk[u] = gr[slot[u]];
    if (derivatives) {
#pragma omp simd
      for (int64_t u = 0; u < nc; ++u) dgk[u] = dgr[slot[u]];
    }
  }
  for (int c : pair.narrow_cuts) {
    bpnn_math::cutoff_array(plan.kind, rjk, nc, real(plan.cutoffs[c]), real(plan.alpha), &w.fcjk[c * m], &w.dfcjk[c * m]);
  }
  for (int gi : pair.narrow_groups) {  // 0 where j and k coincide (inv_rjk = 0)
    const int cut = plan.groups[gi].cut;
    group_factors<real, derivatives, true>(plan.groups[gi], rjk, inv_rjk, nc, &w.fcjk[cut * m], &w.dfcjk[cut * m],
                                           &w.gjk[gi * m], &w.dgjk[gi * m]);
  }
  for (size_t si = 0; si < pair.shapes.size(); ++si) {
    const Shape& shape = pair.shapes[si];
    real* __restrict value = &w.value[si * m];
    real* __restrict slope = &w.slope[si * m];
    if (shape.integer_zeta == 1) {
      shape_powers<1, real>(shape, cos, nc, value, slope);
    } else if (shape.integer_zeta == 2) {
      shape_powers<2, real>(shape, cos, nc, value, slope);
    } else if (shape.integer_zeta == 4) {
      shape_powers<4, real>(shape, cos, nc, value, slope);
    } else if (shape.integer_zeta > 0) {
      shape_powers<0, real>(shape, cos, nc, value, slope);
    } else {
      for (int64_t u = 0; u < nc; ++u) {
        bpnn_terms::angular_power_real(real(1.0) + real(shape.lambda) * cos[u], real(shape.zeta), value[u], slope[u]);
      }
    }
  }
  return nc;
}

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

// The per-centre steps, compiled for each instruction set (target_clones) and precision.
BPNN_CLONES void load_centre_any(const Plan& plan, const int64_t* species, Scratch<double>& w) {
  load_centre(plan, species, w);
}
BPNN_CLONES void load_centre_any(const Plan& plan, const int64_t* species, Scratch<float>& w) {
  load_centre(plan, species, w);
}
BPNN_CLONES void forward_centre_any(const Plan& plan, Scratch<double>& w) { forward_centre(plan, w); }
BPNN_CLONES void forward_centre_any(const Plan& plan, Scratch<float>& w) { forward_centre(plan, w); }
BPNN_CLONES void backward_centre_any(const Plan& plan, const double* weight, Scratch<double>& w) {
  backward_centre(plan, weight, w);
}
BPNN_CLONES void backward_centre_any(const Plan& plan, const double* weight, Scratch<float>& w) {
  backward_centre(plan, weight, w);
}

// The same steps on duals (derivatives: the ops acsf_jvp and acsf_backward_jvp), for one
// direction (Dual, as the others: training's backward runs it) or two (nested; one build).
using Dual1 = bpnn_dual::Dual<double>;
using Dual2 = bpnn_dual::Dual<Dual1>;
BPNN_CLONES void load_centre_any(const Plan& plan, const int64_t* species, Scratch<Dual1>& w) {
  load_centre(plan, species, w);
}
BPNN_CLONES void forward_centre_any(const Plan& plan, Scratch<Dual1>& w) { forward_centre(plan, w); }
BPNN_CLONES void backward_centre_any(const Plan& plan, const double* weight, Scratch<Dual1>& w) {
  backward_centre(plan, weight, w);
}
void load_centre_any(const Plan& plan, const int64_t* species, Scratch<Dual2>& w) { load_centre(plan, species, w); }
void forward_centre_any(const Plan& plan, Scratch<Dual2>& w) { forward_centre(plan, w); }
void backward_centre_any(const Plan& plan, const double* weight, Scratch<Dual2>& w) {
  backward_centre(plan, weight, w);
}

}  // namespace
}  // namespace bpnn_acsf
