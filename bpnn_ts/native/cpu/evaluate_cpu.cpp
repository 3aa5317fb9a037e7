// CPU kernel of bpnn::evaluate: a whole evaluation of one system in one op, what the TorchScript
// forward of a model with the fused kernels computes for a system without an engine's pair list
// (bpnn_ts/model/whole_evaluation.py builds the arguments): the neighbour search (neighbor_list.h),
// pair vectors, and per element one pass per centre (acsf_through_network: G, input scaling,
// the networks of every committee member and their hand-written backpropagation, the force
// contraction), then forces, virials and extrapolation counts. One op instead of ~300 small torch
// ops: a 3-atom molecule costs tens of microseconds, not hundreds.
//
// bpnn::evaluate_list does the same on an engine's pair list (pairs (2, P), integer shifts (P, 3),
// atoms from n_local on are ghosts: they carry no energy but receive forces; the pairs of local
// centres closer than the cutoff are used, as BPNNModel.forward does with such a list).
//
// Returns [] where the system needs the general path's checks and messages (positions or cell not
// finite, an element the model lacks, atoms closer than 1e-6 Å); else
//   [energy (), energies (n_local,), forces (N, 3), virial (3, 3), atomic virials (N, 3, 3),
//    extrapolation (n_local,) int64, closest pair (2,) int64, its distance ()]
// in the model's dtype (that of energy_shift), virials (0, ...) without compute_virial and
// extrapolation (0,) without count_extrapolation. Sums (forces, virials, energy) in float64.
//
// Arguments per element s (S elements, species order): radial[s], angular[s] its functions'
// tables (acsf_plan.h), n_functions[s]; scaling[5 s .. 5 s + 4] its shift, factor, offset, Gmin,
// Gmax (n_functions[s],) (G_hat = (G - shift) factor + offset; Scaling in scaling.py); layers:
// per element, per member, per layer weight (n_out, n_in) then bias (n_out,), input layer first;
// activations: one code per layer (nn.py's ACTIVATIONS), the same for every element.
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "../common/acsf_plan.h"
#include "cpu_ops.h"
#include "element_networks.h"
#include "neighbor_list.h"

