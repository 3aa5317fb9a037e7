// Loading a centre into its Scratch (acsf_scratch.h) for the CPU ACSF kernels (acsf_centre.h):
// the pairs sorted into slots with their distances, cutoff functions and group factors
// (load_centre), and the rows of neighbour pairs {j, k} of the angular functions, in batches of
// rows (collect_rows, load_batch).
//
// Layout (structure of arrays): the centre's pairs sorted by neighbour element into slots, one
// array per quantity (x, y, z, r, 1/r, ...). The pair factors exp(-eta (r - r_s)^2) f_c(r) are
// computed once per distinct (eta, r_s, r_c) ("group") and reused by every angular function of
// that group, as n2p2 groups its functions. A row is one j and the k of one element (k > j for
// the same element); load_batch compacts a batch of rows to the pairs {j, k} that can contribute
// (all if the element pair has wide functions, else r_jk below its largest narrow r_c), so the
// loops over them are branch-free, long (hundreds of pairs, not the tens of one row) and vectorize
// (acsf_math.h).
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

// Fills w.rows and w.batches for the loaded centre: consecutive rows of one element pair form a
// batch of at least kBatchCandidates candidates (or what is left), loaded and summed as one.
template <typename real>
void collect_rows(const Plan& plan, Scratch<real>& w) {
  w.rows.clear();
  w.batches.clear();
  const int64_t n_species = plan.n_species;
  for (int64_t sa = 0; sa < n_species; ++sa) {
    for (int64_t sb = sa; sb < n_species; ++sb) {
      const int64_t key = sa * n_species + sb;
      if (plan.pairs[key].functions.empty()) continue;
      int64_t candidates = 0;
      for (int64_t j = w.block[sa]; j < w.block[sa + 1]; ++j) {
        const int64_t k0 = sa == sb ? j + 1 : w.block[sb];
        const int64_t n = w.block[sb + 1] - k0;
        if (n <= 0) continue;
        if (candidates == 0) w.batches.push_back({key, static_cast<int64_t>(w.rows.size()), 0});
        w.rows.push_back({j, k0, n});
        w.batches.back().last = static_cast<int64_t>(w.rows.size());
        candidates += n;
        if (candidates >= kBatchCandidates) candidates = 0;
      }
    }
  }
}

