#include "inputs.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "bpnn/model.hpp"

namespace bpnn {
namespace detail {
namespace {

// A float as TorchScript's str() writes it (so that messages equal a TorchScript file's): 17
// significant digits, "." after a whole number ("3."), zero unsigned ("0.").
std::string script_float(double value) {
  if (value == 0.0) return "0.";
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  std::string out = text;
  if (std::isfinite(value) && out.find_first_of(".e") == std::string::npos) out += ".";
  return out;
}

template <typename T, typename Write>
std::string list_text(const std::vector<T>& values, Write write) {
  std::string out = "[";
  for (size_t k = 0; k < values.size(); ++k) out += (k ? ", " : "") + write(values[k]);
  return out + "]";
}

double dot(const double* a, const double* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

}  // namespace

void check_finite(const std::vector<double>& positions, const std::vector<double>& cell) {
  for (double x : positions) {
    if (!std::isfinite(x)) throw Error("`positions` contain NaN or inf");
  }
  for (double x : cell) {
    if (!std::isfinite(x)) throw Error("`cell` contains NaN or inf");
  }
}

void check_cell(const std::vector<double>& cell, const std::vector<bool>& pbc) {
  std::vector<int> periodic;
  for (int k = 0; k < 3; ++k) {
    if (pbc[k]) periodic.push_back(k);
  }
  if (periodic.empty()) return;
  const double* row[3] = {&cell[0], &cell[3], &cell[6]};
  double lengths = 1.0;
  for (int k : periodic) {
    const double length = std::sqrt(dot(row[k], row[k]));
    if (!(length >= 1e-8)) {
      throw Error("`cell` row " + std::to_string(k) + " is zero but pbc is True along that axis; give a lattice "
                  "vector or set pbc False there");
    }
    lengths *= length;
  }
  double measure = lengths;
  if (periodic.size() >= 2) {
    const double* a = row[periodic[0]];
    const double* b = row[periodic[1]];
    const double cross[3] = {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
    measure = periodic.size() == 3 ? std::fabs(dot(cross, row[periodic[2]])) : std::sqrt(dot(cross, cross));
  }
  if (!(measure > 1e-10 * lengths)) {  // (also catches NaN)
    const char* what[] = {"length", "area", "volume"};
    std::vector<std::vector<double>> rows;
    for (int k = 0; k < 3; ++k) rows.emplace_back(row[k], row[k] + 3);
    const std::string cell_text =
        list_text(rows, [](const std::vector<double>& r) { return list_text(r, script_float); });
    throw Error("`cell` has zero " + std::string(what[periodic.size() - 1]) + " along its periodic axes " +
                list_text(periodic, [](int k) { return std::to_string(k); }) +
                " (the periodic lattice vectors are linearly dependent); got cell " + cell_text + " with pbc " +
                list_text(pbc, [](bool p) { return std::string(p ? "True" : "False"); }));
  }
}

void check_engine_list(const std::vector<int64_t>& pairs_i, const std::vector<int64_t>& pairs_j, int64_t n_local,
                       int64_t n_atoms) {
  if (n_local < 0 || n_local > n_atoms) {
    throw Error("`n_local` must be in [0, n_atoms=" + std::to_string(n_atoms) + "], got " + std::to_string(n_local));
  }
  for (const auto* indices : {&pairs_i, &pairs_j}) {
    for (int64_t index : *indices) {
      if (index < 0 || index >= n_atoms) {
        throw Error("`pairs` hold atom indices outside [0, " + std::to_string(n_atoms) + ")");
      }
    }
  }
}

void check_overlap(double min_distance, const int64_t closest_pair[2]) {
  if (min_distance < 1e-6) {
    throw Error("atoms " + std::to_string(closest_pair[0]) + " and " + std::to_string(closest_pair[1]) +
                " overlap (distance < 1e-6 Å)");
  }
}

}  // namespace detail
}  // namespace bpnn