namespace bpnn_cpu {
namespace {

bool all_finite(const torch::Tensor& t) {  // float64, contiguous
  const double* v = t.data_ptr<double>();
  for (int64_t k = 0; k < t.numel(); ++k) {
    if (!std::isfinite(v[k])) return false;
  }
  return true;
}

// The tensor `t` as a contiguous CPU tensor of `dtype` with `numel` elements, checked.
torch::Tensor table(const torch::Tensor& t, torch::ScalarType dtype, int64_t numel, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.numel() == numel, "bpnn::evaluate: ", what, " must hold ", numel,
              " values on the CPU, got ", t.sizes());
  return t.scalar_type() == dtype && t.is_contiguous() ? t : t.to(dtype).contiguous();  // (no op call if it is)
}

// The pairs that carry energy, grouped by centre (ascending), with their vectors (float64), and
// the closest pair of the whole list the search or the engine gave.
struct Pairs {
  std::vector<int64_t> centre, neighbour;
  std::vector<double> vectors;      // (P, 3) r_ij = R_j - R_i + shift @ cell
  std::vector<int64_t> first_pair;  // (n_local + 1,) pairs of centre a: first_pair[a] .. first_pair[a + 1] - 1
  int64_t closest_i = -1, closest_j = -1;
  double closest = std::numeric_limits<double>::infinity();
};

// Pairs from (centre, neighbour, shift) lists of `n` pairs; `keep_all`: the model's own search
// (grouped by centre, all within the cutoff), else an engine's list: the pairs of local centres
// (< n_local) closer than `cutoff` are kept, grouped by centre in their given order.
Pairs pairs_of(const int64_t* centre, const int64_t* neighbour, const int64_t* shift, int64_t n, const double* r,
               const double* c, int64_t n_local, double cutoff, bool keep_all) {
  Pairs out;
  std::vector<double> vectors(3 * n);
  std::vector<char> kept(n, 1);
  int64_t n_kept = 0, closest = -1;
  double closest_squared = std::numeric_limits<double>::infinity();
  for (int64_t p = 0; p < n; ++p) {
    const int64_t i = centre[p], j = neighbour[p];
    const double s0 = double(shift[3 * p]), s1 = double(shift[3 * p + 1]), s2 = double(shift[3 * p + 2]);
    double squared = 0.0;
    for (int k = 0; k < 3; ++k) {
      const double v = r[3 * j + k] - r[3 * i + k] + s0 * c[k] + s1 * c[3 + k] + s2 * c[6 + k];
      vectors[3 * p + k] = v;
      squared += v * v;
    }
    if (squared < closest_squared) {
      closest_squared = squared;
      closest = p;
    }
    if (!keep_all) kept[p] = i < n_local && squared < cutoff * cutoff;
    n_kept += kept[p];
  }
  out.closest = std::sqrt(closest_squared);
  if (closest >= 0) {
    out.closest_i = centre[closest];
    out.closest_j = neighbour[closest];
  }
  out.first_pair.assign(n_local + 1, 0);
  for (int64_t p = 0; p < n; ++p) {
    if (kept[p]) ++out.first_pair[centre[p] + 1];
  }
  for (int64_t a = 0; a < n_local; ++a) out.first_pair[a + 1] += out.first_pair[a];
  if (keep_all) {  // the search's list: grouped by centre already
    out.centre.assign(centre, centre + n);
    out.neighbour.assign(neighbour, neighbour + n);
    out.vectors = std::move(vectors);
    return out;
  }
  out.centre.resize(n_kept);
  out.neighbour.resize(n_kept);
  out.vectors.resize(3 * n_kept);
  std::vector<int64_t> next(out.first_pair.begin(), out.first_pair.end() - 1);
  for (int64_t p = 0; p < n; ++p) {  // a stable counting sort by centre
    if (!kept[p]) continue;
    const int64_t q = next[centre[p]]++;
    out.centre[q] = centre[p];
    out.neighbour[q] = neighbour[p];
    for (int k = 0; k < 3; ++k) out.vectors[3 * q + k] = vectors[3 * p + k];
  }
  return out;
}

template <typename T>
std::vector<torch::Tensor> evaluate_as(const Pairs& pair_data, int64_t n_atoms, int64_t n_local,
                                       const torch::Tensor& species_tensor, at::TensorList radial,
                                       at::TensorList angular, at::IntArrayRef n_functions, int64_t cutoff_type,
                                       double cutoff_alpha, at::TensorList scaling, at::TensorList layers,
                                       const std::vector<int64_t>& activations, int64_t n_members,
                                       double energy_scale, const torch::Tensor& energy_shift, bool compute_virial,
                                       bool count_extrapolation) {
  const auto dtype = c10::CppTypeToScalarType<T>::value;
  const auto options = torch::TensorOptions().dtype(dtype);
  const int64_t n_species = static_cast<int64_t>(n_functions.size());
  const int64_t* species = species_tensor.data_ptr<int64_t>();
  if (pair_data.closest < 1e-6) return {};  // overlapping atoms: the general path names them
  const int64_t n_pairs = static_cast<int64_t>(pair_data.centre.size());
  const int64_t* centre = pair_data.centre.data();
  const int64_t* neighbour = pair_data.neighbour.data();
  const std::vector<double>& vectors = pair_data.vectors;
  const std::vector<int64_t>& first_pair = pair_data.first_pair;

  std::vector<double> atom_energy(n_local, 0.0), pair_grad(3 * n_pairs, 0.0);
  auto counts = torch::empty({count_extrapolation ? n_local : 0}, torch::kInt64);
  int64_t* count = counts.data_ptr<int64_t>();
  const auto shifts64 = table(energy_shift, torch::kFloat64, n_species, "`energy_shift`");
  int64_t layer_index = 0;
  const int64_t n_layers = static_cast<int64_t>(activations.size());
  for (int64_t s = 0; s < n_species; ++s) {
    // this element's centres, their pairs grouped by centre
    std::vector<int64_t> atoms;
    for (int64_t a = 0; a < n_local; ++a) {
      if (species[a] == s) atoms.push_back(a);
    }
    std::vector<torch::Tensor> held;  // keeps converted weights alive
    std::vector<std::vector<Layer<T>>> members;
    for (int64_t m = 0; m < n_members; ++m) {
      std::vector<Layer<T>> own;
      int64_t width = n_functions[s];
      for (int64_t l = 0; l < n_layers; ++l) {
        const torch::Tensor weight = layers[layer_index++], bias = layers[layer_index++];
        TORCH_CHECK(weight.dim() == 2 && weight.size(1) == width && bias.dim() == 1 && bias.size(0) == weight.size(0),
                    "bpnn::evaluate: layer ", l, " of element ", s, " has weight ", weight.sizes(), " and bias ",
                    bias.sizes(), " after a layer of width ", width);
        held.push_back(table(weight, dtype, weight.numel(), "a weight"));
        held.push_back(table(bias, dtype, bias.numel(), "a bias"));
        own.push_back({held[held.size() - 2].data_ptr<T>(), held.back().data_ptr<T>(), width, weight.size(0)});
        width = weight.size(0);
      }
      TORCH_CHECK(width == 1, "bpnn::evaluate: the last layer of element ", s, " must have one output, got ", width);
      members.push_back(std::move(own));
    }
    if (atoms.empty()) continue;
    std::vector<const T*> scale;
    for (int k = 0; k < 5; ++k) {
      held.push_back(table(scaling[5 * s + k], dtype, n_functions[s], "a scaling table"));
      scale.push_back(held.back().data_ptr<T>());
    }
    const int64_t n_centres = static_cast<int64_t>(atoms.size());
    std::vector<int64_t> offsets(n_centres + 1, 0);
    for (int64_t b = 0; b < n_centres; ++b) {
      offsets[b + 1] = offsets[b] + first_pair[atoms[b] + 1] - first_pair[atoms[b]];
    }
    const int64_t n_own = offsets[n_centres];
    std::vector<T> own_vectors(3 * n_own), grad(3 * n_own);
    std::vector<int64_t> neighbour_species(n_own);
    for (int64_t b = 0; b < n_centres; ++b) {
      const int64_t p0 = first_pair[atoms[b]];
      for (int64_t q = 0; q < offsets[b + 1] - offsets[b]; ++q) {
        for (int k = 0; k < 3; ++k) own_vectors[3 * (offsets[b] + q) + k] = static_cast<T>(vectors[3 * (p0 + q) + k]);
        neighbour_species[offsets[b] + q] = species[neighbour[p0 + q]];
      }
    }
    std::vector<double> energies(n_centres);
    std::vector<int64_t> own_counts(count_extrapolation ? n_centres : 0);
    const auto plan = bpnn_plan::make_plan(radial[s], angular[s], n_species, cutoff_type, cutoff_alpha);
    ElementNetworks<T> networks(std::move(members), activations, scale, n_functions[s], energy_scale,
                                shifts64.data_ptr<double>()[s], count_extrapolation, energies.data(),
                                own_counts.data());
    acsf_through_network<T>(*plan, own_vectors.data(), offsets.data(), neighbour_species.data(), n_centres,
                            n_functions[s], networks, grad.data());
    for (int64_t b = 0; b < n_centres; ++b) {
      atom_energy[atoms[b]] = energies[b];
      if (count_extrapolation) count[atoms[b]] = own_counts[b];
      const int64_t p0 = first_pair[atoms[b]];
      for (int64_t q = 0; q < offsets[b + 1] - offsets[b]; ++q) {
        for (int k = 0; k < 3; ++k) pair_grad[3 * (p0 + q) + k] = static_cast<double>(grad[3 * (offsets[b] + q) + k]);
      }
    }
  }
  TORCH_CHECK(layer_index == static_cast<int64_t>(layers.size()), "bpnn::evaluate: ", layers.size(),
              " layer tensors given, ", layer_index, " used");

  // forces and virials from dE/dr_ij: F_i += g, F_j -= g, W = -sum r (x) g (half to i, half to j)
  std::vector<double> force(3 * n_atoms, 0.0), virial(9, 0.0), atomic(compute_virial ? 9 * n_atoms : 0, 0.0);
  for (int64_t p = 0; p < n_pairs; ++p) {
    const int64_t i = centre[p], j = neighbour[p];
    const double* g = pair_grad.data() + 3 * p;
    for (int k = 0; k < 3; ++k) {
      force[3 * i + k] += g[k];
      force[3 * j + k] -= g[k];
    }
    if (compute_virial) {
      const double* v = vectors.data() + 3 * p;
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b) {
          const double w = -v[a] * g[b];
          virial[3 * a + b] += w;
          atomic[9 * i + 3 * a + b] += 0.5 * w;
          atomic[9 * j + 3 * a + b] += 0.5 * w;
        }
      }
    }
  }
  double total = 0.0;
  for (int64_t a = 0; a < n_local; ++a) total += atom_energy[a];
  // outputs: allocated, then written (no op per element)
  const auto filled = [&](const std::vector<double>& values, std::vector<int64_t> shape) {
    auto out = torch::empty(shape, options);
    T* data = out.template data_ptr<T>();
    for (size_t k = 0; k < values.size(); ++k) data[k] = static_cast<T>(values[k]);
    return out;
  };
  auto pair = torch::empty({2}, torch::kInt64);
  pair.data_ptr<int64_t>()[0] = pair_data.closest_i;
  pair.data_ptr<int64_t>()[1] = pair_data.closest_j;
  return {filled({total}, {}), filled(atom_energy, {n_local}), filled(force, {n_atoms, 3}),
          filled(compute_virial ? virial : std::vector<double>(), {compute_virial ? 3 : 0, 3}),
          filled(atomic, {compute_virial ? n_atoms : 0, 3, 3}), counts, pair, filled({pair_data.closest}, {})};
}

}  // namespace

