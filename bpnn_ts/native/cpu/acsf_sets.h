// The angular functions of one batch of rows (acsf_centre.h), summed a set at a time (acsf_plan.h:
// FunctionSet: the functions of one group and kind). A set's functions share the pair factors
// p = g(r_j) g(r_k) [g(r_jk)], so one pass over the batch loads them once for up to kMostAtOnce functions:
//   forward:  sum_u value_f[u] p[u] for each function f of the set;
//   backward: A[u] = sum_f c_f value_f[u] and B[u] = sum_f c_f lambda_f slope_f[u], then
//             s_cos += B g(r_j) g(r_k) [g(r_jk)], s_j += A g'(r_j) g(r_k) [g(r_jk)],
//             s_k += A g(r_j) g'(r_k) [g(r_jk)], s_jk += A g(r_j) g(r_k) g'(r_jk) (narrow)
// (c_f = w_f 2^(1 - zeta_f), the terms of bpnn_terms::add_angular_slopes summed over the set).
// Larger sets run kMostAtOnce functions per pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../common/acsf_plan.h"
#include "acsf_scratch.h"

namespace bpnn_acsf {
namespace {

constexpr int kMostAtOnce = 4;

// sums[i] = sum_u value_i[u] gj[u] gk[u] (jk[u] if narrow), u < n, for the first `count` of 4 functions.
template <int count, bool narrow, typename real>
BPNN_INLINE void set_sums(const real* const* values, const real* __restrict gj, const real* __restrict gk,
                          const real* __restrict jk, int64_t n, real* sums) {
  const real* __restrict v0 = values[0];
  const real* __restrict v1 = values[count > 1 ? 1 : 0];
  const real* __restrict v2 = values[count > 2 ? 2 : 0];
  const real* __restrict v3 = values[count > 3 ? 3 : 0];
  real s0 = real(0.0), s1 = real(0.0), s2 = real(0.0), s3 = real(0.0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t u = 0; u < n; ++u) {
    const real p = narrow ? gj[u] * gk[u] * jk[u] : gj[u] * gk[u];
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
BPNN_INLINE void set_sums_of(int count, const real* const* values, const real* gj, const real* gk, const real* jk,
                             int64_t n, real* sums) {
  switch (count) {
    case 1: set_sums<1, narrow>(values, gj, gk, jk, n, sums); break;
    case 2: set_sums<2, narrow>(values, gj, gk, jk, n, sums); break;
    case 3: set_sums<3, narrow>(values, gj, gk, jk, n, sums); break;
    default: set_sums<4, narrow>(values, gj, gk, jk, n, sums); break;
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
    const real* jk = w.kept.gjk + set.group * w.kept.stride;
    const int size = static_cast<int>(set.members.size());
    for (int first = 0; first < size; first += kMostAtOnce) {
      const int count = std::min(kMostAtOnce, size - first);
      for (int i = 0; i < count; ++i) values[i] = &w.value[pair.functions[set.members[first + i]].shape * span];
      if (set.narrow) {
        set_sums_of<true>(count, values, gj, gk, jk, n, sums);
      } else {
        set_sums_of<false>(count, values, gj, gk, jk, n, sums);
      }
      for (int i = 0; i < count; ++i) {
        const Angular& fn = pair.functions[set.members[first + i]];
        w.g[fn.column] += fn.prefactor * sums[i];
      }
    }
  }
}

// The backward sums of up to 4 functions of a set (the header's formulas): c[i] = c_f, cl[i] =
// c_f lambda_f.
template <int count, bool narrow, typename real>
BPNN_INLINE void set_slopes(const real* c, const real* cl, const real* const* values, const real* const* slopes,
                            const real* __restrict gj, const real* __restrict dgj, const real* __restrict gk,
                            const real* __restrict dgk,
                            const real* __restrict jk, const real* __restrict djk, int64_t n, real* __restrict s_cos,
                            real* __restrict s_j, real* __restrict s_k, real* __restrict s_jk) {
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
      const real both = gj[u] * gk[u];
      s_jk[u] += a * both * djk[u];
      s_cos[u] += b * both * jk[u];
      s_j[u] += a * jk[u] * dgj[u] * gk[u];
      s_k[u] += a * jk[u] * gj[u] * dgk[u];
    } else {
      s_cos[u] += b * gj[u] * gk[u];
      s_j[u] += a * dgj[u] * gk[u];
      s_k[u] += a * gj[u] * dgk[u];
    }
  }
}

template <bool narrow, typename real>
BPNN_INLINE void set_slopes_of(int count, const real* c, const real* cl, const real* const* values,
                               const real* const* slopes, const real* gj, const real* dgj, const real* gk,
                               const real* dgk,
                               const real* jk, const real* djk, int64_t n, real* s_cos, real* s_j, real* s_k,
                               real* s_jk) {
  switch (count) {
    case 1: set_slopes<1, narrow>(c, cl, values, slopes, gj, dgj, gk, dgk, jk, djk, n, s_cos, s_j, s_k, s_jk); break;
    case 2: set_slopes<2, narrow>(c, cl, values, slopes, gj, dgj, gk, dgk, jk, djk, n, s_cos, s_j, s_k, s_jk); break;
    case 3: set_slopes<3, narrow>(c, cl, values, slopes, gj, dgj, gk, dgk, jk, djk, n, s_cos, s_j, s_k, s_jk); break;
    default: set_slopes<4, narrow>(c, cl, values, slopes, gj, dgj, gk, dgk, jk, djk, n, s_cos, s_j, s_k, s_jk); break;
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
      const auto run = [&](auto narrow) {
        set_slopes_of<decltype(narrow)::value>(count, c, cl, values, slopes, &w.gj[g], &w.dgj[g], &w.gk[g],
                                               &w.dgk[g], w.kept.gjk + set.group * w.kept.stride,
                                               w.kept.dgjk + set.group * w.kept.stride, n, w.s_cos.data(), w.s_j.data(),
                                               w.s_k.data(), w.s_jk.data());
      };
      if (set.narrow) {
        run(std::true_type{});
      } else {
        run(std::false_type{});
      }
    }
  }
}

}  // namespace
}  // namespace bpnn_acsf
