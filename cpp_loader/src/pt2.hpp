// `.pt2` model files (bpnn_ts/pt2.py): AOTInductor packages with two compiled programs,
// "system" (positions, atomic numbers, cell, pbc: the model's own neighbour search) and
// "engine" (+ an engine's pairs, shifts and n_local), each returning the flat list of outputs
// named by the metadata record bpnn_outputs. The programs call torch.ops.bpnn.*, which
// libbpnn.so registers. Running them needs libtorch >= 2.6 (AOTIModelPackageLoader); a library
// built against an older libtorch tells .pt2 files apart and refuses them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/script.h>
#include <torch/version.h>

#include "bpnn/model.hpp"

#ifndef BPNN_HAS_AOTI  // (define it 0 to build without .pt2 support)
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6)
#define BPNN_HAS_AOTI 1
#else
#define BPNN_HAS_AOTI 0
#endif
#endif

#if BPNN_HAS_AOTI
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#endif

namespace bpnn {
namespace detail {

// True if `path` is a .pt2 file: a zip archive whose `archive_format` record says "pt2" (a
// TorchScript file has none). Told by content, whatever the file's name.
bool is_pt2(const std::string& path);

class Pt2Package {
 public:
  // Loads both programs for `device` (refused unless the package was compiled for its kind).
  // Throws bpnn::Error: no metadata.json, another device, no AOTInductor in this libtorch, a
  // package that does not load, programs without bpnn metadata.
  Pt2Package(const std::string& path, const torch::Device& device);

  // The programs' metadata record "bpnn_<key>" (bpnn_ts.pt2.flat_metadata); throws if absent.
  const std::string& metadata(const std::string& key) const;

  // Runs a program ("system" or "engine") and converts its outputs to what the Model's settings
  // ask for: per-atom rows of local atoms only, on the CPU in float64 (as for TorchScript files).
  Result run(const std::string& program, std::vector<torch::Tensor> inputs, int64_t n_local, bool want_virial,
             bool count_extrapolation, bool compute_uncertainty);

 private:
  torch::Tensor output(const std::vector<torch::Tensor>& outputs, const std::string& name) const;

  std::string path_;
  std::unordered_map<std::string, std::string> metadata_;
  std::unordered_map<std::string, size_t> index_;  // output name -> position in the programs' outputs
#if BPNN_HAS_AOTI
  std::unordered_map<std::string, std::unique_ptr<torch::inductor::AOTIModelPackageLoader>> programs_;
#endif
};

}  // namespace detail
}  // namespace bpnn