namespace {

// The checks and conversions of both entry points; the species of every atom, or an undefined
// tensor where the general path must take the system (an element the model lacks, NaN or inf).
torch::Tensor checked_species(const torch::Tensor& positions64, const torch::Tensor& cell64,
                              const torch::Tensor& atomic_numbers, const torch::Tensor& species_of_z,
                              at::TensorList radial, at::TensorList angular, at::IntArrayRef n_functions,
                              at::TensorList scaling, at::TensorList layers, at::IntArrayRef activations,
                              int64_t n_members, const torch::Tensor& energy_shift) {
  const int64_t n_species = static_cast<int64_t>(n_functions.size());
  TORCH_CHECK(atomic_numbers.dim() == 1 && atomic_numbers.size(0) == positions64.size(0),
              "bpnn::evaluate: `atomic_numbers` must be (N,), got ", atomic_numbers.sizes());
  TORCH_CHECK(static_cast<int64_t>(radial.size()) == n_species && static_cast<int64_t>(angular.size()) == n_species &&
                  static_cast<int64_t>(scaling.size()) == 5 * n_species && energy_shift.numel() == n_species,
              "bpnn::evaluate: per element one radial and one angular table, five scaling tables and one energy "
              "shift; got ", radial.size(), ", ", angular.size(), ", ", scaling.size(), " and ", energy_shift.numel(),
              " for ", n_species, " elements");
  TORCH_CHECK(n_members >= 1 && !activations.empty() &&
                  static_cast<int64_t>(layers.size()) == 2 * n_species * n_members * static_cast<int64_t>(activations.size()),
              "bpnn::evaluate: expected a weight and a bias per layer, member and element");
  TORCH_CHECK(energy_shift.scalar_type() == torch::kFloat64 || energy_shift.scalar_type() == torch::kFloat32,
              "bpnn::evaluate: the model's dtype must be float32 or float64, got ", energy_shift.scalar_type());
  if (!all_finite(positions64) || !all_finite(cell64)) return {};
  const auto z = table(atomic_numbers, torch::kInt64, atomic_numbers.numel(), "`atomic_numbers`");
  const auto table_of_z = table(species_of_z, torch::kInt64, species_of_z.numel(), "`species_of_z`");
  const int64_t* zs = z.data_ptr<int64_t>();
  const int64_t* of_z = table_of_z.data_ptr<int64_t>();
  auto species = torch::empty({positions64.size(0)}, torch::kInt64);
  int64_t* sp = species.data_ptr<int64_t>();
  for (int64_t a = 0; a < positions64.size(0); ++a) {
    if (zs[a] < 0 || zs[a] >= table_of_z.numel() || of_z[zs[a]] < 0) return {};
    sp[a] = of_z[zs[a]];
  }
  return species;
}

torch::Tensor checked_positions(const torch::Tensor& positions) {
  TORCH_CHECK(positions.device().is_cpu(), "bpnn::evaluate runs on the CPU only");
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3 && positions.is_floating_point(),
              "bpnn::evaluate: `positions` must be a floating-point (N, 3) tensor, got ", positions.sizes());
  return table(positions, torch::kFloat64, positions.numel(), "`positions`");
}

