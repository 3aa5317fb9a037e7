// The scalar terms of the ACSF kernels, shared by the CPU loops (cpu/acsf_centre.h, which call
// them inside vectorized loops over a batch of neighbour pairs) and the GPU threads
// (cuda/acsf_device.h, one call per pair or triplet): one copy of each formula, BPNN_HD so that
// both compile it. All inline;
// templates over the scalar type (float, double and the duals of dual.h). Notation as in
// acsf_centre.h: r_j = r_ij, r_k = r_ik, r_jk = r_k - r_j, cos = cos theta_ijk.
#pragma once

#include "acsf_math.h"
#include "host_device.h"

namespace bpnn_terms {

// exp(-eta shifted^2), shifted = r - r_s: the Gaussian of radial functions and pair factors.
template <typename real>
BPNN_HD BPNN_INLINE real gaussian(real eta, real shifted) {
  return bpnn_math::exp(-eta * shifted * shifted);
}

// d/dr [exp(-eta (r - r_s)^2) f_c(r)] / exp(-eta (r - r_s)^2) = f_c'(r) - 2 eta (r - r_s) f_c(r).
template <typename real>
BPNN_HD BPNN_INLINE real gaussian_bracket(real eta, real shifted, real f, real df) {
  return df - real(2.0) * eta * shifted * f;
}

// value = (1 + lambda cos)^zeta = base^zeta and slope = d value / d base for a positive integer
// zeta known at compile time (raw = 1 + lambda cos; both 0 where raw <= 0).
template <int zeta, typename real>
BPNN_HD BPNN_INLINE void angular_power(real raw, real& value, real& slope) {
  const real base = raw > real(0.0) ? raw : real(0.0);
  real below = real(1.0);  // base^(zeta - 1)
  for (int e = 1; e < zeta; ++e) below *= base;
  value = below * base;
  slope = raw > real(0.0) ? real(zeta) * below : real(0.0);
}

// The same for a positive integer zeta known at run time (the same products in the same order
// as cpu/acsf_load.h's shape_powers<0>).
template <typename real>
BPNN_HD BPNN_INLINE void angular_power(real raw, int zeta, real& value, real& slope) {
  const real base = raw > real(0.0) ? raw : real(0.0);
  real below = real(1.0);
  for (int e = 1; e < zeta; ++e) below *= base;
  value = raw > real(0.0) ? below * raw : real(0.0);
  slope = raw > real(0.0) ? real(zeta) * below : real(0.0);
}

// The same for any real zeta (pow).
template <typename real>
BPNN_HD BPNN_INLINE void angular_power_real(real raw, real zeta, real& value, real& slope) {
  value = raw > real(0.0) ? bpnn_math::pow(raw, zeta) : real(0.0);
  slope = raw > real(0.0) ? zeta * value / raw : real(0.0);
}

// The geometry of a triplet: r_jk = r_k - r_j, |r_jk| and 1/|r_jk| (both 0 where j and k
// coincide), cos = r_j . r_k / (|r_j| |r_k|).
template <typename real>
struct Triplet {
  real dx, dy, dz, rjk, inv_rjk, cos;
};

// cos theta_ijk = r_j . r_k / (|r_j| |r_k|).
template <typename real>
BPNN_HD BPNN_INLINE real triplet_cos(real xj, real yj, real zj, real inv_rj, real xk, real yk, real zk, real inv_rk) {
  return (xj * xk + yj * yk + zj * zk) * inv_rj * inv_rk;
}

template <typename real>
BPNN_HD BPNN_INLINE Triplet<real> triplet(real xj, real yj, real zj, real inv_rj, real xk, real yk, real zk,
                                          real inv_rk) {
  Triplet<real> t;
  t.dx = xk - xj;
  t.dy = yk - yj;
  t.dz = zk - zj;
  const real d2 = t.dx * t.dx + t.dy * t.dy + t.dz * t.dz;
  const bool apart = d2 > real(1e-20);
  const real r_jk = bpnn_math::sqrt(apart ? d2 : real(1.0));
  t.rjk = apart ? r_jk : real(0.0);
  t.inv_rjk = apart ? real(1.0) / r_jk : real(0.0);
  t.cos = triplet_cos(xj, yj, zj, inv_rj, xk, yk, zk, inv_rk);
  return t;
}

// One angular function's share of a triplet's backward sums (cpu/acsf_centre.h): c = w_f 2^(1 - zeta),
// value and slope its (1 + lambda cos)^zeta and d/d(1 + lambda cos), gj, dgj (gk, dgk) the pair
// factor exp(-eta (r - r_s)^2) f_c(r) of r_j (r_k) and its r-derivative, jk, djk that of |r_jk|
// (narrow functions only).
template <bool narrow, typename real>
BPNN_HD BPNN_INLINE void add_angular_slopes(real c, real lambda, real value, real slope, real gj, real dgj, real gk,
                                            real dgk, real jk, real djk, real& s_cos, real& s_j, real& s_k,
                                            real& s_jk) {
  const real cv = c * value;
  if (narrow) {
    s_jk += cv * gj * gk * djk;
    s_cos += c * jk * slope * lambda * gj * gk;
    s_j += cv * jk * dgj * gk;
    s_k += cv * jk * gj * dgk;
  } else {
    s_cos += c * slope * lambda * gj * gk;
    s_j += cv * dgj * gk;
    s_k += cv * gj * dgk;
  }
}

// dE/dr_j and dE/dr_k of one triplet from its sums s_cos = sum_f w_f dT_f/dcos, s_j, s_k, s_jk
// (dT/d|r_j|, d|r_k|, d|r_jk|): chained through dcos/dr_j = r_k / (|r_j||r_k|) - cos r_j / |r_j|^2
// (and j <-> k) and d|r_jk|/dr_j = -r_jk / |r_jk| = -d|r_jk|/dr_k.
template <typename real>
struct TripletGradient {
  real jx, jy, jz, kx, ky, kz;
};

template <typename real>
BPNN_HD BPNN_INLINE TripletGradient<real> triplet_gradient(real s_cos, real s_j, real s_k, real s_jk, real xj, real yj,
                                                           real zj, real inv_rj, real xk, real yk, real zk, real inv_rk,
                                                           const Triplet<real>& t) {
  const real both = s_cos * inv_rj * inv_rk;
  const real a_j = (s_j - s_cos * t.cos * inv_rj) * inv_rj;
  const real a_k = (s_k - s_cos * t.cos * inv_rk) * inv_rk;
  const real c_jk = s_jk * t.inv_rjk;
  return {a_j * xj + both * xk - c_jk * t.dx, a_j * yj + both * yk - c_jk * t.dy, a_j * zj + both * zk - c_jk * t.dz,
          a_k * xk + both * xj + c_jk * t.dx, a_k * yk + both * yj + c_jk * t.dy, a_k * zk + both * zj + c_jk * t.dz};
}

}  // namespace bpnn_terms
