// Branch-free elementwise maths for the ACSF kernels, written so that loops over neighbours
// vectorize (SSE2/AVX2/AVX-512, whatever the compiled function targets): exp, cos/sin(pi x) and
// the n2p2 cutoff functions. Accurate to a few ulp in double precision (the tests compare the
// kernels with torch's own exp/cos at 1e-12 relative).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__GNUC__)
#define BPNN_INLINE inline __attribute__((always_inline))
#else
#define BPNN_INLINE inline
#endif

namespace bpnn_math {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTanhScale = 2.2637537952253504;  // ((e + 1/e) / (e - 1/e))^3

BPNN_INLINE double bits_to_double(uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

BPNN_INLINE uint64_t double_to_bits(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// exp(x): Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, degree-13 Taylor polynomial,
// 2^n built in the exponent bits. 0 below -708 (where exp is subnormal), clamped above 709.
BPNN_INLINE double exp(double x) {
  constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double t = xc * kLog2e + kShifter;
  const double n = t - kShifter;
  const double r = (xc - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // The low bits of t hold n (t = shifter + n exactly); (n + 1023) << 52 is 2^n.
  const double scale = bits_to_double((double_to_bits(t) + 1023u) << 52);
  return x < -708.0 ? 0.0 : p * scale;
}

// cos(pi x) and sin(pi x) for x in [0, 1] (clamped): with v = pi (x - 1/2) in [-pi/2, pi/2],
// cos(pi x) = -sin(v) and sin(pi x) = cos(v), both by Taylor series to v^21 / v^22.
BPNN_INLINE void cos_sin_pi(double x, double& c, double& s) {
  const double xc = x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x);
  const double v = kPi * (xc - 0.5);
  const double v2 = v * v;
  double sv = 1.0 / 51090942171709440000.0;  // sin(v) / v = sum_n (-1)^n v^2n / (2n + 1)!
  sv = sv * v2 - 1.0 / 121645100408832000.0;
  sv = sv * v2 + 1.0 / 355687428096000.0;
  sv = sv * v2 - 1.0 / 1307674368000.0;
  sv = sv * v2 + 1.0 / 6227020800.0;
  sv = sv * v2 - 1.0 / 39916800.0;
  sv = sv * v2 + 1.0 / 362880.0;
  sv = sv * v2 - 1.0 / 5040.0;
  sv = sv * v2 + 1.0 / 120.0;
  sv = sv * v2 - 1.0 / 6.0;
  sv = sv * v2 + 1.0;
  double cv = -1.0 / 1124000727777607680000.0;  // cos(v) = sum_n (-1)^n v^2n / (2n)!
  cv = cv * v2 + 1.0 / 2432902008176640000.0;
  cv = cv * v2 - 1.0 / 6402373705728000.0;
  cv = cv * v2 + 1.0 / 20922789888000.0;
  cv = cv * v2 - 1.0 / 87178291200.0;
  cv = cv * v2 + 1.0 / 479001600.0;
  cv = cv * v2 - 1.0 / 3628800.0;
  cv = cv * v2 + 1.0 / 40320.0;
  cv = cv * v2 - 1.0 / 720.0;
  cv = cv * v2 + 1.0 / 24.0;
  cv = cv * v2 - 0.5;
  cv = cv * v2 + 1.0;
  c = -sv * v;
  s = cv;
}

// f_c(r) and df_c/dr for n2p2 cutoff types 0..8 (bpnn_ts/cutoffs.py has the formulas); 0 for
// r >= rc. `kind` is a template argument so that callers loop over r with no branch inside.
template <int kind>
BPNN_INLINE void cutoff(double r, double rc, double inv_rc, double alpha, double& f, double& slope) {
  const bool inside = r < rc;
  double value = 1.0, d = 0.0;
  if (kind == 2 || kind == 3) {
    const double e = bpnn_math::exp(-2.0 * (1.0 - r * inv_rc));  // tanh(u) = (1 - e^-2u) / (1 + e^-2u)
    const double t = (1.0 - e) / (1.0 + e);
    const double scale = kind == 3 ? kTanhScale : 1.0;
    value = scale * t * t * t;
    d = -3.0 * scale * t * t * (1.0 - t * t) * inv_rc;
  } else if (kind != 0) {
    const double rci = alpha * rc;
    const double width = rc - rci;
    const double x_raw = (r - rci) / width;
    const bool flat = x_raw <= 0.0;
    const double x = flat ? 0.0 : (x_raw > 1.0 ? 1.0 : x_raw);
    double dfdx = 0.0;
    if (kind == 1) {
      double c, s;
      cos_sin_pi(x, c, s);
      value = 0.5 * (c + 1.0);
      dfdx = -0.5 * kPi * s;
    } else if (kind == 4) {
      const double one_minus = x < 1.0 ? 1.0 - x * x : 1.0;
      value = x < 1.0 ? bpnn_math::exp(1.0 - 1.0 / one_minus) : 0.0;
      dfdx = -2.0 * x * value / (one_minus * one_minus);
    } else if (kind == 5) {
      value = (2.0 * x - 3.0) * x * x + 1.0;
      dfdx = 6.0 * x * (x - 1.0);
    } else if (kind == 6) {
      value = ((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0;
      const double xm = x * (x - 1.0);
      dfdx = -30.0 * xm * xm;
    } else if (kind == 7) {
      const double x2 = x * x;
      value = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0;
      const double xm = x * (x - 1.0);
      dfdx = 140.0 * xm * xm * xm;
    } else if (kind == 8) {
      const double x2 = x * x;
      value = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0;
      const double xm = x * (x - 1.0);
      dfdx = -630.0 * xm * xm * xm * xm;
    }
    value = flat ? 1.0 : value;
    d = flat ? 0.0 : dfdx / width;
  }
  f = inside ? value : 0.0;
  slope = inside ? d : 0.0;
}

template <int kind>
BPNN_INLINE void cutoff_loop(const double* r, int64_t n, double rc, double alpha, double* f, double* slope) {
  const double inv_rc = 1.0 / rc;
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) cutoff<kind>(r[t], rc, inv_rc, alpha, f[t], slope[t]);
}

// f[t], slope[t] = f_c(r[t]), df_c/dr(r[t]) for t < n, cutoff type `kind` (0..8).
BPNN_INLINE void cutoff_array(int kind, const double* r, int64_t n, double rc, double alpha, double* f, double* slope) {
  switch (kind) {
    case 0: cutoff_loop<0>(r, n, rc, alpha, f, slope); break;
    case 1: cutoff_loop<1>(r, n, rc, alpha, f, slope); break;
    case 2: cutoff_loop<2>(r, n, rc, alpha, f, slope); break;
    case 3: cutoff_loop<3>(r, n, rc, alpha, f, slope); break;
    case 4: cutoff_loop<4>(r, n, rc, alpha, f, slope); break;
    case 5: cutoff_loop<5>(r, n, rc, alpha, f, slope); break;
    case 6: cutoff_loop<6>(r, n, rc, alpha, f, slope); break;
    case 7: cutoff_loop<7>(r, n, rc, alpha, f, slope); break;
    case 8: cutoff_loop<8>(r, n, rc, alpha, f, slope); break;
    default: throw std::invalid_argument("bpnn: unknown cutoff type " + std::to_string(kind));
  }
}

}  // namespace bpnn_math