torch::Tensor checked_cell(const torch::Tensor& cell) {
  TORCH_CHECK(cell.dim() == 2 && cell.size(0) == 3 && cell.size(1) == 3, "bpnn::evaluate: `cell` must be (3, 3), got ",
              cell.sizes());
  return table(cell, torch::kFloat64, 9, "`cell`");
}

std::vector<torch::Tensor> evaluate_pairs(const Pairs& pairs, int64_t n_atoms, int64_t n_local,
                                          const torch::Tensor& species, at::TensorList radial,
                                          at::TensorList angular, at::IntArrayRef n_functions, int64_t cutoff_type,
                                          double cutoff_alpha, at::TensorList scaling, at::TensorList layers,
                                          at::IntArrayRef activations, int64_t n_members, double energy_scale,
                                          const torch::Tensor& energy_shift, bool compute_virial,
                                          bool count_extrapolation) {
  const std::vector<int64_t> codes(activations.begin(), activations.end());
  if (energy_shift.scalar_type() == torch::kFloat64) {
    return evaluate_as<double>(pairs, n_atoms, n_local, species, radial, angular, n_functions, cutoff_type,
                               cutoff_alpha, scaling, layers, codes, n_members, energy_scale, energy_shift,
                               compute_virial, count_extrapolation);
  }
  return evaluate_as<float>(pairs, n_atoms, n_local, species, radial, angular, n_functions, cutoff_type,
                            cutoff_alpha, scaling, layers, codes, n_members, energy_scale, energy_shift,
                            compute_virial, count_extrapolation);
}

}  // namespace

