// CUDA kernels of torch.ops.bpnn.cell_list, neighbor_list and cell_list_capacity (registered for
// the CUDA key in register.cpp, declared in cuda_ops.h): the device search of
// neighbor_list_device.h, each functor of cell_list_device.h launched with one thread per index on
// the current stream (c10::cuda::getCurrentCUDAStream; not ATen/cuda/CUDAContext.h, which needs
// the cuSPARSE and cuBLAS headers); outputs allocated by torch on the input's device. The lists
// equal the CPU ops' (same pairs, shifts and order; the emulation tests in
// tests/test_cuda_neighbors.py check the same code on the host).
//
// Waits for the device (each one small device-to-host copy, needed to size an output):
//   cell_list:      exactly 1, the number of pairs;
//   cell_list_capacity: none (outputs of the caller's capacity and the pair count on the device;
//                   every size fixed by the arguments, so it can be captured in a CUDA graph);
//   neighbor_list:  up to 3: the cell and pbc values when they live on the device (none when they
//                   are CPU tensors), the number of periodic images (periodic systems only), the
//                   number of pairs.
// Compiled only where a CUDA toolkit and a CUDA torch are found (then with -DBPNN_WITH_CUDA, and
// torch.ops.bpnn.cuda_kernels() is true).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <vector>

#include "cell_list_device.h"
#include "cuda_ops.h"
#include "neighbor_list_device.h"

namespace {

constexpr int kThreads = 128;

template <class F>
__global__ void for_each(int64_t n, F f) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) f(i);
}

// run(n, f): f(i) for i < n, one CUDA thread each, on the stream current when constructed.
struct CudaRunner {
  cudaStream_t stream;

  template <class F>
  void operator()(int64_t n, const F& f) const {
    if (n <= 0) return;
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    for_each<F><<<static_cast<unsigned int>(blocks), kThreads, 0, stream>>>(n, f);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace

namespace bpnn_cuda {

std::vector<at::Tensor> cell_list(const at::Tensor& points, int64_t n_centres, double cutoff) {
  TORCH_CHECK(points.is_cuda() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on a CUDA device");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  TORCH_CHECK(n_centres >= 0 && n_centres <= points.size(0), "bpnn: n_centres out of range");
  const c10::cuda::CUDAGuard guard(points.device());
  return bpnn_device::cell_list(CudaRunner{c10::cuda::getCurrentCUDAStream()}, points, n_centres, cutoff);
}

std::vector<at::Tensor> neighbor_list(const at::Tensor& positions, const at::Tensor& cell, const at::Tensor& pbc,
                                      double cutoff) {
  TORCH_CHECK(positions.is_cuda() && (cell.is_cpu() || cell.device() == positions.device()) &&
                  (pbc.is_cpu() || pbc.device() == positions.device()),
              "bpnn: neighbor_list on CUDA takes positions on a CUDA device and cell and pbc on that device or the "
              "CPU, got positions on ", positions.device(), ", cell on ", cell.device(), ", pbc on ", pbc.device());
  const c10::cuda::CUDAGuard guard(positions.device());
  return bpnn_device::neighbor_list(CudaRunner{c10::cuda::getCurrentCUDAStream()}, positions, cell, pbc, cutoff);
}

std::vector<at::Tensor> cell_list_capacity(const at::Tensor& points, int64_t n_centres, double cutoff,
                                           int64_t capacity) {
  TORCH_CHECK(points.is_cuda() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on a CUDA device");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  TORCH_CHECK(n_centres >= 0 && n_centres <= points.size(0), "bpnn: n_centres out of range");
  TORCH_CHECK(capacity >= 0, "bpnn: capacity must be >= 0, got ", capacity);
  const c10::cuda::CUDAGuard guard(points.device());
  return bpnn_device::cell_list_capacity(CudaRunner{c10::cuda::getCurrentCUDAStream()}, points, n_centres, cutoff, capacity);
}

}  // namespace bpnn_cuda
