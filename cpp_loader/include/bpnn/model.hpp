// bpnn::Model: loads a bpnn_ts model file (export/CONTRACT.md) with libtorch and
// evaluates energies, forces and virial on CPU or CUDA. Units: eV, Å.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/script.h>

#include "bpnn/keys.hpp"

namespace bpnn {

namespace detail {
class Pt2Package;  // a .pt2 file's compiled programs (src/pt2.hpp)
}

constexpr int64_t kFormatVersion = keys::kFormatVersion;  // the model-file contract this loader reads

// Every error of this library; messages start with "bpnn: ".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error("bpnn: " + message) {}
};

struct Result {
  double energy = 0.0;   // eV, local atoms only
  torch::Tensor energies;  // (n_local,) eV, on the CPU, float64
  torch::Tensor forces;    // (n_atoms, 3) eV/Å, ghosts included
  torch::Tensor virial;    // (3, 3) eV, W = -sum r_ij (x) dE/dr_ij (undefined unless asked)
  torch::Tensor atomic_virials;  // (n_atoms, 3, 3) eV, ghosts included; sums to virial (with virial)
  torch::Tensor extrapolation;   // (n_local,) int64: functions outside the training range (when counting)
  double min_distance = std::numeric_limits<double>::infinity();  // Å, the closest pair (inf: no pairs)
  int64_t closest_pair[2] = {-1, -1};  // its atom indices
  // Committees with set_compute_uncertainty(true) (K members; spreads over members, 1/K):
  double energy_uncertainty = 0.0;     // eV, spread of the members' total energies
  torch::Tensor committee_energy;      // (K,) eV, each member's total energy
  torch::Tensor committee_energies;    // (K, n_local) eV, each member's per-atom energies
  torch::Tensor energies_uncertainty;  // (n_local,) eV, spread of each atom's energy
  torch::Tensor forces_uncertainty;    // (n_atoms,) eV/Å, sqrt(mean_k |F_ik - mean F_i|^2); ghosts: partial sums
  torch::Tensor committee_forces;      // (K, n_atoms, 3) eV/Å, each member's forces, ghosts included
};

// The message in a torch or TorchScript error text (the same rule as Python's
// bpnn_ts.errors.error_message; cases in tests/fixtures/error_messages.txt): the text after the
// last line starting "builtins.<Name>: " (raised inside TorchScript); else the first non-empty
// line that is not a traceback or backtrace line, without a leading "<Name>Error: "; else the
// whole text trimmed. Torch's advice after a damaged-zip message (" This is an internal miniz
// error. ...") is cut.
std::string error_message(const std::string& text);

// "N atom(s) (M symmetry function values) outside the training range: atom 4 (O, 2), ..."
// from per-atom counts (n,) and the atoms' atomic numbers; `ids` (optional, n) names the
// atoms (e.g. LAMMPS atom IDs) instead of their indices; at most `limit` atoms listed.
std::string describe_extrapolation(const torch::Tensor& counts, const std::vector<int64_t>& numbers,
                                   const std::vector<int64_t>& ids = {}, int limit = 10);

class Model {
 public:
  // Loads and checks the file (metadata.json present, format version, units; with `verify`, that
  // its parameters match the SHA-256 recorded at export: files without that hash are refused).
  // Files of another format version are refused; for older ones the message gives the command
  // that converts them (`bpnn-ts export old.pt -o new.pt`). `device`: "cpu", "cuda", "cuda:1".
  // `threads`: intra-op threads (a process-wide libtorch setting; 1 is fastest on small machines).
  // Either kind of model file, told by content (not by name): TorchScript, or `.pt2` (compiled by
  // AOTInductor for one device kind, which `device` must match; needs libtorch >= 2.6; `verify`
  // checks nothing there: its compiled weights cannot be hashed). Both give the same Results and
  // refuse the same bad inputs with the same messages.
  // Loading a model file runs code from it: load only files you trust.
  explicit Model(const std::string& path, const std::string& device = "cpu", int threads = 1, bool verify = true);

  int64_t format_version() const { return format_version_; }
  double cutoff() const { return cutoff_; }  // Å
  const std::vector<int64_t>& atomic_numbers() const { return atomic_numbers_; }
  const std::string& dtype() const { return dtype_; }  // "float64", "float32" or "mixed" (float64 in and out)
  const std::string& length_unit() const { return length_unit_; }
  const std::string& energy_unit() const { return energy_unit_; }
  const torch::Device& device() const { return device_; }

  // The file stores the training range [Gmin, Gmax] of its symmetry functions (scaling
  // statistics) and can count extrapolation.
  bool training_range_known() const { return training_range_known_; }
  // Count, per local atom, the functions outside the training range in every compute()
  // (Result::extrapolation). Throws bpnn::Error if the model cannot.
  void set_count_extrapolation(bool enable);
  bool count_extrapolation() const { return count_extrapolation_; }

  // Networks per element: 1, or K > 1 for a committee.
  int64_t committee_size() const { return committee_size_; }
  // Evaluate every committee member in compute() (one force pass per member): Result's committee_* and
  // *_uncertainty. Throws bpnn::Error for a model that is not a committee.
  void set_compute_uncertainty(bool enable);
  bool compute_uncertainty() const { return compute_uncertainty_; }

  // Throws bpnn::Error naming the first atomic number the model lacks.
  void check_elements(const std::vector<int64_t>& numbers) const;

  // positions (N*3, Å, row-major), numbers (N), cell (9, rows = lattice vectors), pbc (3).
  Result compute(const std::vector<double>& positions, const std::vector<int64_t>& numbers,
                 const std::vector<double>& cell, const std::vector<bool>& pbc, bool want_virial = true);

  // Engine neighbour list: pairs (i, j) for i < n_local, integer cell shifts s (r_ij =
  // R_j - R_i + s . cell), atoms from n_local on are ghosts (no energy, forces returned).
  Result compute_with_pairs(const std::vector<double>& positions, const std::vector<int64_t>& numbers,
                            const std::vector<double>& cell, const std::vector<int64_t>& pairs_i,
                            const std::vector<int64_t>& pairs_j, const std::vector<int64_t>& shifts,
                            int64_t n_local, bool want_virial = true);

 private:
  void load_torchscript(const std::string& path, bool verify);
  void load_pt2(const std::string& path);
  void check_format_version(const std::string& path) const;
  Result run(std::vector<torch::IValue> inputs, bool want_virial);
  Result run_pt2(const std::string& program, std::vector<torch::Tensor> inputs, int64_t n_local, bool want_virial);
  void verify_parameters(const std::string& path, const std::string& provenance) const;
  torch::Tensor real_tensor(const std::vector<double>& values, std::vector<int64_t> shape) const;
  std::vector<double> cell_in_model_dtype(const std::vector<double>& cell) const;

  torch::jit::Module module_;                 // a TorchScript file
  std::shared_ptr<detail::Pt2Package> pt2_;  // or a .pt2 file's programs
  torch::Device device_;
  torch::Dtype real_ = torch::kFloat64;
  int64_t format_version_ = 0;
  double cutoff_ = 0.0;
  std::vector<int64_t> atomic_numbers_;
  std::string dtype_, length_unit_, energy_unit_;
  bool training_range_known_ = false, count_extrapolation_ = false, compute_uncertainty_ = false;
  bool graph_optimizer_ = false;  // TorchScript's graph optimiser during calls (BPNN_GRAPH_OPTIMIZER=on)
  int64_t committee_size_ = 1;
};

}  // namespace bpnn
