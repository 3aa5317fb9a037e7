// Fused CPU kernels for atom-centred symmetry functions (n2p2 types 2, 3, 9) and their
// derivatives contracted with dE/dG, registered as torch.ops.bpnn.acsf / acsf_backward, and a
// cell-list pair search, torch.ops.bpnn.cell_list (cell_list.h).
//
// One centre at a time, neighbours sorted by element into structure-of-arrays scratch:
// per-pair radial factors exp(-eta (r - r_s)^2) f_c(r) are computed once per distinct
// (eta, r_s, r_c) and reused by every angular function of that group (as n2p2 groups its
// functions); each unordered neighbour pair {j, k} is visited once, as rows: for a fixed j, all
// k of one element are done together in branch-free loops that the compiler vectorizes
// (acsf_math.h has a vectorizable exp, cos and the cutoffs). The hot functions are compiled for
// AVX2 + FMA and for plain x86-64 and picked at run time (target_clones). Centres are split over
// torch's intra-op thread count (run_in_chunks). The same file is compiled into the C++ loader
// library (bpnn_run and the LAMMPS plugin) and, for Python, by torch.utils.cpp_extension
// (bpnn_ts/native/__init__.py). Definitions: bpnn_ts/descriptors/params.py.
//
// Inputs (shared by both ACSF ops):
//   vectors (P, 3)  pair vectors r_ij = R_j - R_i, Å, grouped by centre
//   offsets (B + 1) pairs of centre b are offsets[b] .. offsets[b + 1] - 1
//   species (P,)    species index of each neighbour j
//   radial, angular the functions' parameters (acsf_plan.h)
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "acsf_math.h"
#include "acsf_plan.h"
#include "cell_list.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BPNN_NO_CLONES)
#define BPNN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BPNN_CLONES
#endif

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
  std::vector<double> g;                              // [functions] G of the centre (forward)
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
    real gauss = bpnn_math::exp(-eta * shifted * shifted);
    if (masked) gauss = keep[t] != real(0) ? gauss : real(0);
    out[t] = gauss * f[t];
    if (derivatives) d_out[t] = gauss * (df[t] - real(2) * eta * shifted * f[t]);
  }
}

// Sorts the centre's pairs (w.in, species) into slots; distances, cutoffs and group factors.
template <typename real>
BPNN_INLINE void load_centre(const Plan& plan, const int64_t* species, Scratch<real>& w) {
  const int64_t m = w.m;
  w.block.assign(plan.n_species + 1, 0);
  for (int64_t a = 0; a < m; ++a) {
    TORCH_CHECK(species[a] >= 0 && species[a] < plan.n_species, "bpnn: neighbour species out of range");
    ++w.block[species[a] + 1];
  }
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
    r[a] = std::sqrt(x[a] * x[a] + y[a] * y[a] + z[a] * z[a]);
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
    for (int64_t t = 0; t < n; ++t) {
      const real raw = real(1.0) + lambda * cos[t];
      const real base = raw > real(0.0) ? raw : real(0.0);
      real below = real(1.0);  // base^(zeta - 1)
      for (int e = 1; e < zeta; ++e) below *= base;
      value[t] = below * base;
      slope[t] = raw > real(0.0) ? real(zeta) * below : real(0.0);
    }
    return;
  }
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
  const real limit2 = pair.has_wide ? std::numeric_limits<real>::infinity() : real(pair.narrow_cutoff2);
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
    dx[u] = kx[u] - xj;
    dy[u] = ky[u] - yj;
    dz[u] = kz[u] - zj;
    const real d2 = dx[u] * dx[u] + dy[u] * dy[u] + dz[u] * dz[u];
    const bool apart = d2 > real(1e-20);
    const real r_jk = std::sqrt(apart ? d2 : real(1.0));
    rjk[u] = apart ? r_jk : real(0.0);
    inv_rjk[u] = apart ? real(1.0) / r_jk : real(0.0);
    cos[u] = (xj * kx[u] + yj * ky[u] + zj * kz[u]) * inv_rj * k_inv_r[u];
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
        const real base = real(1.0) + real(shape.lambda) * cos[u];
        value[u] = base > real(0.0) ? std::pow(base, real(shape.zeta)) : real(0.0);
        slope[u] = base > real(0.0) ? real(shape.zeta) * value[u] / base : real(0.0);
      }
    }
  }
  return nc;
}

