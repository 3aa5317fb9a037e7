// BPNN_HD marks the scalar maths that runs both in the CPU kernels and in a GPU thread
// (acsf_math.h, dual.h, acsf_terms.h, cuda/acsf_device.h, cuda/cell_list_device.h): __host__
// __device__ where nvcc compiles it (the cuda/*.cu files), nothing for the host compilers.
#pragma once

#if defined(__CUDACC__)
#define BPNN_HD __host__ __device__
#else
#define BPNN_HD
#endif
