// The angular functions of one batch of rows (acsf_centre.h), summed a set at a time (acsf_plan.h:
// FunctionSet: the functions of one group and kind). A set's functions share the pair factors
// p = g(r_j) g(r_k) [g(r_jk)], so one pass over the batch loads them once for up to kMostAtOnce functions:
//   forward:  sum_u value_f[u] p[u] for each function f of the set;
//   backward: A[u] = sum_f c_f value_f[u] and B[u] = sum_f c_f lambda_f slope_f[u], then
//             s_cos += B g(r_j) g(r_k) [g(r_jk)], s_j += A g'(r_j) g(r_k) [g(r_jk)],
//             s_k += A g(r_j) g'(r_k) [g(r_jk)], s_jk += A g(r_j) g(r_k) g'(r_jk) (narrow)
// (c_f = w_f 2^(1 - zeta_f), the terms of bpnn_terms::add_angular_slopes summed over the set).
// Narrow sets read those products as the batch holds them (Scratch::Kept: p, pj, pk, pjk); wide
// sets multiply the gathered factors of j and k. Larger sets run kMostAtOnce functions per pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../common/acsf_plan.h"
#include "acsf_scratch.h"

namespace bpnn_acsf {
namespace {

constexpr int kMostAtOnce = 4;

// sums[i] = sum_u value_i[u] p[u], u < n, for the first `count` of 4 functions; p = a (narrow:
// the narrow product) or a b (wide: the factors of j and k).
template <int count, bool narrow, typename real>
BPNN_INLINE void set_sums(const real* const* values, const real* __restrict a, const real* __restrict b, int64_t n,
                          real* sums) {
  const real* __restrict v0 = values[0];
  const real* __restrict v1 = values[count > 1 ? 1 : 0];
  const real* __restrict v2 = values[count > 2 ? 2 : 0];
  const real* __restrict v3 = values[count > 3 ? 3 : 0];
  real s0 = real(0.0), s1 = real(0.0), s2 = real(0.0), s3 = real(0.0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t u = 0; u < n; ++u) {
    const real p = narrow ? a[u] : a[u] * b[u];
    s0 += v0[u] * p;
    if constexpr (count > 1) s1 += v1[u] * p;
    if constexpr (count > 2) s2 += v2[u] * p;
    if constexpr (count > 3) s3 += v3[u] * p;
  }
  sums[0] = s0;
  sums[1] = s1;
  sums[2] = s2;
  sums[3] = s3;
}

template <bool narrow, typename real>
BPNN_INLINE void set_sums_of(int count, const real* const* values, const real* a, const real* b, int64_t n,
                             real* sums) {
  switch (count) {
    case 1: set_sums<1, narrow>(values, a, b, n, sums); break;
    case 2: set_sums<2, narrow>(values, a, b, n, sums); break;
    case 3: set_sums<3, narrow>(values, a, b, n, sums); break;
    default: set_sums<4, narrow>(values, a, b, n, sums); break;
  }
}

// G of the batch's functions: w.g[column] += prefactor sum (the batch is loaded, n pairs).
template <typename real>
BPNN_INLINE void add_batch_functions(const ElementPair& pair, Scratch<real>& w, int64_t n) {
  const int64_t span = w.span;
  const real* values[kMostAtOnce];
  real sums[kMostAtOnce];
  for (const FunctionSet& set : pair.sets) {
    const real* gj = &w.gj[set.group * span];
    const real* gk = &w.gk[set.group * span];
    const real* p = w.kept.p + set.group * w.kept.stride;
    const int size = static_cast<int>(set.members.size());
    for (int first = 0; first < size; first += kMostAtOnce) {
      const int count = std::min(kMostAtOnce, size - first);
      for (int i = 0; i < count; ++i) values[i] = &w.value[pair.functions[set.members[first + i]].shape * span];
      if (set.narrow) {
        set_sums_of<true>(count, values, p, p, n, sums);
      } else {
        set_sums_of<false>(count, values, gj, gk, n, sums);
      }
      for (int i = 0; i < count; ++i) {
        const Angular& fn = pair.functions[set.members[first + i]];
        w.g[fn.column] += fn.prefactor * sums[i];
      }
    }
  }
}

// The backward sums of up to 4 functions of a set (the header's formulas): c[i] = c_f, cl[i] =
// c_f lambda_f; f0 .. f3 the narrow products p, pj, pk, pjk (narrow) or the factors g(r_j),
// g'(r_j), g(r_k), g'(r_k) of j and k (wide).
template <int count, bool narrow, typename real>
BPNN_INLINE void set_slopes(const real* c, const real* cl, const real* const* values, const real* const* slopes,
                            const real* __restrict f0, const real* __restrict f1, const real* __restrict f2,
                            const real* __restrict f3, int64_t n, real* __restrict s_cos, real* __restrict s_j,
                            real* __restrict s_k, real* __restrict s_jk) {
  const real* __restrict v0 = values[0];
  const real* __restrict v1 = values[count > 1 ? 1 : 0];
  const real* __restrict v2 = values[count > 2 ? 2 : 0];
  const real* __restrict v3 = values[count > 3 ? 3 : 0];
  const real* __restrict d0 = slopes[0];
  const real* __restrict d1 = slopes[count > 1 ? 1 : 0];
  const real* __restrict d2 = slopes[count > 2 ? 2 : 0];
  const real* __restrict d3 = slopes[count > 3 ? 3 : 0];
#pragma omp simd
  for (int64_t u = 0; u < n; ++u) {
    real a = c[0] * v0[u], b = cl[0] * d0[u];
    if constexpr (count > 1) { a += c[1] * v1[u]; b += cl[1] * d1[u]; }
    if constexpr (count > 2) { a += c[2] * v2[u]; b += cl[2] * d2[u]; }
    if constexpr (count > 3) { a += c[3] * v3[u]; b += cl[3] * d3[u]; }
    if (narrow) {
      s_cos[u] += b * f0[u];
      s_j[u] += a * f1[u];
      s_k[u] += a * f2[u];
      s_jk[u] += a * f3[u];
    } else {
      s_cos[u] += b * f0[u] * f2[u];
      s_j[u] += a * f1[u] * f2[u];
      s_k[u] += a * f0[u] * f3[u];
    }
  }
}

template <bool narrow, typename real>
BPNN_INLINE void set_slopes_of(int count, const real* c, const real* cl, const real* const* values,
                               const real* const* slopes, const real* f0, const real* f1, const real* f2,
                               const real* f3, int64_t n, real* s_cos, real* s_j, real* s_k, real* s_jk) {
  switch (count) {
    case 1: set_slopes<1, narrow>(c, cl, values, slopes, f0, f1, f2, f3, n, s_cos, s_j, s_k, s_jk); break;
    case 2: set_slopes<2, narrow>(c, cl, values, slopes, f0, f1, f2, f3, n, s_cos, s_j, s_k, s_jk); break;
    case 3: set_slopes<3, narrow>(c, cl, values, slopes, f0, f1, f2, f3, n, s_cos, s_j, s_k, s_jk); break;
    default: set_slopes<4, narrow>(c, cl, values, slopes, f0, f1, f2, f3, n, s_cos, s_j, s_k, s_jk); break;
  }
}

// s_cos, s_j, s_k, s_jk of the batch (n pairs, zeroed by the caller) from dE/dG = weight.
template <typename real>
BPNN_INLINE void add_batch_slopes(const ElementPair& pair, const double* weight, Scratch<real>& w, int64_t n) {
  const int64_t span = w.span;
  const real* values[kMostAtOnce];
  const real* slopes[kMostAtOnce];
  real c[kMostAtOnce], cl[kMostAtOnce];
  for (const FunctionSet& set : pair.sets) {
    const int64_t g = set.group * span;
    const int size = static_cast<int>(set.members.size());
    for (int first = 0; first < size; first += kMostAtOnce) {
      const int count = std::min(kMostAtOnce, size - first);
      bool any = false;
      for (int i = 0; i < count; ++i) {
        const Angular& fn = pair.functions[set.members[first + i]];
        c[i] = real(weight[fn.column] * fn.prefactor);
        cl[i] = c[i] * real(pair.shapes[fn.shape].lambda);
        values[i] = &w.value[fn.shape * span];
        slopes[i] = &w.slope[fn.shape * span];
        any = any || c[i] != real(0.0);
      }
      if (!any) continue;
      real* s_cos = w.s_cos.data();
      real* s_j = w.s_j.data();
      real* s_k = w.s_k.data();
      real* s_jk = w.s_jk.data();
      if (set.narrow) {
        const int64_t at = set.group * w.kept.stride;
        set_slopes_of<true>(count, c, cl, values, slopes, w.kept.p + at, w.kept.pj + at, w.kept.pk + at,
                            w.kept.pjk + at, n, s_cos, s_j, s_k, s_jk);
      } else {
        set_slopes_of<false>(count, c, cl, values, slopes, &w.gj[g], &w.dgj[g], &w.gk[g], &w.dgk[g], n, s_cos, s_j,
                             s_k, s_jk);
      }
    }
  }
}

}  // namespace
}  // namespace bpnn_acsf
