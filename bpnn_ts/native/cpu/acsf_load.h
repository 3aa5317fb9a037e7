// Loading a centre into its Scratch (acsf_scratch.h) for the CPU ACSF kernels (acsf_centre.h):
// the pairs sorted into slots with their distances, cutoff functions and group factors
// (load_centre), and the rows of neighbour pairs {j, k} of the angular functions (collect_rows,
// load_row).
//
// Layout (structure of arrays): the centre's pairs sorted by neighbour element into slots, one
// array per quantity (x, y, z, r, 1/r, ...). The pair factors exp(-eta (r - r_s)^2) f_c(r) are
// computed once per distinct (eta, r_s, r_c) ("group") and reused by every angular function of
// that group, as n2p2 groups its functions. A row is one j and the k of one element (k > j for
// the same element); load_row compacts it to the k that can contribute (all if the element pair
// has wide functions, else r_jk below its largest narrow r_c), so the loops over k are branch-free
// and vectorize (acsf_math.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../common/acsf_math.h"
#include "../common/acsf_plan.h"
#include "../common/acsf_terms.h"
#include "acsf_scratch.h"

namespace bpnn_acsf {
namespace {

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

}  // namespace
}  // namespace bpnn_acsf
