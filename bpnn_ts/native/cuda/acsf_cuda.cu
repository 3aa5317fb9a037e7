// CUDA launchers of the ACSF ops (bpnn::acsf, acsf_backward, acsf_jvp, acsf_backward_jvp) for
// CUDA tensors, registered for the CUDA key in register.cpp (declared in cuda_ops.h), compiled
// only where a CUDA toolkit and a CUDA build of torch are found (the Python build,
// bpnn_ts/native/__init__.py, and cpp_loader/CMakeLists.txt define BPNN_WITH_CUDA then). The maths
// is acsf_device.h (one thread per pair, then one per centre), the torch side acsf_device_ops.h;
// here only the launches, on the current CUDA stream, and the plan cache. No host
// synchronisation: outputs and workspace are torch allocations on the input's device, the
// parameter tables are read on the host once per table (cached, below) and copied to the device
// once. Inputs are checked for their shapes only (values would need the device): a neighbour
// species outside 0 .. n_species - 1 adds nothing, where the CPU ops raise.
//
// STATUS: compiled and linked with nvcc, and its per-thread code tested on the CPU through the
// host emulation (tests/test_cuda_kernels.py); not yet run on a GPU (benchmarks/gpu/).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/types.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "../common/acsf_plan.h"
#include "acsf_device.h"
#include "acsf_device_ops.h"
#include "acsf_device_plan.h"
#include "cuda_ops.h"

namespace {

using bpnn_device::DevicePlan;

constexpr int kPairThreads = 256;    // threads per block of the pair pass
constexpr int kCentreThreads = 64;   // of the centre passes (long, divergent threads)

int blocks(int64_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

template <typename real, typename scalar_t>
__global__ void pair_kernel(DevicePlan plan, int64_t n_pairs, const scalar_t* vectors, const double* directions,
                            real* work) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p < n_pairs) bpnn_device::pair_factors(plan, p, n_pairs, vectors, directions, work);
}

template <typename real>
__global__ void forward_kernel(DevicePlan plan, int64_t n_centres, const int64_t* offsets, const int64_t* species,
                               const real* work, int64_t n_functions, typename bpnn_dual::Sum<real>::type* g) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b < n_centres) bpnn_device::centre_forward(plan, b, offsets, species, work, n_functions, g);
}

template <typename real>
__global__ void backward_kernel(DevicePlan plan, int64_t n_centres, const int64_t* offsets, const int64_t* species,
                                const real* work, int64_t n_functions, const double* weight, real* out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b < n_centres) bpnn_device::centre_backward(plan, b, offsets, species, work, n_functions, weight, out);
}

// One cached flat plan: the tables it was made from (held, so that their storage is not reused
// while cached; an in-place change bumps their version) and its values on the device.
struct CachedPlan {
  torch::Tensor radial, angular;
  int64_t radial_version, angular_version;
  int64_t n_species, cutoff_type;
  double cutoff_alpha;
  torch::Device device;
  bpnn_device::Tables tables;
};

constexpr size_t kMostCachedPlans = 64;  // a model has one plan per element (and per device)

// acsf_device_ops.h's Backend for CUDA tensors.
struct Cuda {
  static bpnn_device::Tables tables(const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_species,
                                    int64_t cutoff_type, double cutoff_alpha, const torch::Device& device) {
    static std::mutex mutex;
    static std::vector<CachedPlan> cache;
    std::lock_guard<std::mutex> lock(mutex);
    for (const CachedPlan& c : cache) {
      if (c.radial.is_same(radial) && c.angular.is_same(angular) && c.radial_version == radial._version() &&
          c.angular_version == angular._version() && c.n_species == n_species && c.cutoff_type == cutoff_type &&
          c.cutoff_alpha == cutoff_alpha && c.device == device) {
        return c.tables;
      }
    }
    // First use of these tables: read them on the host (make_plan copies them there) and copy the
    // flat plan to the device.
    bpnn_device::FlatPlan flat =
        bpnn_device::flatten(*bpnn_plan::make_plan(radial, angular, n_species, cutoff_type, cutoff_alpha));
    bpnn_device::Tables t{flat.header, torch::tensor(flat.values, torch::kFloat64).to(device, torch::kFloat64, true)};
    t.plan.data = t.values.data_ptr<double>();
    if (cache.size() >= kMostCachedPlans) cache.erase(cache.begin());
    cache.push_back({radial, angular, radial._version(), angular._version(), n_species, cutoff_type, cutoff_alpha,
                     device, t});
    return t;
  }

  template <typename real, typename scalar_t>
  static void pairs(const DevicePlan& plan, int64_t n_pairs, const scalar_t* vectors, const double* directions,
                    real* work) {
    pair_kernel<real, scalar_t><<<blocks(n_pairs, kPairThreads), kPairThreads, 0,
                                  c10::cuda::getCurrentCUDAStream()>>>(plan, n_pairs, vectors, directions, work);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename real>
  static void forward(const DevicePlan& plan, int64_t n_centres, const int64_t* offsets, const int64_t* species,
                      const real* work, int64_t n_functions, typename bpnn_dual::Sum<real>::type* g) {
    forward_kernel<real><<<blocks(n_centres, kCentreThreads), kCentreThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        plan, n_centres, offsets, species, work, n_functions, g);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename real>
  static void backward(const DevicePlan& plan, int64_t n_centres, const int64_t* offsets, const int64_t* species,
                       const real* work, int64_t n_functions, const double* weight, real* out) {
    backward_kernel<real><<<blocks(n_centres, kCentreThreads), kCentreThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        plan, n_centres, offsets, species, work, n_functions, weight, out);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

using CudaOps = bpnn_device::DeviceOps<Cuda>;

}  // namespace

namespace bpnn_cuda {

// The ops on the device of `vectors` (its CUDA context current).
torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                   const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions, int64_t n_species,
                   int64_t cutoff_type, double cutoff_alpha) {
  const c10::cuda::CUDAGuard guard(vectors.device());
  return CudaOps::acsf(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha);
}

torch::Tensor acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                            const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                            int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g) {
  const c10::cuda::CUDAGuard guard(vectors.device());
  return CudaOps::acsf_backward(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                                cutoff_alpha, d_g);
}

torch::Tensor acsf_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                       const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                       int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& u) {
  const c10::cuda::CUDAGuard guard(vectors.device());
  return CudaOps::acsf_jvp(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                           cutoff_alpha, u);
}

torch::Tensor acsf_backward_jvp(const torch::Tensor& vectors, const torch::Tensor& offsets,
                                const torch::Tensor& species, const torch::Tensor& radial, const torch::Tensor& angular,
                                int64_t n_functions, int64_t n_species, int64_t cutoff_type, double cutoff_alpha,
                                const torch::Tensor& d_g, const torch::Tensor& u) {
  const c10::cuda::CUDAGuard guard(vectors.device());
  return CudaOps::acsf_backward_jvp(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                                    cutoff_alpha, d_g, u);
}

}  // namespace bpnn_cuda
