// CPU kernels of the neighbour searches: bpnn::cell_list (cell_list.h), bpnn::neighbor_list
// (neighbor_list.h) and bpnn::cell_list_capacity, whose CPU kernel runs the GPU's search
// (cuda/neighbor_list_device.h) on the host, one loop iteration per would-be CUDA thread
// (HostRunner), so that its outputs on the CPU are those of the CUDA kernel. Registered in
// register.cpp.
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "../cuda/neighbor_list_device.h"
#include "cell_list.h"
#include "cpu_ops.h"
#include "neighbor_list.h"

namespace bpnn_cpu {

std::vector<torch::Tensor> cell_list(const torch::Tensor& points, int64_t n_centres, double cutoff) {
  return bpnn_cells::cell_list(points, n_centres, cutoff);
}

std::vector<torch::Tensor> neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell,
                                         const torch::Tensor& pbc, double cutoff) {
  return bpnn_cells::neighbor_list(positions, cell, pbc, cutoff);
}

std::vector<torch::Tensor> cell_list_capacity(const torch::Tensor& points, int64_t n_centres, double cutoff,
                                              int64_t capacity) {
  TORCH_CHECK(points.device().is_cpu() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on the CPU");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  TORCH_CHECK(n_centres >= 0 && n_centres <= points.size(0), "bpnn: n_centres out of range");
  TORCH_CHECK(capacity >= 0, "bpnn: capacity must be >= 0, got ", capacity);
  return bpnn_device::cell_list_capacity(bpnn_device::HostRunner{}, points, n_centres, cutoff, capacity);
}

}  // namespace bpnn_cpu
