// Autograd of the ACSF ops (registered for the Autograd key in register.cpp, so C++ engines
// differentiate them as Python does). With the pair vectors r, G = acsf(r), and tangent lists
// T = (t_1 .. t_n), n <= 2, write
//   A(r; T)      = d^nG[T]                    acsf (n = 0) or acsf_jvp(u = T)
//   B(r; d; T)   = d^n(sum_f d_f dG_f/dr)[T]  acsf_backward (n = 0) or acsf_backward_jvp(u = T)
// Then, for an output gradient g (the third derivatives of G are symmetric):
//   A(r; T):    grad r = B(r; g; T),       grad t_k = B(r; g; T without t_k)
//   B(r; d; T): grad r = B(r; d; T + g),   grad d = A(r; T + g),   grad t_k = B(r; d; T with t_k = g)
// so everything is differentiable once more, up to B with two tangents (the third derivative of
// G), whose derivatives in r and d (fourth order) are not implemented and say so. The offsets,
// species and parameter tables get no gradient. Every call in a backward goes through the
// dispatcher, so it is recorded for double backward.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace bpnn_autograd {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kMostTangents = 2;  // the kernels' nested duals (dual.h): up to two directions

// The arguments every ACSF op takes besides the vectors and its own tensors (offsets .. cutoff_alpha),
// and the ops called with them.
struct Arguments {
  Tensor offsets, species, radial, angular;
  int64_t n_functions, n_species, cutoff_type;
  double cutoff_alpha;

  void save(AutogradContext* ctx) const {
    ctx->saved_data["offsets"] = offsets;
    ctx->saved_data["species"] = species;
    ctx->saved_data["radial"] = radial;
    ctx->saved_data["angular"] = angular;
    ctx->saved_data["n_functions"] = n_functions;
    ctx->saved_data["n_species"] = n_species;
    ctx->saved_data["cutoff_type"] = cutoff_type;
    ctx->saved_data["cutoff_alpha"] = cutoff_alpha;
  }

  static Arguments load(AutogradContext* ctx) {
    auto& d = ctx->saved_data;
    return {d["offsets"].toTensor(), d["species"].toTensor(), d["radial"].toTensor(), d["angular"].toTensor(),
            d["n_functions"].toInt(), d["n_species"].toInt(), d["cutoff_type"].toInt(), d["cutoff_alpha"].toDouble()};
  }

  // A(r; tangents) and B(r; d; tangents) through the dispatcher, tangents stacked as u (n, P, 3).
  Tensor a(const Tensor& vectors, const std::vector<Tensor>& tangents) const {
    if (tangents.empty()) {
      static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("bpnn::acsf", "").typed<AcsfSignature>();
      return op.call(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha);
    }
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("bpnn::acsf_jvp", "").typed<JvpSignature>();
    return op.call(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha,
                   torch::stack(tangents));
  }

  Tensor b(const Tensor& vectors, const Tensor& d_g, const std::vector<Tensor>& tangents) const {
    if (tangents.empty()) {
      static auto op =
          c10::Dispatcher::singleton().findSchemaOrThrow("bpnn::acsf_backward", "").typed<JvpSignature>();
      return op.call(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha,
                     d_g);
    }
    static auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("bpnn::acsf_backward_jvp", "").typed<BackwardJvpSignature>();
    return op.call(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha, d_g,
                   torch::stack(tangents));
  }

  using AcsfSignature = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                               int64_t, int64_t, double);
  using JvpSignature = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                              int64_t, int64_t, double, const Tensor&);  // also acsf_backward's
  using BackwardJvpSignature = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      int64_t, int64_t, int64_t, double, const Tensor&, const Tensor&);
};

// The directions u (P, 3) or (n, P, 3) as a list, and a gradient list back in the shape of u.
inline std::vector<Tensor> unstack(const Tensor& u) { return u.dim() == 2 ? std::vector<Tensor>{u} : u.unbind(0); }
inline Tensor restack(const std::vector<Tensor>& grads, const Tensor& u) {
  return (u.dim() == 2 ? grads[0] : torch::stack(grads)).to(u.scalar_type());
}

inline void check_order(size_t n_tangents) {
  TORCH_CHECK(static_cast<int64_t>(n_tangents) <= kMostTangents,
              "bpnn: the fused ACSF kernels have derivatives up to the third order of G in the pair vectors (two "
              "directions); this needs ", n_tangents, " (use the torch path: use_native_kernels(False))");
}

// G = A(r; ()).
struct Acsf : torch::autograd::Function<Acsf> {
  static Tensor forward(AutogradContext* ctx, const Tensor& vectors, const Arguments& args) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({vectors});
    args.save(ctx);
    return args.a(vectors, {});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Arguments args = Arguments::load(ctx);
    const Tensor vectors = ctx->get_saved_variables()[0];
    return {args.b(vectors, grads[0], {}), Tensor()};
  }
};