// G of one centre (the scratch is loaded) into w.g.
template <typename real>
BPNN_INLINE void forward_centre(const Plan& plan, Scratch<real>& w) {
  const int64_t m = w.m;
  std::fill(w.g.begin(), w.g.end(), real(0.0));
  for (const Radial& fn : plan.radial) {
    const real eta = real(fn.eta), r_s = real(fn.r_s);
    const real* __restrict r = w.r.data();
    const real* __restrict f = &w.fc[fn.cut * m];
    real sum = real(0.0);
#pragma omp simd reduction(+ : sum)
    for (int64_t a = w.block[fn.species]; a < w.block[fn.species + 1]; ++a) {
      const real shifted = r[a] - r_s;
      sum += bpnn_math::exp(-eta * shifted * shifted) * f[a];
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
      const real gauss = bpnn_math::exp(-eta * shifted * shifted);
      const real d_r = wf * gauss * (df[a] - real(2.0) * eta * shifted * f[a]) * inv_r[a];
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
          const real cv = c * value[u];
          s_jk[u] += cv * gj * gk[u] * djk[u];
          s_cos[u] += c * jk[u] * slope[u] * lambda * gj * gk[u];
          s_j[u] += cv * jk[u] * dgj * gk[u];
          s_k[u] += cv * jk[u] * gj * dgk[u];
        }
      } else {
#pragma omp simd
        for (int64_t u = 0; u < n; ++u) {
          const real cv = c * value[u];
          s_cos[u] += c * slope[u] * lambda * gj * gk[u];
          s_j[u] += cv * dgj * gk[u];
          s_k[u] += cv * gj * dgk[u];
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
    real* __restrict cgx = w.cgx.data();
    real* __restrict cgy = w.cgy.data();
    real* __restrict cgz = w.cgz.data();
    real gxj = real(0.0), gyj = real(0.0), gzj = real(0.0);
#pragma omp simd reduction(+ : gxj, gyj, gzj)
    for (int64_t u = 0; u < n; ++u) {
      const real both = s_cos[u] * inv_rj * k_inv_r[u];
      const real a_j = (s_j[u] - s_cos[u] * cos[u] * inv_rj) * inv_rj;
      const real a_k = (s_k[u] - s_cos[u] * cos[u] * k_inv_r[u]) * k_inv_r[u];
      const real c_jk = s_jk[u] * inv_rjk[u];
      gxj += a_j * xj + both * kx[u] - c_jk * dx[u];
      gyj += a_j * yj + both * ky[u] - c_jk * dy[u];
      gzj += a_j * zj + both * kz[u] - c_jk * dz[u];
      cgx[u] = a_k * kx[u] + both * xj + c_jk * dx[u];
      cgy[u] = a_k * ky[u] + both * yj + c_jk * dy[u];
      cgz[u] = a_k * kz[u] + both * zj + c_jk * dz[u];
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

// Calls work(begin, end, scratch) over chunks of [0, n) on torch's intra-op thread count
// (at::get_num_threads()), one scratch per thread; rethrows the first error. Own threads, not
// at::parallel_for: that needs this file built with the OpenMP runtime torch was built with.
template <typename real, typename Work>
void run_in_chunks(int64_t n, Work&& work) {
  constexpr int64_t kChunk = 16;
  const int64_t n_threads = std::min<int64_t>(at::get_num_threads(), (n + kChunk - 1) / kChunk);
  if (n_threads <= 1) {
    Scratch<real> w;
    work(0, n, w);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_lock;
  auto worker = [&] {
    Scratch<real> w;
    try {
      for (int64_t begin = next.fetch_add(kChunk); begin < n; begin = next.fetch_add(kChunk)) {
        work(begin, std::min(n, begin + kChunk), w);
      }
    } catch (...) {
      std::lock_guard<std::mutex> guard(error_lock);
      if (!error) error = std::current_exception();
      next.store(n);
    }
  };
  std::vector<std::thread> threads;
  for (int64_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);
}

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
  }

  // Calls centre(b, w) for every centre with the scratch loaded, over torch's intra-op threads.
  template <typename scalar_t, typename Centre>
  void for_each_centre(int64_t n_functions, Centre&& centre) const {
    const scalar_t* v = vectors.data_ptr<scalar_t>();
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    const size_t n_shapes = max_shapes(plan);
    run_in_chunks<scalar_t>(n_centres, [&](int64_t begin, int64_t end, Scratch<scalar_t>& w) {
      if (static_cast<int64_t>(w.g.size()) != n_functions) w.g.resize(n_functions);
      for (int64_t b = begin; b < end; ++b) {
        const int64_t p0 = off[b], m = off[b + 1] - p0;
        if (m > w.capacity) w.resize(m, plan, n_shapes);
        w.m = m;
        for (int64_t i = 0; i < 3 * m; ++i) w.in[i] = static_cast<double>(v[3 * p0 + i]);
        load_centre_any(plan, sp + p0, w);
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
      forward_centre_any(in.plan, w);
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
      backward_centre_any(in.plan, weight + b * n_functions, w);
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