std::vector<torch::Tensor> evaluate(const torch::Tensor& positions, const torch::Tensor& atomic_numbers,
                                    const torch::Tensor& cell, const torch::Tensor& pbc,
                                    const torch::Tensor& species_of_z, double cutoff, at::TensorList radial,
                                    at::TensorList angular, at::IntArrayRef n_functions, int64_t cutoff_type,
                                    double cutoff_alpha, at::TensorList scaling, at::TensorList layers,
                                    at::IntArrayRef activations, int64_t n_members, double energy_scale,
                                    const torch::Tensor& energy_shift, bool compute_virial, bool count_extrapolation) {
  const auto positions64 = checked_positions(positions);
  const auto cell64 = checked_cell(cell);
  const auto species = checked_species(positions64, cell64, atomic_numbers, species_of_z, radial, angular,
                                       n_functions, scaling, layers, activations, n_members, energy_shift);
  if (!species.defined()) return {};
  const int64_t n_atoms = positions64.size(0);
  const auto found = bpnn_cells::neighbor_list(positions64, cell64, pbc, cutoff);
  const int64_t n_found = found[0].size(1);
  const Pairs pairs = pairs_of(found[0].data_ptr<int64_t>(), found[0].data_ptr<int64_t>() + n_found,
                               found[1].data_ptr<int64_t>(), n_found, positions64.data_ptr<double>(),
                               cell64.data_ptr<double>(), n_atoms, cutoff, true);
  return evaluate_pairs(pairs, n_atoms, n_atoms, species, radial, angular, n_functions, cutoff_type, cutoff_alpha,
                        scaling, layers, activations, n_members, energy_scale, energy_shift, compute_virial,
                        count_extrapolation);
}

