#include "bpnn/model.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "elements.hpp"
#include "inputs.hpp"
#include "pt2.hpp"
#include "records.hpp"
#include "sha256.hpp"

namespace bpnn {
namespace {

constexpr const char* kBlanks = " \t\r\n\f\v";

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Length of "<prefix><word>: " at the start of `line` (a word: letters, digits, _), 0 if absent.
size_t word_prefix(const std::string& line, const std::string& prefix) {
  if (line.rfind(prefix, 0) != 0) return 0;
  size_t end = prefix.size();
  while (end < line.size() && is_word_char(line[end])) ++end;
  return end > prefix.size() && line.compare(end, 2, ": ") == 0 ? end + 2 : 0;
}

// Length of "<Name>Error: " at the start of `line`, 0 if absent.
size_t error_name_prefix(const std::string& line) {
  const size_t length = word_prefix(line, "");
  return length > 7 && line.compare(length - 7, 5, "Error") == 0 ? length : 0;
}

// A line of a Python/TorchScript traceback or a libtorch backtrace (never the message).
bool is_trace_line(const std::string& line) {
  for (const char* noise : {"frame #", "Exception raised from", "Traceback", "File \"",
                            "The following operation failed"}) {
    if (line.rfind(noise, 0) == 0) return true;
  }
  return std::isspace(static_cast<unsigned char>(line[0])) || line.find_first_not_of("~^ ") == std::string::npos;
}

// TorchScript's graph optimiser for this file's calls, as BPNN_GRAPH_OPTIMIZER says (on/off;
// unset: off), the switch bpnn_ts/graph_optimizer.py reads in Python. Off, a freshly loaded file's
// first calls cost what later ones do (0.6 s for load + 3 calls on 1,080 atoms) instead of
// seconds of profiling (4-5 s); on, the steady state is 0-3 % faster (docs/performance.md).
bool graph_optimizer_from_environment() {
  const char* value = std::getenv("BPNN_GRAPH_OPTIMIZER");
  if (value == nullptr || *value == '\0') return false;
  std::string word(value);
  std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
  if (word == "on" || word == "1" || word == "true") return true;
  if (word == "off" || word == "0" || word == "false") return false;
  throw Error("the environment variable BPNN_GRAPH_OPTIMIZER must be on or off, got '" + std::string(value) + "'");
}

// Sets the calling thread's graph-optimiser switch (torch keeps it per thread) for a scope.
class GraphOptimizerScope {
 public:
  explicit GraphOptimizerScope(bool enable) : before_(torch::jit::getGraphExecutorOptimize()) {
    torch::jit::setGraphExecutorOptimize(enable);
  }
  ~GraphOptimizerScope() { torch::jit::setGraphExecutorOptimize(before_); }
  GraphOptimizerScope(const GraphOptimizerScope&) = delete;
  GraphOptimizerScope& operator=(const GraphOptimizerScope&) = delete;

 private:
  bool before_;
};

std::string element_name(int64_t z) {
  return (z >= 1 && z <= kMaxZ) ? std::string(kSymbols[z]) : "Z=" + std::to_string(z);
}

}  // namespace

std::string error_message(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    line = line.substr(0, line.find(" This is an internal miniz error"));  // torch's advice on a damaged zip
    lines.push_back(line.substr(0, line.find_last_not_of(kBlanks) + 1));  // npos + 1 == 0: blank line
  }
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    if (const size_t length = word_prefix(*line, "builtins.")) return line->substr(length);
  }
  for (const auto& line : lines) {
    if (!line.empty() && !is_trace_line(line)) return line.substr(error_name_prefix(line));
  }
  const size_t first = text.find_first_not_of(kBlanks);
  return first == std::string::npos ? "" : text.substr(first, text.find_last_not_of(kBlanks) - first + 1);
}

Model::Model(const std::string& path, const std::string& device, int threads, bool verify)
    : device_(torch::kCPU) {
  try {
    device_ = torch::Device(device);
  } catch (const c10::Error&) {
    throw Error("unknown device '" + device + "' (use cpu, cuda or cuda:N)");
  }
  if (device_.is_cuda() && !torch::cuda::is_available()) {
    throw Error("device '" + device + "' asked for, but CUDA is not available here");
  }
  if (threads < 1) throw Error("threads must be >= 1, got " + std::to_string(threads));
  at::set_num_threads(threads);
  if (!std::ifstream(path).good()) throw Error("model file not found: " + path);
  if (detail::is_pt2(path)) {
    load_pt2(path);
  } else {
    load_torchscript(path, verify);
  }
  if (length_unit_ != "angstrom" || energy_unit_ != "eV") {
    throw Error(path + " works in " + length_unit_ + "/" + energy_unit_ + "; this loader expects angstrom/eV");
  }
  if (dtype_ != "float64" && dtype_ != "float32" && dtype_ != "mixed") {
    throw Error(path + " has unknown dtype " + dtype_);
  }
  real_ = dtype_ == "float32" ? torch::kFloat32 : torch::kFloat64;  // mixed: float64 in and out
}

