// The element networks of bpnn::evaluate (evaluate_cpu.cpp), as the per-centre step of its pass
// over centres (CentreNetwork, cpu_ops.h): input scaling, every committee member's network
// forward and its hand-written backpropagation (nn.py's ElementMLP.output_and_gradient, in the
// model's dtype), their mean, and the extrapolation count (Scaling.count_outside).
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "cpu_ops.h"

namespace bpnn_cpu {
namespace {  // internal linkage: each translation unit that runs them has its own copy

// y = f(x) and dy/dx of activation `code` as nn.py's activate_with_slope computes them.
template <typename T>
inline void activate(int64_t code, T x, T& y, T& slope) {
  switch (code) {
    case 0: y = x; slope = T(1); return;
    case 1: y = std::tanh(x); slope = T(1) - y * y; return;
    case 2: y = T(1) / (T(1) + std::exp(-x)); slope = y * (T(1) - y); return;
    case 3:
    case 10: {
      const T e = std::exp(x > T(35) ? T(0) : x);
      y = x > T(35) ? x : (x < T(-35) ? T(0) : std::log1p(e));
      slope = x > T(35) ? T(1) : (x < T(-35) ? T(0) : e / (T(1) + e));
      if (code == 10) y -= T(0.6931471805599453);
      return;
    }
    case 4: y = x > T(0) ? x : T(0); slope = x > T(0) ? T(1) : T(0); return;
    case 5: y = std::exp(T(-0.5) * x * x); slope = -x * y; return;
    case 6: y = std::cos(x); slope = -std::sin(x); return;
    case 7: {
      const T s = T(1) / (T(1) + std::exp(-x));
      y = T(1) - s;
      slope = -s * (T(1) - s);
      return;
    }
    case 8: y = std::exp(-x); slope = -y; return;
    case 9: y = x * x; slope = T(2) * x; return;
    case 11: {
      const T s = T(1) / (T(1) + std::exp(-x));
      y = x * s;
      slope = s * (T(1) + x * (T(1) - s));
      return;
    }
    default: TORCH_CHECK(false, "bpnn: unknown activation code ", code);
  }
}

template <typename T>
struct Layer {
  const T* weight;  // (n_out, n_in)
  const T* bias;    // (n_out,)
  int64_t n_in, n_out;
};

// One element's input scaling and networks (one per committee member), as CentreNetwork: energies
// and extrapolation counts per centre kept in `energies` and `counts`.
template <typename T>
class ElementNetworks : public CentreNetwork {
 public:
  ElementNetworks(std::vector<std::vector<Layer<T>>> members, const std::vector<int64_t>& activations,
                  const std::vector<const T*>& scaling, int64_t n_functions, double energy_scale, double energy_shift,
                  bool count_extrapolation, double* energies, int64_t* counts)
      : members_(std::move(members)), activations_(activations), shift_(scaling[0]), factor_(scaling[1]),
        offset_(scaling[2]), g_min_(scaling[3]), g_max_(scaling[4]), n_functions_(n_functions),
        energy_scale_(energy_scale), energy_shift_(energy_shift), count_(count_extrapolation),
        energies_(energies), counts_(counts) {
    widest_ = n_functions;
    for (const Layer<T>& layer : members_[0]) widest_ = std::max(widest_, layer.n_out);
  }

  void slopes(int64_t b, const double* g, double* d_g) override {
    thread_local std::vector<T> input, values, slope, grad, next;
    const int64_t n_f = n_functions_, n_layers = static_cast<int64_t>(activations_.size());
    input.resize(n_f);
    values.resize(n_layers * widest_);
    slope.resize(n_layers * widest_);
    grad.resize(widest_);
    next.resize(widest_);
    if (count_) counts_[b] = outside(g);
    for (int64_t f = 0; f < n_f; ++f) input[f] = (static_cast<T>(g[f]) - shift_[f]) * factor_[f] + offset_[f];
    for (int64_t f = 0; f < n_f; ++f) d_g[f] = 0.0;
    double output = 0.0;
    for (const std::vector<Layer<T>>& layers : members_) {
      const T* x = input.data();
      for (int64_t l = 0; l < n_layers; ++l) {  // forward
        const Layer<T>& layer = layers[l];
        T* y = values.data() + l * widest_;
        T* s = slope.data() + l * widest_;
        for (int64_t o = 0; o < layer.n_out; ++o) {
          const T* w = layer.weight + o * layer.n_in;
          T z = layer.bias[o];
          for (int64_t i = 0; i < layer.n_in; ++i) z += w[i] * x[i];
          activate(activations_[l], z, y[o], s[o]);
        }
        x = y;
      }
      output += static_cast<double>(values[(n_layers - 1) * widest_]);
      // backward: dy/dx of the output, layer by layer (ElementMLP.output_and_gradient)
      const Layer<T>& last = layers[n_layers - 1];
      const T top = slope[(n_layers - 1) * widest_];
      for (int64_t i = 0; i < last.n_in; ++i) grad[i] = top * last.weight[i];
      for (int64_t l = n_layers - 2; l >= 0; --l) {
        const Layer<T>& layer = layers[l];
        const T* s = slope.data() + l * widest_;
        if (activations_[l] != 0) {
          for (int64_t o = 0; o < layer.n_out; ++o) grad[o] *= s[o];
        }
        for (int64_t i = 0; i < layer.n_in; ++i) next[i] = T(0);
        for (int64_t o = 0; o < layer.n_out; ++o) {
          const T* w = layer.weight + o * layer.n_in;
          const T go = grad[o];
          for (int64_t i = 0; i < layer.n_in; ++i) next[i] += go * w[i];
        }
        std::swap(grad, next);
      }
      for (int64_t f = 0; f < n_f; ++f) d_g[f] += static_cast<double>(grad[f]);
    }
    const double members = static_cast<double>(members_.size());
    energies_[b] = static_cast<double>(static_cast<T>(output / members) * static_cast<T>(energy_scale_) +
                                       static_cast<T>(energy_shift_));
    for (int64_t f = 0; f < n_f; ++f) {
      d_g[f] = static_cast<double>(static_cast<T>(d_g[f] / members) * static_cast<T>(energy_scale_) * factor_[f]);
    }
  }

 private:
  // Functions outside [Gmin, Gmax] beyond rounding (Scaling.count_outside).
  int64_t outside(const double* g) const {
    const T relative = sizeof(T) == sizeof(double) ? T(1e-9) : T(1e-5);
    int64_t n = 0;
    for (int64_t f = 0; f < n_functions_; ++f) {
      const T width = g_max_[f] - g_min_[f];
      const T tolerance = std::abs(width) * relative;
      const T value = static_cast<T>(g[f]);
      const bool out = value < g_min_[f] - tolerance || value > g_max_[f] + tolerance;
      const bool checked = factor_[f] != T(0) || width <= T(0);
      n += out && checked ? 1 : 0;
    }
    return n;
  }

  std::vector<std::vector<Layer<T>>> members_;
  std::vector<int64_t> activations_;
  const T *shift_, *factor_, *offset_, *g_min_, *g_max_;
  int64_t n_functions_, widest_ = 0;
  double energy_scale_, energy_shift_;
  bool count_;
  double* energies_;
  int64_t* counts_;
};

}  // namespace
}  // namespace bpnn_cpu
