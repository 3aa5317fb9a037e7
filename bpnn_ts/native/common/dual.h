// Forward-mode dual numbers for the ACSF kernels' derivatives: Dual<T> is value + eps tangent
// (eps^2 = 0), so the per-centre code of cpu/acsf_centre.h, run on Dual<double> with the pair vectors
// r + eps u, returns G(r) + eps dG[u] (and its backward sum_f d_g_f d^2G_f/dr dr . u, the
// Hessian-vector product). Nested, Dual<Dual<double>> with r + eps_0 u_0 + eps_1 u_1 gives the
// mixed second derivatives (d^2G[u_0, u_1], the third derivative of d_g . G). Arithmetic and
// comparisons only (comparisons look at the value: branches follow the point r); exp, sqrt and
// pow of duals are in acsf_math.h beside their real versions. All of it is BPNN_HD (host_device.h):
// the GPU threads of cuda/acsf_device.h run it too.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace bpnn_dual {

template <typename T>
struct Dual {
  T v{}, d{};  // value, tangent

  Dual() = default;
  BPNN_HD constexpr Dual(double value) : v(value), d(0.0) {}  // NOLINT: a constant is a dual with no tangent
  BPNN_HD constexpr Dual(T value, T tangent) : v(value), d(tangent) {}

  BPNN_HD friend constexpr Dual operator+(const Dual& a, const Dual& b) { return {a.v + b.v, a.d + b.d}; }
  BPNN_HD friend constexpr Dual operator-(const Dual& a, const Dual& b) { return {a.v - b.v, a.d - b.d}; }
  BPNN_HD friend constexpr Dual operator*(const Dual& a, const Dual& b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
  BPNN_HD friend constexpr Dual operator/(const Dual& a, const Dual& b) {
    const T q = a.v / b.v;
    return {q, (a.d - q * b.d) / b.v};
  }
  BPNN_HD friend constexpr Dual operator-(const Dual& a) { return {-a.v, -a.d}; }
  BPNN_HD Dual& operator+=(const Dual& b) { return *this = *this + b; }
  BPNN_HD Dual& operator-=(const Dual& b) { return *this = *this - b; }
  BPNN_HD Dual& operator*=(const Dual& b) { return *this = *this * b; }
  BPNN_HD Dual& operator/=(const Dual& b) { return *this = *this / b; }
  BPNN_HD friend constexpr bool operator<(const Dual& a, const Dual& b) { return a.v < b.v; }
  BPNN_HD friend constexpr bool operator>(const Dual& a, const Dual& b) { return a.v > b.v; }
  BPNN_HD friend constexpr bool operator<=(const Dual& a, const Dual& b) { return a.v <= b.v; }
  BPNN_HD friend constexpr bool operator>=(const Dual& a, const Dual& b) { return a.v >= b.v; }
  BPNN_HD friend constexpr bool operator==(const Dual& a, const Dual& b) { return a.v == b.v; }
  BPNN_HD friend constexpr bool operator!=(const Dual& a, const Dual& b) { return a.v != b.v; }
};

// `#pragma omp simd reduction(+ : sum)` over duals (cpu/acsf_centre.h) needs the reduction declared.
#pragma omp declare reduction(+ : Dual<double> : omp_out += omp_in) initializer(omp_priv = Dual<double>(0.0))
#pragma omp declare reduction(+ : Dual<Dual<double>> : omp_out += omp_in) \
    initializer(omp_priv = Dual<Dual<double>>(0.0))

// Number of tangent directions of a scalar type: 0 for double and float, 1 + that of T for Dual<T>.
template <typename real>
struct Depth {
  static constexpr int value = 0;
};
template <typename T>
struct Depth<Dual<T>> {
  static constexpr int value = 1 + Depth<T>::value;
};

// The type in which a centre's G is summed over rows: double for double and float (float
// kernels sum their rows in double), duals of it for duals.
template <typename real>
struct Sum {
  using type = double;
};
template <typename T>
struct Sum<Dual<T>> {
  using type = Dual<typename Sum<T>::type>;
};

// value + sum_k eps_k tangents[k][index]: one input coordinate moved along the Depth<real>
// directions (tangents[0] is the outermost dual's).
template <typename real>
struct Seed {
  static real at(double value, const double* const*, int64_t) { return static_cast<real>(value); }
  // The same with the directions stacked in one array (K, n) (the GPU kernels', acsf_device.h):
  // tangents[k][index] = directions[k * stride + index].
  BPNN_HD static real at_stacked(double value, const double*, int64_t, int64_t) { return static_cast<real>(value); }
};
template <typename T>
struct Seed<Dual<T>> {
  static Dual<T> at(double value, const double* const* tangents, int64_t index) {
    return {Seed<T>::at(value, tangents + 1, index), T(tangents[0][index])};
  }
  BPNN_HD static Dual<T> at_stacked(double value, const double* directions, int64_t stride, int64_t index) {
    return {Seed<T>::at_stacked(value, directions + stride, stride, index), T(directions[index])};
  }
};

// The mixed derivative along every direction: the innermost tangent of the outermost tangent.
BPNN_HD inline double mixed(double x) { return x; }
template <typename T>
BPNN_HD double mixed(const Dual<T>& x) {
  return mixed(x.d);
}

}  // namespace bpnn_dual