// A(r; T), T from u (P, 3) or (n, P, 3).
struct AcsfJvp : torch::autograd::Function<AcsfJvp> {
  static Tensor forward(AutogradContext* ctx, const Tensor& vectors, const Tensor& u, const Arguments& args) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({vectors, u});
    args.save(ctx);
    return args.a(vectors, unstack(u));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Arguments args = Arguments::load(ctx);
    const auto saved = ctx->get_saved_variables();
    const Tensor &vectors = saved[0], &u = saved[1], &g = grads[0];
    const std::vector<Tensor> tangents = unstack(u);
    Tensor grad_vectors, grad_u;
    if (ctx->needs_input_grad(0)) grad_vectors = args.b(vectors, g, tangents);
    if (ctx->needs_input_grad(1)) {
      std::vector<Tensor> per_direction;
      for (size_t k = 0; k < tangents.size(); ++k) {
        std::vector<Tensor> others = tangents;
        others.erase(others.begin() + static_cast<int64_t>(k));
        per_direction.push_back(args.b(vectors, g, others));
      }
      grad_u = restack(per_direction, u);
    }
    return {grad_vectors, grad_u, Tensor()};
  }
};

// B(r; d_g; T), T from u (P, 3) or (n, P, 3), or none (acsf_backward).
struct AcsfBackward : torch::autograd::Function<AcsfBackward> {
  static Tensor forward(AutogradContext* ctx, const Tensor& vectors, const Tensor& d_g,
                        const c10::optional<Tensor>& u, const Arguments& args) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({vectors, d_g, u.value_or(Tensor())});
    args.save(ctx);
    return args.b(vectors, d_g, u ? unstack(*u) : std::vector<Tensor>{});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Arguments args = Arguments::load(ctx);
    const auto saved = ctx->get_saved_variables();
    const Tensor &vectors = saved[0], &d_g = saved[1], &u = saved[2], &g = grads[0];
    const std::vector<Tensor> tangents = u.defined() ? unstack(u) : std::vector<Tensor>{};
    std::vector<Tensor> and_g = tangents;
    and_g.push_back(g);
    Tensor grad_vectors, grad_d_g, grad_u;
    if (ctx->needs_input_grad(0)) {
      check_order(and_g.size());
      grad_vectors = args.b(vectors, d_g, and_g);
    }
    if (ctx->needs_input_grad(1)) {
      check_order(and_g.size());
      grad_d_g = args.a(vectors, and_g).to(d_g.scalar_type());
    }
    if (u.defined() && ctx->needs_input_grad(2)) {
      std::vector<Tensor> per_direction;
      for (size_t k = 0; k < tangents.size(); ++k) {
        std::vector<Tensor> swapped = tangents;
        swapped[k] = g;
        per_direction.push_back(args.b(vectors, d_g, swapped));
      }
      grad_u = restack(per_direction, u);
    }
    return {grad_vectors, grad_d_g, grad_u, Tensor()};
  }
};

// The Autograd-key kernels, one per op schema.
inline Tensor acsf(const Tensor& vectors, const Tensor& offsets, const Tensor& species, const Tensor& radial,
                   const Tensor& angular, int64_t n_functions, int64_t n_species, int64_t cutoff_type,
                   double cutoff_alpha) {
  const Arguments args{offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha};
  return Acsf::apply(vectors, args);
}

inline Tensor acsf_backward(const Tensor& vectors, const Tensor& offsets, const Tensor& species, const Tensor& radial,
                            const Tensor& angular, int64_t n_functions, int64_t n_species, int64_t cutoff_type,
                            double cutoff_alpha, const Tensor& d_g) {
  const Arguments args{offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha};
  return AcsfBackward::apply(vectors, d_g, c10::optional<Tensor>(), args);
}

inline Tensor acsf_jvp(const Tensor& vectors, const Tensor& offsets, const Tensor& species, const Tensor& radial,
                       const Tensor& angular, int64_t n_functions, int64_t n_species, int64_t cutoff_type,
                       double cutoff_alpha, const Tensor& u) {
  const Arguments args{offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha};
  return AcsfJvp::apply(vectors, u, args);
}

inline Tensor acsf_backward_jvp(const Tensor& vectors, const Tensor& offsets, const Tensor& species,
                                const Tensor& radial, const Tensor& angular, int64_t n_functions, int64_t n_species,
                                int64_t cutoff_type, double cutoff_alpha, const Tensor& d_g, const Tensor& u) {
  const Arguments args{offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha};
  return AcsfBackward::apply(vectors, d_g, c10::optional<Tensor>(u), args);
}

}  // namespace bpnn_autograd
