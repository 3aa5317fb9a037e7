// The ACSF kernels as a GPU runs them: one thread per pair (pair_factors) and then one thread per
// centre (centre_forward: G of the centre; centre_backward: dE/dr_ij of its pairs from dE/dG).
// The same maths as the CPU kernels (cpu/acsf_centre.h says what is computed), through the same
// scalar functions (common/acsf_terms.h, acsf_math.h), in another order: the CPU sorts a centre's
// pairs into vectorizable rows, a GPU thread walks its pairs and triplets one at a time.
// Everything here is BPNN_HD (host_device.h): acsf_cuda.cu runs it in CUDA kernels, the test-only
// ops bpnn_emulation::* (emulation/emulation_ops.cpp) on the host, one loop iteration per
// would-be thread, so every CPU test machine checks the GPU code. Templates over the scalar type: float, double and the duals of
// dual.h (the ops acsf_jvp and acsf_backward_jvp), as on the CPU.
//
// No std::vector, no exceptions, no host-only std functions: the plan is DevicePlan, plain arrays
// in one float64 block (built on the host by acsf_device_plan.h). Inputs are not checked here (a
// GPU kernel cannot throw): neighbour species outside 0 .. n_species - 1 add nothing.
//
// Per-pair workspace (`work`, row p of `stride()` reals): x, y, z, |r|, 1/|r|, then f_c(r) and
// df_c/dr for each cutoff, then the pair factors exp(-eta (r - r_s)^2) f_c(r) and their
// r-derivatives for each group (distinct eta, r_s, r_c of the angular functions).
#pragma once

#include <cstdint>

#include "../common/acsf_math.h"
#include "../common/acsf_terms.h"
#include "../common/dual.h"
#include "../common/host_device.h"

namespace bpnn_device {

// Fields of a radial row, a group row and an angular entry of the flat plan.
enum RadialField : int { kRadColumn, kRadSpecies, kRadEta, kRadRs, kRadCut, kRadFields };
enum GroupField : int { kGroupEta, kGroupRs, kGroupCut, kGroupFields };
enum EntryField : int {
  kEntryColumn,
  kEntryGroup,
  kEntryNarrow,     // 1: narrow (with the r_jk terms), 0: wide
  kEntryPrefactor,  // 2^(1 - zeta)
  kEntryLambda,
  kEntryZeta,
  kEntryIntegerZeta,  // zeta if a positive integer (<= 64), else 0
  kEntryFields
};

// The symmetry functions of one centre element, flat: `data` holds, at the offsets named,
//   cutoffs [n_cut]                 the distinct r_c
//   radial  [n_radial][kRadFields]  column, neighbour species, eta, r_s, cutoff index
//   groups  [n_groups][kGroupFields] eta, r_s, cutoff index
//   first   [n_species^2 + 1]       angular entries of the element pair (sj, sk), key sj * S + sk,
//                                   are first[key] .. first[key + 1] - 1 (both orders filled)
//   limit2  [n_species^2]           r_jk^2 from which no function of the pair contributes (inf if
//                                   it has wide functions, else its largest narrow r_c squared)
//   entries [n_entries][kEntryFields], each pair's sorted by group, then lambda, zeta
// Integers are stored as doubles (exact). A plain struct: copied into every kernel launch.
struct DevicePlan {
  int64_t n_species = 0, n_cut = 0, n_radial = 0, n_groups = 0, n_entries = 0;
  int kind = 1;
  double alpha = 0.0;
  int64_t cutoffs_at = 0, radial_at = 0, groups_at = 0, first_at = 0, limit2_at = 0, entries_at = 0, size = 0;
  const double* data = nullptr;