std::vector<torch::Tensor> evaluate_list(const torch::Tensor& positions, const torch::Tensor& atomic_numbers,
                                         const torch::Tensor& cell, const torch::Tensor& pairs,
                                         const torch::Tensor& shifts, int64_t n_local,
                                         const torch::Tensor& species_of_z, double cutoff, at::TensorList radial,
                                         at::TensorList angular, at::IntArrayRef n_functions, int64_t cutoff_type,
                                         double cutoff_alpha, at::TensorList scaling, at::TensorList layers,
                                         at::IntArrayRef activations, int64_t n_members, double energy_scale,
                                         const torch::Tensor& energy_shift, bool compute_virial,
                                         bool count_extrapolation) {
  const auto positions64 = checked_positions(positions);
  const auto cell64 = checked_cell(cell);
  const int64_t n_atoms = positions64.size(0);
  TORCH_CHECK(pairs.dim() == 2 && pairs.size(0) == 2 && shifts.dim() == 2 && shifts.size(0) == pairs.size(1) &&
                  shifts.size(1) == 3,
              "bpnn::evaluate_list: `pairs` must be (2, P) and `shifts` (P, 3), got ", pairs.sizes(), " and ",
              shifts.sizes());
  TORCH_CHECK(n_local >= 0 && n_local <= n_atoms, "bpnn::evaluate_list: `n_local` must be in [0, ", n_atoms, "], got ",
              n_local);
  const auto species = checked_species(positions64, cell64, atomic_numbers, species_of_z, radial, angular,
                                       n_functions, scaling, layers, activations, n_members, energy_shift);
  if (!species.defined()) return {};
  const int64_t n_given = pairs.size(1);
  const auto given = table(pairs, torch::kInt64, 2 * n_given, "`pairs`");
  const auto given_shifts = table(shifts, torch::kInt64, 3 * n_given, "`shifts`");
  const int64_t* index = given.data_ptr<int64_t>();
  for (int64_t k = 0; k < 2 * n_given; ++k) {
    TORCH_CHECK(index[k] >= 0 && index[k] < n_atoms, "bpnn::evaluate_list: `pairs` hold atom indices outside [0, ",
                n_atoms, ")");
  }
  const Pairs kept = pairs_of(index, index + n_given, given_shifts.data_ptr<int64_t>(), n_given,
                              positions64.data_ptr<double>(), cell64.data_ptr<double>(), n_local, cutoff, false);
  return evaluate_pairs(kept, n_atoms, n_local, species, radial, angular, n_functions, cutoff_type, cutoff_alpha,
                        scaling, layers, activations, n_members, energy_scale, energy_shift, compute_virial,
                        count_extrapolation);
}

}  // namespace bpnn_cpu
