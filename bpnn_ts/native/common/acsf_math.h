// Branch-free elementwise maths for the ACSF kernels, written so that loops over neighbours
// vectorize (SSE2/AVX2/AVX-512, whatever the compiled function targets): exp, cos/sin(pi x) and
// the n2p2 cutoff functions. Accurate to a few ulp in double precision (the tests compare the
// kernels with torch's own exp/cos at 1e-12 relative). Templates over the scalar type also run on
// the dual numbers of dual.h (derivatives); exp, sqrt and pow have dual overloads here. The scalar
// functions are BPNN_HD (host_device.h): a GPU thread runs the same code (cuda/acsf_device.h).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dual.h"
#include "host_device.h"

#if defined(__GNUC__)
#define BPNN_INLINE inline __attribute__((always_inline))
#else
#define BPNN_INLINE inline
#endif

namespace bpnn_math {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTanhScale = 2.2637537952253504;  // ((e + 1/e) / (e - 1/e))^3

BPNN_HD BPNN_INLINE double bits_to_double(uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

BPNN_HD BPNN_INLINE uint64_t double_to_bits(double value) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(value));
#else
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

BPNN_HD BPNN_INLINE uint32_t float_to_bits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

BPNN_HD BPNN_INLINE float bits_to_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// Horner's rule, highest power first: horner(c0, x, c1, .., cn) = c0 x^n + c1 x^(n-1) + .. + cn,
// in the precision of x. The coefficients are arguments (constants at every call, so it unrolls
// completely) rather than tables, which device code could not read.
template <typename real>
BPNN_HD BPNN_INLINE real horner(real p, real) {
  return p;
}
template <typename real, typename... Rest>
BPNN_HD BPNN_INLINE real horner(real p, real x, double c, Rest... rest) {
  return horner(p * x + real(c), x, rest...);
}

// exp(x): Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, degree-13 Taylor polynomial,
// 2^n built in the exponent bits. 0 below -708 (where exp is subnormal), clamped above 709.
BPNN_HD BPNN_INLINE double exp(double x) {
  constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double t = xc * kLog2e + kShifter;
  const double n = t - kShifter;
  const double r = (xc - n * kLn2Hi) - n * kLn2Lo;
  const double p = horner(1.0 / 6227020800.0, r, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                          1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                          1.0 / 6.0, 0.5, 1.0, 1.0);  // sum_k r^k / k!, k = 13..0
  // The low bits of t hold n (t = shifter + n exactly); (n + 1023) << 52 is 2^n.
  const double scale = bits_to_double((double_to_bits(t) + 1023u) << 52);
  return x < -708.0 ? 0.0 : p * scale;
}

// exp(x) in single precision: the same reduction, degree-7 polynomial; 0 below -87.
BPNN_HD BPNN_INLINE float exp(float x) {
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23
  constexpr float kLog2e = 1.44269504f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.428606765330187e-06f;
  const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float t = xc * kLog2e + kShifter;
  const float n = t - kShifter;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  const float p = horner(float(1.0 / 5040.0), r, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0,
                         1.0);  // sum_k r^k / k!, k = 7..0
  const float scale = bits_to_float((float_to_bits(t) + 127u) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

// exp of a dual: exp(v + eps d) = exp(v) + eps exp(v) d.
template <typename T>
BPNN_HD BPNN_INLINE bpnn_dual::Dual<T> exp(const bpnn_dual::Dual<T>& x) {
  const T e = exp(x.v);
  return {e, e * x.d};
}

// sqrt and pow (base > 0) of reals and duals, so that the kernels' templates call one name.
#if defined(__CUDA_ARCH__)
BPNN_HD BPNN_INLINE double sqrt(double x) { return ::sqrt(x); }
BPNN_HD BPNN_INLINE float sqrt(float x) { return ::sqrtf(x); }
#else
BPNN_HD BPNN_INLINE double sqrt(double x) { return std::sqrt(x); }
BPNN_HD BPNN_INLINE float sqrt(float x) { return std::sqrt(x); }
#endif
template <typename T>
BPNN_HD BPNN_INLINE bpnn_dual::Dual<T> sqrt(const bpnn_dual::Dual<T>& x) {
  const T s = sqrt(x.v);
  return {s, x.d / (T(2.0) * s)};
}
#if defined(__CUDA_ARCH__)
BPNN_HD BPNN_INLINE double pow(double x, double p) { return ::pow(x, p); }
BPNN_HD BPNN_INLINE float pow(float x, float p) { return ::powf(x, p); }
#else
BPNN_HD BPNN_INLINE double pow(double x, double p) { return std::pow(x, p); }
BPNN_HD BPNN_INLINE float pow(float x, float p) { return std::pow(x, p); }
#endif
template <typename T>
BPNN_HD BPNN_INLINE bpnn_dual::Dual<T> pow(const bpnn_dual::Dual<T>& x, const bpnn_dual::Dual<T>& p) {  // p: a constant
  const T y = pow(x.v, p.v);
  return {y, p.v * y / x.v * x.d};
}

// cos(pi x) and sin(pi x) for x in [0, 1] (clamped): with v = pi (x - 1/2) in [-pi/2, pi/2],
// cos(pi x) = -sin(v) and sin(pi x) = cos(v), both by Taylor series to v^21 / v^22.
template <typename real>
BPNN_HD BPNN_INLINE void cos_sin_pi(real x, real& c, real& s) {
  const real xc = x < real(0) ? real(0) : (x > real(1) ? real(1) : x);
  const real v = real(kPi) * (xc - real(0.5));
  const real v2 = v * v;
  // sin(v) / v = sum_n (-1)^n v^2n / (2n + 1)!, in powers of v^2 from v^20 down
  const real sv = horner(real(1.0 / 51090942171709440000.0), v2, -1.0 / 121645100408832000.0,
                         1.0 / 355687428096000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0,
                         1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0, 1.0);
  // cos(v) = sum_n (-1)^n v^2n / (2n)!, in powers of v^2 from v^22 down
  const real cv = horner(real(-1.0 / 1124000727777607680000.0), v2, 1.0 / 2432902008176640000.0,
                         -1.0 / 6402373705728000.0, 1.0 / 20922789888000.0, -1.0 / 87178291200.0,
                         1.0 / 479001600.0, -1.0 / 3628800.0, 1.0 / 40320.0, -1.0 / 720.0, 1.0 / 24.0, -0.5, 1.0);
  c = -sv * v;
  s = cv;
}

// f_c(r) and df_c/dr for n2p2 cutoff types 0..8 (bpnn_ts/model/cutoffs.py has the formulas); 0 for
// r >= rc. `kind` is a template argument so that callers loop over r with no branch inside.
template <int kind, typename real>
BPNN_HD BPNN_INLINE void cutoff(real r, real rc, real inv_rc, real alpha, real& f, real& slope) {
  const bool inside = r < rc;
  real value = real(1.0), d = real(0.0);
  if (kind == 2 || kind == 3) {
    const real e = bpnn_math::exp(-real(2.0) * (real(1.0) - r * inv_rc));  // tanh(u) = (1 - e^-2u) / (1 + e^-2u)
    const real t = (real(1.0) - e) / (real(1.0) + e);
    const real scale = kind == 3 ? real(kTanhScale) : real(1.0);
    value = scale * t * t * t;
    d = -real(3.0) * scale * t * t * (real(1.0) - t * t) * inv_rc;
  } else if (kind != 0) {
    const real rci = alpha * rc;
    const real width = rc - rci;
    const real x_raw = (r - rci) / width;
    const bool flat = x_raw <= real(0.0);
    const real x = flat ? real(0.0) : (x_raw > real(1.0) ? real(1.0) : x_raw);
    real dfdx = real(0.0);
    if (kind == 1) {
      real c, s;
      cos_sin_pi(x, c, s);
      value = real(0.5) * (c + real(1.0));
      dfdx = -real(0.5) * real(kPi) * s;
    } else if (kind == 4) {
      const real one_minus = x < real(1.0) ? real(1.0) - x * x : real(1.0);
      value = x < real(1.0) ? bpnn_math::exp(real(1.0) - real(1.0) / one_minus) : real(0.0);
      dfdx = -real(2.0) * x * value / (one_minus * one_minus);
    } else if (kind == 5) {
      value = (real(2.0) * x - real(3.0)) * x * x + real(1.0);
      dfdx = real(6.0) * x * (x - real(1.0));
    } else if (kind == 6) {
      value = ((real(15.0) - real(6.0) * x) * x - real(10.0)) * x * x * x + real(1.0);
      const real xm = x * (x - real(1.0));
      dfdx = -real(30.0) * xm * xm;
    } else if (kind == 7) {
      const real x2 = x * x;
      value = (x * (x * (real(20.0) * x - real(70.0)) + real(84.0)) - real(35.0)) * x2 * x2 + real(1.0);
      const real xm = x * (x - real(1.0));
      dfdx = real(140.0) * xm * xm * xm;
    } else if (kind == 8) {
      const real x2 = x * x;
      value = (x * (x * ((real(315.0) - real(70.0) * x) * x - real(540.0)) + real(420.0)) - real(126.0)) * x2 * x2 * x + real(1.0);
      const real xm = x * (x - real(1.0));
      dfdx = -real(630.0) * xm * xm * xm * xm;
    }
    value = flat ? real(1.0) : value;
    d = flat ? real(0.0) : dfdx / width;
  }
  f = inside ? value : real(0.0);
  slope = inside ? d : real(0.0);
}

template <int kind, typename real>
BPNN_INLINE void cutoff_loop(const real* r, int64_t n, real rc, real alpha, real* f, real* slope) {
  const real inv_rc = real(1) / rc;
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) cutoff<kind, real>(r[t], rc, inv_rc, alpha, f[t], slope[t]);
}

// f[t], slope[t] = f_c(r[t]), df_c/dr(r[t]) for t < n, cutoff type `kind` (0..8).
template <typename real>
BPNN_INLINE void cutoff_array(int kind, const real* r, int64_t n, real rc, real alpha, real* f, real* slope) {
  switch (kind) {
    case 0: cutoff_loop<0, real>(r, n, rc, alpha, f, slope); break;
    case 1: cutoff_loop<1, real>(r, n, rc, alpha, f, slope); break;
    case 2: cutoff_loop<2, real>(r, n, rc, alpha, f, slope); break;
    case 3: cutoff_loop<3, real>(r, n, rc, alpha, f, slope); break;
    case 4: cutoff_loop<4, real>(r, n, rc, alpha, f, slope); break;
    case 5: cutoff_loop<5, real>(r, n, rc, alpha, f, slope); break;
    case 6: cutoff_loop<6, real>(r, n, rc, alpha, f, slope); break;
    case 7: cutoff_loop<7, real>(r, n, rc, alpha, f, slope); break;
    case 8: cutoff_loop<8, real>(r, n, rc, alpha, f, slope); break;
    default: throw std::invalid_argument("bpnn: unknown cutoff type " + std::to_string(kind));
  }
}

}  // namespace bpnn_math