// The shapes (1 + lambda cos)^zeta and their slopes of the batch's first nc entries.
template <typename real>
BPNN_INLINE void load_shapes(const ElementPair& pair, Scratch<real>& w, int64_t nc) {
  const int64_t span = w.span;
  const real* __restrict cos = w.cos.data();
  for (size_t si = 0; si < pair.shapes.size(); ++si) {
    const Shape& shape = pair.shapes[si];
    real* __restrict value = &w.value[si * span];
    real* __restrict slope = &w.slope[si * span];
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
}

// The factors of `groups` of j and k (and, with `derivatives`, their slopes) of the batch's first
// nc entries, gathered from their slots.
template <typename real, bool derivatives>
BPNN_INLINE void gather_groups(const std::vector<int>& groups, Scratch<real>& w, int64_t nc) {
  const int64_t m = w.m, span = w.span;
  const int32_t* __restrict slot = w.kept.slot;
  const int32_t* __restrict j_slot = w.kept.j_slot;
  for (int gi : groups) {
    const real* __restrict gr = &w.gr[gi * m];
    const real* __restrict dgr = &w.dgr[gi * m];
    real* __restrict gj = &w.gj[gi * span];
    real* __restrict gk = &w.gk[gi * span];
#pragma omp simd
    for (int64_t u = 0; u < nc; ++u) {
      gj[u] = gr[j_slot[u]];
      gk[u] = gr[slot[u]];
    }
    if (derivatives) {
      real* __restrict dgj = &w.dgj[gi * span];
      real* __restrict dgk = &w.dgk[gi * span];
#pragma omp simd
      for (int64_t u = 0; u < nc; ++u) {
        dgj[u] = dgr[j_slot[u]];
        dgk[u] = dgr[slot[u]];
      }
    }
  }
}

// The geometry of the batch's first nc pairs: the pair ends r_j, 1/|r_j|, r_k, 1/|r_k| gathered
// from the slots into w.kept.ends, r_jk = r_k - r_j, |r_jk|, 1/|r_jk| (into w.kept) and cos; or,
// `recalled` (the batch holds its ends and distances), r_jk and cos from the held ends.
template <typename real, bool recalled>
BPNN_INLINE void batch_geometry(Scratch<real>& w, int64_t nc) {
  const int32_t* __restrict slot = w.kept.slot;
  const int32_t* __restrict j_slot = w.kept.j_slot;
  const real* __restrict x = w.x.data();
  const real* __restrict y = w.y.data();
  const real* __restrict z = w.z.data();
  const real* __restrict inv_r = w.inv_r.data();
  real* __restrict jx = w.kept.end(kJx);
  real* __restrict jy = w.kept.end(kJy);
  real* __restrict jz = w.kept.end(kJz);
  real* __restrict j_inv_r = w.kept.end(kJInvR);
  real* __restrict kx = w.kept.end(kKx);
  real* __restrict ky = w.kept.end(kKy);
  real* __restrict kz = w.kept.end(kKz);
  real* __restrict k_inv_r = w.kept.end(kKInvR);
  real* __restrict dx = w.dx.data();
  real* __restrict dy = w.dy.data();
  real* __restrict dz = w.dz.data();
  real* __restrict rjk = w.kept.rjk;
  real* __restrict inv_rjk = w.kept.inv_rjk;
  real* __restrict cos = w.cos.data();
#pragma omp simd
  for (int64_t u = 0; u < nc; ++u) {
    if constexpr (!recalled) {
      const int32_t j = j_slot[u], k = slot[u];
      jx[u] = x[j];
      jy[u] = y[j];
      jz[u] = z[j];
      j_inv_r[u] = inv_r[j];
      kx[u] = x[k];
      ky[u] = y[k];
      kz[u] = z[k];
      k_inv_r[u] = inv_r[k];
      const bpnn_terms::Triplet<real> t =
          bpnn_terms::triplet(jx[u], jy[u], jz[u], j_inv_r[u], kx[u], ky[u], kz[u], k_inv_r[u]);
      dx[u] = t.dx;
      dy[u] = t.dy;
      dz[u] = t.dz;
      rjk[u] = t.rjk;
      inv_rjk[u] = t.inv_rjk;
      cos[u] = t.cos;
    } else {
      dx[u] = kx[u] - jx[u];
      dy[u] = ky[u] - jy[u];
      dz[u] = kz[u] - jz[u];
      cos[u] = bpnn_terms::triplet_cos(jx[u], jy[u], jz[u], j_inv_r[u], kx[u], ky[u], kz[u], k_inv_r[u]);
    }
  }
}

// The narrow products (Scratch::Kept) of the batch's first nc pairs from the gathered group
// factors and the narrow factors of r_jk; without `derivatives`, p only.
template <typename real, bool derivatives>
BPNN_INLINE void narrow_products(const ElementPair& pair, Scratch<real>& w, int64_t nc) {
  const int64_t span = w.span, stride = w.kept.stride;
  for (int gi : pair.narrow_groups) {
    const real* __restrict gj = &w.gj[gi * span];
    const real* __restrict gk = &w.gk[gi * span];
    const real* __restrict jk = &w.gjk[gi * span];
    real* __restrict p = w.kept.p + gi * stride;
    if (!derivatives) {
#pragma omp simd
      for (int64_t u = 0; u < nc; ++u) p[u] = gj[u] * gk[u] * jk[u];
      continue;
    }
    const real* __restrict dgj = &w.dgj[gi * span];
    const real* __restrict dgk = &w.dgk[gi * span];
    const real* __restrict djk = &w.dgjk[gi * span];
    real* __restrict pj = w.kept.pj + gi * stride;
    real* __restrict pk = w.kept.pk + gi * stride;
    real* __restrict pjk = w.kept.pjk + gi * stride;
#pragma omp simd
    for (int64_t u = 0; u < nc; ++u) {
      const real both = gj[u] * gk[u];
      p[u] = both * jk[u];
      pj[u] = dgj[u] * gk[u] * jk[u];
      pk[u] = gj[u] * dgk[u] * jk[u];
      pjk[u] = both * djk[u];
    }
  }
}

// How load_batch treats the costly terms of a batch (|r_jk|, 1/|r_jk| and the narrow products,
// with the exponentials and cutoff functions of r_jk and the gathered group factors in them):
// `compute` them; compute them and `remember` them in the scratch's held arrays at batch.base (a
// forward pass whose backward pass follows on the same centre; with derivatives); `recall` them
// from there (that backward pass: the kept entries and the costly terms read back, the cheap
// ones recomputed). Same numbers either way.
enum class RowMode { compute, remember, recall };

// load_batch<real, true, RowMode::recall>.
template <typename real>
BPNN_INLINE int64_t recall_batch(const ElementPair& pair, Scratch<real>& w, const RowBatch& batch) {
  const int64_t nc = batch.kept;
  w.view(true, batch.base);
  batch_geometry<real, true>(w, nc);
  gather_groups<real, true>(pair.wide_groups, w, nc);  // the narrow groups' products are held
  load_shapes(pair, w, nc);
  return nc;
}

// Loads a batch of rows (each j with k = k0 .. k0 + n - 1) into the compact arrays, keeping only
// the pairs {j, k} that can contribute (all if the element pair has wide functions, else r_jk
// below the largest narrow r_c; about half of them for the n2p2 water potential): the slots of
// j and k, their vectors, r_jk vectors, |r_jk| (0 where j and k coincide), cos, the group
// factors of j and k gathered, the narrow factors exp(-eta (r_jk - r_s)^2) f_c(r_jk), the narrow
// products (Scratch::Kept) and the shapes (1 + lambda cos)^zeta. Returns their count (with `remember`, also held as batch.kept).
template <typename real, bool derivatives, RowMode mode = RowMode::compute>
BPNN_INLINE int64_t load_batch(const Plan& plan, const ElementPair& pair, Scratch<real>& w, RowBatch& batch) {
  static_assert(mode != RowMode::remember || derivatives, "a remembered batch holds the derivatives");
  if (mode == RowMode::recall) return recall_batch(pair, w, batch);
  const int64_t span = w.span;
  if (mode == RowMode::remember) {
    w.view(true, batch.base);
  } else {
    w.view(false, 0);
  }
  const real* __restrict x = w.x.data();
  const real* __restrict y = w.y.data();
  const real* __restrict z = w.z.data();
  real* __restrict r2 = w.r2.data();
  int32_t* __restrict slot = w.kept.slot;
  int32_t* __restrict j_slot = w.kept.j_slot;
  const real limit2 = pair.has_wide ? real(std::numeric_limits<double>::infinity()) : real(pair.narrow_cutoff2);
  int64_t nc = 0;
  for (int64_t r = batch.first; r < batch.last; ++r) {
    const int64_t j = w.rows[r].j, k0 = w.rows[r].k0, n = w.rows[r].n;
    const real xj = x[j], yj = y[j], zj = z[j];
#pragma omp simd
    for (int64_t t = 0; t < n; ++t) {
      const real dx = x[k0 + t] - xj, dy = y[k0 + t] - yj, dz = z[k0 + t] - zj;
      r2[t] = dx * dx + dy * dy + dz * dz;
    }
    for (int64_t t = 0; t < n; ++t) {
      slot[nc] = static_cast<int32_t>(k0 + t);
      j_slot[nc] = static_cast<int32_t>(j);
      nc += r2[t] < limit2 ? 1 : 0;
    }
  }
  batch_geometry<real, false>(w, nc);
  const real* __restrict rjk = w.kept.rjk;
  const real* __restrict inv_rjk = w.kept.inv_rjk;
  gather_groups<real, derivatives>(pair.groups, w, nc);
  for (int c : pair.narrow_cuts) {
    bpnn_math::cutoff_array(plan.kind, rjk, nc, real(plan.cutoffs[c]), real(plan.alpha), &w.fcjk[c * span],
                            &w.dfcjk[c * span]);
  }
  for (int gi : pair.narrow_groups) {  // 0 where j and k coincide (inv_rjk = 0)
    const int cut = plan.groups[gi].cut;
    group_factors<real, derivatives, true>(plan.groups[gi], rjk, inv_rjk, nc, &w.fcjk[cut * span],
                                           &w.dfcjk[cut * span], &w.gjk[gi * span], &w.dgjk[gi * span]);
  }
  narrow_products<real, derivatives>(pair, w, nc);
  load_shapes(pair, w, nc);
  if (mode == RowMode::remember) batch.kept = nc;
  return nc;
}

}  // namespace
}  // namespace bpnn_acsf
