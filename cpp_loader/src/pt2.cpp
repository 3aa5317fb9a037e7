#include "pt2.hpp"

#include <caffe2/serialize/inline_container.h>

#include <sstream>

#include "records.hpp"

namespace bpnn {
namespace detail {
namespace {

constexpr const char* kPrograms[] = {"system", "engine"};

// The text of an archive record, "" if absent.
std::string record(caffe2::serialize::PyTorchStreamReader& reader, const std::string& name) {
  if (!reader.hasRecord(name)) return "";
  auto [data, size] = reader.getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first == std::string::npos ? "" : text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

bool is_pt2(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return trimmed(record(reader, "archive_format")) == "pt2";
  } catch (const std::exception&) {
    return false;  // not a zip archive (the TorchScript loader names the problem)
  }
}

Pt2Package::Pt2Package(const std::string& path, const torch::Device& device) : path_(path) {
  std::string metadata_json;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    metadata_json = record(reader, std::string("extra/") + keys::kMetadataFile);
  } catch (const std::exception& error) {
    throw Error("cannot load model file " + path + " (damaged or not a bpnn_ts model): " + error_message(error.what()));
  }
  if (metadata_json.empty()) {
    throw Error(path + " has no " + keys::kMetadataFile + ": not a bpnn_ts model file (write model files with "
                "bpnn_ts.export or bpnn-ts export)");
  }
  std::string compiled_for = json_string(metadata_json, "device");
  if (compiled_for.empty()) compiled_for = "cpu";
  if (compiled_for != c10::DeviceTypeName(device.type(), /*lower_case=*/true)) {
    throw Error(path + " is a .pt2 file compiled for " + compiled_for + "; it cannot run on " + device.str() +
                " (export a .pt2 file for " + device.str() + " on a machine with it, or use the TorchScript model "
                "file)");
  }
#if BPNN_HAS_AOTI
  for (const char* name : kPrograms) {
    try {
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 8
      programs_[name] = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
          path, name, /*run_single_threaded=*/false, /*num_runners=*/1, device.has_index() ? device.index() : -1);
#else
      if (device.has_index() && device.index() > 0) {
        throw Error("running a .pt2 file on " + device.str() + " needs libtorch >= 2.8 (use cuda:0 or cuda)");
      }
      programs_[name] = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path, name);
#endif
    } catch (const Error&) {
      throw;
    } catch (const std::exception& error) {
      throw Error("cannot load model file " + path + " (a .pt2 file: damaged, or compiled for another machine or "
                  "torch version): " + error_message(error.what()));
    }
  }
  metadata_ = programs_.at("system")->get_metadata();
#else
  throw Error(path + " is a .pt2 model file (compiled by AOTInductor), which this loader cannot run: it was built "
              "against libtorch " + std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
              " without AOTInductor (.pt2 files need libtorch >= 2.6); rebuild it against a newer libtorch, or use "
              "the TorchScript model file (bpnn-ts export without --format pt2)");
#endif
  if (metadata_.count("bpnn_format") == 0 || metadata_.at("bpnn_format") != "pt2") {
    throw Error(path + " is an AOTInductor package without bpnn_ts's records (bpnn_format in its programs' "
                "metadata): not a bpnn_ts model file (write model files with bpnn_ts.export or bpnn-ts export)");
  }
  std::istringstream names(metadata("outputs"));
  for (std::string name; std::getline(names, name, ',');) index_.emplace(name, index_.size());
}

const std::string& Pt2Package::metadata(const std::string& key) const {
  const auto found = metadata_.find("bpnn_" + key);
  if (found == metadata_.end()) throw Error(path_ + " has no bpnn_" + key + " in its programs' metadata (damaged?)");
  return found->second;
}

torch::Tensor Pt2Package::output(const std::vector<torch::Tensor>& outputs, const std::string& name) const {
  const auto found = index_.find(name);
  if (found == index_.end()) throw Error(path_ + " has no output " + name + " (bpnn_outputs: " + metadata("outputs") + ")");
  return outputs.at(found->second).detach();
}

Result Pt2Package::run(const std::string& program, std::vector<torch::Tensor> inputs, int64_t n_local,
                       bool want_virial, bool count_extrapolation, bool compute_uncertainty) {
  std::vector<torch::Tensor> outputs;
#if BPNN_HAS_AOTI
  try {
    outputs = programs_.at(program)->run(inputs);
  } catch (const std::exception& error) {
    throw Error(error_message(error.what()));
  }
#else
  (void)inputs;  // (the constructor refused the file)
#endif
  if (outputs.size() != index_.size()) {
    throw Error(path_ + ": its " + program + " program returned " + std::to_string(outputs.size()) +
                " outputs, its metadata names " + std::to_string(index_.size()) + " (damaged?)");
  }
  auto cpu = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat64).contiguous(); };
  auto get = [&](const char* name) { return output(outputs, name); };
  // per-atom outputs have a row for every atom given (ghosts: 0): keep the local atoms'
  auto local = [&](const char* name, int64_t dim) { return get(name).narrow(dim, 0, n_local); };
  Result result;
  result.energy = cpu(get(keys::kEnergy)).item<double>();
  result.energies = cpu(local(keys::kEnergies, 0));
  result.forces = cpu(get(keys::kForces));
  if (want_virial) {
    result.virial = cpu(get(keys::kVirial));
    result.atomic_virials = cpu(get(keys::kAtomicVirials));
  }
  if (count_extrapolation) result.extrapolation = local(keys::kExtrapolation, 0).to(torch::kCPU, torch::kInt64).contiguous();
  result.min_distance = cpu(get(keys::kMinDistance)).item<double>();
  const auto pair = get(keys::kClosestPair).to(torch::kCPU, torch::kInt64).contiguous();
  result.closest_pair[0] = pair[0].item<int64_t>();
  result.closest_pair[1] = pair[1].item<int64_t>();
  if (compute_uncertainty) {
    result.energy_uncertainty = cpu(get(keys::kEnergyUncertainty)).item<double>();
    result.committee_energy = cpu(get(keys::kCommitteeEnergy));
    result.committee_energies = cpu(local(keys::kCommitteeEnergies, 1));
    result.energies_uncertainty = cpu(local(keys::kEnergiesUncertainty, 0));
    result.forces_uncertainty = cpu(get(keys::kForcesUncertainty));
    result.committee_forces = cpu(get(keys::kCommitteeForces));
  }
  return result;
}

}  // namespace detail
}  // namespace bpnn