  BPNN_HD int64_t stride() const { return 5 + 2 * n_cut + 2 * n_groups; }  // reals per pair of the workspace
  BPNN_HD int64_t fc_at(int64_t cut) const { return 5 + cut; }
  BPNN_HD int64_t dfc_at(int64_t cut) const { return 5 + n_cut + cut; }
  BPNN_HD int64_t g_at(int64_t group) const { return 5 + 2 * n_cut + group; }
  BPNN_HD int64_t dg_at(int64_t group) const { return 5 + 2 * n_cut + n_groups + group; }
  BPNN_HD const double* radial(int64_t f) const { return data + radial_at + f * kRadFields; }
  BPNN_HD const double* group(int64_t g) const { return data + groups_at + g * kGroupFields; }
  BPNN_HD const double* entry(int64_t e) const { return data + entries_at + e * kEntryFields; }
  BPNN_HD double cutoff(int64_t c) const { return data[cutoffs_at + c]; }
  BPNN_HD int64_t first(int64_t key) const { return static_cast<int64_t>(data[first_at + key]); }
  BPNN_HD double limit2(int64_t key) const { return data[limit2_at + key]; }
};

// f_c(r) and df_c/dr for the cutoff type `kind` (0..8; f = df = 0 for any other).
template <typename real>
BPNN_HD BPNN_INLINE void cutoff_of(int kind, real r, real rc, real alpha, real& f, real& df) {
  const real inv_rc = real(1) / rc;
  switch (kind) {
    case 0: bpnn_math::cutoff<0, real>(r, rc, inv_rc, alpha, f, df); return;
    case 1: bpnn_math::cutoff<1, real>(r, rc, inv_rc, alpha, f, df); return;
    case 2: bpnn_math::cutoff<2, real>(r, rc, inv_rc, alpha, f, df); return;
    case 3: bpnn_math::cutoff<3, real>(r, rc, inv_rc, alpha, f, df); return;
    case 4: bpnn_math::cutoff<4, real>(r, rc, inv_rc, alpha, f, df); return;
    case 5: bpnn_math::cutoff<5, real>(r, rc, inv_rc, alpha, f, df); return;
    case 6: bpnn_math::cutoff<6, real>(r, rc, inv_rc, alpha, f, df); return;
    case 7: bpnn_math::cutoff<7, real>(r, rc, inv_rc, alpha, f, df); return;
    case 8: bpnn_math::cutoff<8, real>(r, rc, inv_rc, alpha, f, df); return;
    default: f = real(0.0); df = real(0.0);
  }
}

// Thread p of the pair pass: the workspace row of pair p from vectors (P, 3) and, for dual
// `real`, the directions (K, P, 3) float64 (dual.h's Seed: r + sum_k eps_k u_k).
template <typename real, typename scalar_t>
BPNN_HD void pair_factors(const DevicePlan& plan, int64_t p, int64_t n_pairs, const scalar_t* vectors,
                          const double* directions, real* work) {
  real* w = work + p * plan.stride();
  for (int64_t c = 0; c < 3; ++c) {
    w[c] = bpnn_dual::Seed<real>::at_stacked(static_cast<double>(vectors[3 * p + c]), directions, 3 * n_pairs,
                                             3 * p + c);
  }
  const real r = bpnn_math::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  w[3] = r;
  w[4] = real(1.0) / r;
  for (int64_t c = 0; c < plan.n_cut; ++c) {
    cutoff_of(plan.kind, r, real(plan.cutoff(c)), real(plan.alpha), w[plan.fc_at(c)], w[plan.dfc_at(c)]);
  }
  for (int64_t g = 0; g < plan.n_groups; ++g) {
    const double* group = plan.group(g);
    const real eta = real(group[kGroupEta]), shifted = r - real(group[kGroupRs]);
    const auto cut = static_cast<int64_t>(group[kGroupCut]);
    const real gauss = bpnn_terms::gaussian(eta, shifted);
    const real f = w[plan.fc_at(cut)], df = w[plan.dfc_at(cut)];
    w[plan.g_at(g)] = gauss * f;
    w[plan.dg_at(g)] = gauss * bpnn_terms::gaussian_bracket(eta, shifted, f, df);
  }
}

// The factors of |r_jk| of a triplet for group g: exp(-eta (r_jk - r_s)^2) f_c(r_jk) and its
// derivative (0 where j and k coincide, as on the CPU).
template <typename real>
BPNN_HD BPNN_INLINE void narrow_factor(const DevicePlan& plan, int64_t g, const bpnn_terms::Triplet<real>& t,
                                       real& value, real& slope) {
  const double* group = plan.group(g);
  const real eta = real(group[kGroupEta]), shifted = t.rjk - real(group[kGroupRs]);
  real f, df;
  cutoff_of(plan.kind, t.rjk, real(plan.cutoff(static_cast<int64_t>(group[kGroupCut]))), real(plan.alpha), f, df);
  real gauss = bpnn_terms::gaussian(eta, shifted);
  gauss = t.inv_rjk != real(0) ? gauss : real(0);
  value = gauss * f;
  slope = gauss * bpnn_terms::gaussian_bracket(eta, shifted, f, df);
}

// (1 + lambda cos)^zeta and its slope for an entry (acsf_terms.h).
template <typename real>
BPNN_HD BPNN_INLINE void entry_power(const double* e, real cos, real& value, real& slope) {
  const real raw = real(1.0) + real(e[kEntryLambda]) * cos;
  const int integer_zeta = static_cast<int>(e[kEntryIntegerZeta]);
  if (integer_zeta > 0) {
    bpnn_terms::angular_power(raw, integer_zeta, value, slope);
  } else {
    bpnn_terms::angular_power_real(raw, real(e[kEntryZeta]), value, slope);
  }
}

// Calls triplet(j, k, key, t, wj, wk) for each unordered pair {j, k} of centre b's pairs whose
// element pair has angular functions and whose r_jk may contribute (below limit2).
template <typename real, typename Visit>
BPNN_HD BPNN_INLINE void for_each_triplet(const DevicePlan& plan, int64_t p0, int64_t p1, const int64_t* species,
                                          const real* work, Visit&& visit) {
  const int64_t n_species = plan.n_species, stride = plan.stride();
  for (int64_t j = p0; j < p1; ++j) {
    const int64_t sj = species[j];
    if (sj < 0 || sj >= n_species) continue;
    const real* wj = work + j * stride;
    for (int64_t k = j + 1; k < p1; ++k) {
      const int64_t sk = species[k];
      if (sk < 0 || sk >= n_species) continue;
      const int64_t key = sj * n_species + sk;
      if (plan.first(key) == plan.first(key + 1)) continue;
      const real* wk = work + k * stride;
      const real dx = wk[0] - wj[0], dy = wk[1] - wj[1], dz = wk[2] - wj[2];
      if (!(dx * dx + dy * dy + dz * dz < real(plan.limit2(key)))) continue;
      const bpnn_terms::Triplet<real> t = bpnn_terms::triplet(wj[0], wj[1], wj[2], wj[4], wk[0], wk[1], wk[2], wk[4]);
      visit(j, k, key, t, wj, wk);
    }
  }
}

// Thread b of the forward pass: G of centre b (pairs offsets[b] .. offsets[b + 1] - 1) added into
// its row of g (B, n_functions), zeroed by the caller; summed in Sum<real> (double for float).
template <typename real>
BPNN_HD void centre_forward(const DevicePlan& plan, int64_t b, const int64_t* offsets, const int64_t* species,
                            const real* work, int64_t n_functions, typename bpnn_dual::Sum<real>::type* g_all) {
  using sum_t = typename bpnn_dual::Sum<real>::type;
  sum_t* g = g_all + b * n_functions;
  const int64_t p0 = offsets[b], p1 = offsets[b + 1], stride = plan.stride();
  for (int64_t p = p0; p < p1; ++p) {
    const real* w = work + p * stride;
    for (int64_t f = 0; f < plan.n_radial; ++f) {
      const double* fn = plan.radial(f);
      if (static_cast<int64_t>(fn[kRadSpecies]) != species[p]) continue;
      const real shifted = w[3] - real(fn[kRadRs]);
      const real term = bpnn_terms::gaussian(real(fn[kRadEta]), shifted) * w[plan.fc_at(static_cast<int64_t>(fn[kRadCut]))];
      g[static_cast<int64_t>(fn[kRadColumn])] += sum_t(term);
    }
  }
  for_each_triplet(plan, p0, p1, species, work,
                   [&](int64_t, int64_t, int64_t key, const bpnn_terms::Triplet<real>& t, const real* wj, const real* wk) {
    int64_t last_group = -1;
    double last_lambda = 0.0, last_zeta = 0.0;
    real value = real(0.0), slope = real(0.0), jk = real(0.0), djk = real(0.0);
    for (int64_t e = plan.first(key); e < plan.first(key + 1); ++e) {
      const double* fn = plan.entry(e);
      if (e == plan.first(key) || fn[kEntryLambda] != last_lambda || fn[kEntryZeta] != last_zeta) {
        entry_power(fn, t.cos, value, slope);
        last_lambda = fn[kEntryLambda];
        last_zeta = fn[kEntryZeta];
      }
      const auto group = static_cast<int64_t>(fn[kEntryGroup]);
      real term = value * wk[plan.g_at(group)];
      if (fn[kEntryNarrow] != 0.0) {
        if (group != last_group) {
          narrow_factor(plan, group, t, jk, djk);
          last_group = group;
        }
        term = term * jk;
      }
      g[static_cast<int64_t>(fn[kEntryColumn])] += fn[kEntryPrefactor] * wj[plan.g_at(group)] * term;
    }
  });
}

// Thread b of the backward pass: dE/dr_p of centre b's pairs p from dE/dG = weight (B, n_functions)
// float64, added into out (P, 3), zeroed by the caller (each pair belongs to one centre: no two
// threads write one row).
template <typename real>
BPNN_HD void centre_backward(const DevicePlan& plan, int64_t b, const int64_t* offsets, const int64_t* species,
                             const real* work, int64_t n_functions, const double* weight_all, real* out) {
  const double* weight = weight_all + b * n_functions;
  const int64_t p0 = offsets[b], p1 = offsets[b + 1], stride = plan.stride();
  for (int64_t p = p0; p < p1; ++p) {
    const real* w = work + p * stride;
    for (int64_t f = 0; f < plan.n_radial; ++f) {
      const double* fn = plan.radial(f);
      if (static_cast<int64_t>(fn[kRadSpecies]) != species[p]) continue;
      const real wf = weight[static_cast<int64_t>(fn[kRadColumn])];
      if (wf == real(0.0)) continue;
      const real eta = real(fn[kRadEta]), shifted = w[3] - real(fn[kRadRs]);
      const auto cut = static_cast<int64_t>(fn[kRadCut]);
      const real gauss = bpnn_terms::gaussian(eta, shifted);
      const real d_r = wf * gauss * bpnn_terms::gaussian_bracket(eta, shifted, w[plan.fc_at(cut)], w[plan.dfc_at(cut)]) * w[4];
      out[3 * p] += d_r * w[0];
      out[3 * p + 1] += d_r * w[1];
      out[3 * p + 2] += d_r * w[2];
    }
  }
  for_each_triplet(plan, p0, p1, species, work,
                   [&](int64_t j, int64_t k, int64_t key, const bpnn_terms::Triplet<real>& t, const real* wj, const real* wk) {
    int64_t last_group = -1;
    bool powered = false;
    double last_lambda = 0.0, last_zeta = 0.0;
    real value = real(0.0), slope = real(0.0), jk = real(0.0), djk = real(0.0);
    real s_cos = real(0.0), s_j = real(0.0), s_k = real(0.0), s_jk = real(0.0);
    for (int64_t e = plan.first(key); e < plan.first(key + 1); ++e) {
      const double* fn = plan.entry(e);
      const real c = weight[static_cast<int64_t>(fn[kEntryColumn])] * fn[kEntryPrefactor];
      if (c == real(0.0)) continue;
      if (!powered || fn[kEntryLambda] != last_lambda || fn[kEntryZeta] != last_zeta) {
        entry_power(fn, t.cos, value, slope);
        powered = true;
        last_lambda = fn[kEntryLambda];
        last_zeta = fn[kEntryZeta];
      }
      const auto group = static_cast<int64_t>(fn[kEntryGroup]);
      const real gj = wj[plan.g_at(group)], dgj = wj[plan.dg_at(group)];
      const real gk = wk[plan.g_at(group)], dgk = wk[plan.dg_at(group)];
      const real lambda = real(fn[kEntryLambda]);
      if (fn[kEntryNarrow] != 0.0) {
        if (group != last_group) {
          narrow_factor(plan, group, t, jk, djk);
          last_group = group;
        }
        bpnn_terms::add_angular_slopes<true>(c, lambda, value, slope, gj, dgj, gk, dgk, jk, djk, s_cos, s_j, s_k, s_jk);
      } else {
        bpnn_terms::add_angular_slopes<false>(c, lambda, value, slope, gj, dgj, gk, dgk, real(0.0), real(0.0), s_cos,
                                              s_j, s_k, s_jk);
      }
    }
    const bpnn_terms::TripletGradient<real> d =
        bpnn_terms::triplet_gradient(s_cos, s_j, s_k, s_jk, wj[0], wj[1], wj[2], wj[4], wk[0], wk[1], wk[2], wk[4], t);
    out[3 * j] += d.jx;
    out[3 * j + 1] += d.jy;
    out[3 * j + 2] += d.jz;
    out[3 * k] += d.kx;
    out[3 * k + 1] += d.ky;
    out[3 * k + 2] += d.kz;
  });
}

}  // namespace bpnn_device