void Model::load_torchscript(const std::string& path, bool verify) {
  torch::jit::ExtraFilesMap extra_files{{keys::kMetadataFile, ""}, {keys::kProvenanceFile, ""}};
  graph_optimizer_ = graph_optimizer_from_environment();
  GraphOptimizerScope optimizer(graph_optimizer_);  // the metadata methods below run as forward will
  try {
    module_ = torch::jit::load(path, device_, extra_files);
  } catch (const std::exception& error) {
    throw Error("cannot load model file " + path + " (damaged or not a bpnn_ts model): " +
                error_message(error.what()));
  }
  if (extra_files[keys::kMetadataFile].empty()) {
    throw Error(path + " has no " + keys::kMetadataFile + ": not a bpnn_ts model file (write model files with "
                "bpnn_ts.export or bpnn-ts export)");
  }
  module_.eval();
  try {
    format_version_ = module_.run_method("format_version").toInt();
  } catch (const std::exception&) {
    throw Error(path + " is not a bpnn_ts model file (it has no format_version())");
  }
  check_format_version(path);
  cutoff_ = module_.run_method("cutoff").toDouble();
  for (const auto& z : module_.run_method("atomic_numbers").toList()) {
    atomic_numbers_.push_back(z.get().toInt());
  }
  dtype_ = module_.run_method("dtype_name").toStringRef();
  length_unit_ = module_.run_method("length_unit").toStringRef();
  energy_unit_ = module_.run_method("energy_unit").toStringRef();
  training_range_known_ = module_.run_method("training_range_known").toBool();
  committee_size_ = module_.run_method("committee_size").toInt();
  if (verify) verify_parameters(path, extra_files[keys::kProvenanceFile]);
}

// A .pt2 file: what a TorchScript file's typed getters give, from its programs' metadata records
// (strings). Nothing to verify: the compiled weights cannot be hashed (nor does Python's bpnn_ts.load).
void Model::load_pt2(const std::string& path) {
  pt2_ = std::make_shared<detail::Pt2Package>(path, device_);
  auto number = [&](const std::string& key, const std::string& text) -> double {
    try {
      size_t used = 0;
      const double value = std::stod(text, &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    throw Error(path + ": bpnn_" + key + " in its programs' metadata is not a number: '" + text + "'");
  };
  format_version_ = static_cast<int64_t>(number("format_version", pt2_->metadata("format_version")));
  check_format_version(path);
  cutoff_ = number("cutoff", pt2_->metadata("cutoff"));
  std::istringstream numbers(pt2_->metadata("atomic_numbers"));
  for (std::string z; std::getline(numbers, z, ',');) {
    atomic_numbers_.push_back(static_cast<int64_t>(number("atomic_numbers", z)));
  }
  dtype_ = pt2_->metadata("dtype");
  length_unit_ = pt2_->metadata("length_unit");
  energy_unit_ = pt2_->metadata("energy_unit");
  training_range_known_ = pt2_->metadata("training_range_known") == "1";
  committee_size_ = static_cast<int64_t>(number("committee_size", pt2_->metadata("committee_size")));
}

void Model::check_format_version(const std::string& path) const {
  if (format_version_ == kFormatVersion) return;
  std::string advice = " (written by a newer bpnn_ts: upgrade this loader)";
  if (format_version_ < kFormatVersion) {
    std::string converted = path;
    const size_t dot = converted.rfind('.');
    converted.insert(dot == std::string::npos || dot < converted.rfind('/') + 1 ? converted.size() : dot,
                     "-v" + std::to_string(kFormatVersion));
    advice = " (written by an older bpnn_ts); convert it with: bpnn-ts export " + path + " -o " + converted;
  }
  throw Error(path + " has model-file format version " + std::to_string(format_version_) +
              "; this loader reads version " + std::to_string(kFormatVersion) + advice);
}

// SHA-256 of every parameter and buffer, name then bytes, sorted by name: as bpnn_ts.export's
// parameters_hash (Python state_dict order is the same byte-wise sort for these ASCII names).
void Model::verify_parameters(const std::string& path, const std::string& provenance) const {
  const std::string recorded = detail::json_string(provenance, "parameters_sha256");
  if (recorded.empty()) {
    throw Error(path + " has no parameter hash (parameters_sha256 in " + keys::kProvenanceFile + "): it was not "
                "written by bpnn_ts.export, or was modified; re-export it, or skip the check with --no-verify "
                "(C++: verify=false)");
  }
  std::map<std::string, torch::Tensor> state;
  for (const auto& item : module_.named_parameters(true)) state[item.name] = item.value;
  for (const auto& item : module_.named_buffers(true)) state[item.name] = item.value;
  Sha256 hash;
  for (const auto& [name, value] : state) {
    hash.update(name.data(), name.size());
    auto bytes = value.detach().to(torch::kCPU).contiguous();
    hash.update(bytes.data_ptr(), bytes.numel() * bytes.element_size());
  }
  if (hash.hex_digest() != recorded) {
    throw Error(path + ": its parameters do not match the hash recorded when it was exported (the file was "
                "modified or damaged)");
  }
}

void Model::set_compute_uncertainty(bool enable) {
  if (enable && committee_size_ < 2) {
    throw Error("uncertainties need a committee model (several networks per element); this file has one "
                "(build one with `bpnn-ts committee`)");
  }
  compute_uncertainty_ = enable;
}

void Model::set_count_extrapolation(bool enable) {
  if (enable && !training_range_known_) {
    throw Error("this model file has no training range [Gmin, Gmax] of its symmetry functions: it cannot "
                "count extrapolation (re-export it with a current bpnn_ts, from a model with scaling statistics)");
  }
  count_extrapolation_ = enable;
}

std::string describe_extrapolation(const torch::Tensor& counts, const std::vector<int64_t>& numbers,
                                   const std::vector<int64_t>& ids, int limit) {
  auto c = counts.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* value = c.data_ptr<int64_t>();
  int64_t atoms = 0, functions = 0;
  std::string listed;
  for (int64_t i = 0; i < c.size(0); ++i) {
    if (value[i] == 0) continue;
    if (atoms < limit) {
      const int64_t name = ids.empty() ? i : ids[i];
      const int64_t z = i < static_cast<int64_t>(numbers.size()) ? numbers[i] : 0;
      listed += (listed.empty() ? "" : ", ") + std::to_string(name) + " (" + element_name(z) + ", " +
                std::to_string(value[i]) + ")";
    }
    ++atoms;
    functions += value[i];
  }
  if (atoms > limit) listed += ", and " + std::to_string(atoms - limit) + " more";
  return std::to_string(atoms) + " atom(s) (" + std::to_string(functions) +
         " symmetry function values) outside the training range: atom " + (ids.empty() ? "index" : "ID") +
         " (element, functions) " + listed;
}

void Model::check_elements(const std::vector<int64_t>& numbers) const {
  for (int64_t z : numbers) {
    if (std::find(atomic_numbers_.begin(), atomic_numbers_.end(), z) == atomic_numbers_.end()) {
      std::string supported;
      for (int64_t known : atomic_numbers_) supported += (supported.empty() ? "" : ", ") + element_name(known);
      throw Error("element " + element_name(z) + " (atomic number " + std::to_string(z) +
                  ") is not in this model; supported elements: " + supported);
    }
  }
}

torch::Tensor Model::real_tensor(const std::vector<double>& values, std::vector<int64_t> shape) const {
  auto cpu = torch::from_blob(const_cast<double*>(values.data()), shape, torch::kFloat64).clone();
  return cpu.to(device_, real_);
}

Result Model::compute(const std::vector<double>& positions, const std::vector<int64_t>& numbers,
                      const std::vector<double>& cell, const std::vector<bool>& pbc, bool want_virial) {
  const auto n = static_cast<int64_t>(numbers.size());
  if (positions.size() != static_cast<size_t>(3 * n)) {
    throw Error("positions must hold 3 values per atom: " + std::to_string(positions.size()) + " for " +
                std::to_string(n) + " atoms");
  }
  if (cell.size() != 9) throw Error("cell must hold 9 values, got " + std::to_string(cell.size()));
  if (pbc.size() != 3) throw Error("pbc must hold 3 values, got " + std::to_string(pbc.size()));
  check_elements(numbers);
  auto z = torch::tensor(numbers, torch::kInt64).to(device_);
  auto periodic = torch::tensor(std::vector<int64_t>{pbc[0], pbc[1], pbc[2]}).to(torch::kBool).to(device_);
  if (pt2_) {  // the checks a TorchScript file makes inside its graph
    detail::check_finite(positions, cell);
    if (n > 0) detail::check_cell(cell_in_model_dtype(cell), pbc);
    return run_pt2("system", {real_tensor(positions, {n, 3}), z, real_tensor(cell, {3, 3}), periodic}, n, want_virial);
  }
  std::vector<torch::IValue> inputs{real_tensor(positions, {n, 3}), z, real_tensor(cell, {3, 3}), periodic};
  return run(inputs, want_virial);
}

Result Model::compute_with_pairs(const std::vector<double>& positions, const std::vector<int64_t>& numbers,
                                 const std::vector<double>& cell, const std::vector<int64_t>& pairs_i,
                                 const std::vector<int64_t>& pairs_j, const std::vector<int64_t>& shifts,
                                 int64_t n_local, bool want_virial) {
  const auto n = static_cast<int64_t>(numbers.size());
  const auto p = static_cast<int64_t>(pairs_i.size());
  if (positions.size() != static_cast<size_t>(3 * n)) throw Error("positions must hold 3 values per atom");
  if (pairs_j.size() != pairs_i.size() || shifts.size() != static_cast<size_t>(3 * p)) {
    throw Error("pairs_i, pairs_j and shifts (3 per pair) must describe the same number of pairs");
  }
  check_elements(numbers);
  auto pairs = torch::stack({torch::tensor(pairs_i, torch::kInt64), torch::tensor(pairs_j, torch::kInt64)}).to(device_);
  auto shift = torch::tensor(shifts, torch::kInt64).reshape({p, 3}).to(device_);
  if (pt2_) {
    detail::check_finite(positions, cell);
    detail::check_engine_list(pairs_i, pairs_j, n_local, n);
    return run_pt2("engine", {real_tensor(positions, {n, 3}), torch::tensor(numbers, torch::kInt64).to(device_),
                              real_tensor(cell, {3, 3}), pairs, shift, torch::scalar_tensor(n_local, torch::kInt64)},
                   n_local, want_virial);
  }
  auto periodic = torch::ones({3}, torch::kBool).to(device_);
  std::vector<torch::IValue> inputs{real_tensor(positions, {n, 3}), torch::tensor(numbers, torch::kInt64).to(device_),
                                    real_tensor(cell, {3, 3}), periodic, pairs, shift, n_local};
  return run(inputs, want_virial);
}

Result Model::run_pt2(const std::string& program, std::vector<torch::Tensor> inputs, int64_t n_local,
                      bool want_virial) {
  Result result = pt2_->run(program, std::move(inputs), n_local, want_virial, count_extrapolation_,
                            compute_uncertainty_);
  detail::check_overlap(result.min_distance, result.closest_pair);
  return result;
}

// The cell as the model sees it (rounded to float32 for float32 files), for check_cell's message.
std::vector<double> Model::cell_in_model_dtype(const std::vector<double>& cell) const {
  std::vector<double> rounded = cell;
  if (real_ == torch::kFloat32) {
    for (double& value : rounded) value = static_cast<float>(value);
  }
  return rounded;
}

Result Model::run(std::vector<torch::IValue> inputs, bool want_virial) {
  while (inputs.size() < 7) inputs.emplace_back();  // pairs, shifts, n_local: None
  inputs.emplace_back(true);                  // compute_forces
  inputs.emplace_back(want_virial);           // compute_virial
  inputs.emplace_back(count_extrapolation_);  // count_extrapolation
  inputs.emplace_back(compute_uncertainty_);  // compute_uncertainty
  torch::IValue output;
  try {
    GraphOptimizerScope optimizer(graph_optimizer_);
    output = module_.forward(inputs);
  } catch (const std::exception& error) {
    throw Error(error_message(error.what()));
  }
  auto dict = output.toGenericDict();
  Result result;
  auto cpu = [](const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat64).contiguous(); };
  result.energy = cpu(dict.at(keys::kEnergy).toTensor()).item<double>();
  result.energies = cpu(dict.at(keys::kEnergies).toTensor());
  result.forces = cpu(dict.at(keys::kForces).toTensor());
  if (want_virial) {
    result.virial = cpu(dict.at(keys::kVirial).toTensor());
    result.atomic_virials = cpu(dict.at(keys::kAtomicVirials).toTensor());
  }
  if (count_extrapolation_) result.extrapolation = dict.at(keys::kExtrapolation).toTensor().to(torch::kCPU).contiguous();
  result.min_distance = cpu(dict.at(keys::kMinDistance).toTensor()).item<double>();
  const auto pair = dict.at(keys::kClosestPair).toTensor().to(torch::kCPU, torch::kInt64).contiguous();
  result.closest_pair[0] = pair[0].item<int64_t>();
  result.closest_pair[1] = pair[1].item<int64_t>();
  if (compute_uncertainty_) {
    result.energy_uncertainty = cpu(dict.at(keys::kEnergyUncertainty).toTensor()).item<double>();
    result.committee_energy = cpu(dict.at(keys::kCommitteeEnergy).toTensor());
    result.committee_energies = cpu(dict.at(keys::kCommitteeEnergies).toTensor());
    result.energies_uncertainty = cpu(dict.at(keys::kEnergiesUncertainty).toTensor());
    result.forces_uncertainty = cpu(dict.at(keys::kForcesUncertainty).toTensor());
    result.committee_forces = cpu(dict.at(keys::kCommitteeForces).toTensor());
  }
  return result;
}

}  // namespace bpnn
