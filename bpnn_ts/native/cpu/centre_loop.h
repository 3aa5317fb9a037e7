// The loop of the CPU ACSF ops over centres: each centre's pair vectors loaded into a Scratch
// (acsf_scratch.h) and sorted (load_centre_any), over torch's intra-op threads (thread_pool.h).
// The translation unit defines the entry points of the scalar types it runs (acsf_centre.h:
// BPNN_CENTRE_STEPS) before it instantiates this.
#pragma once

#include <cstdint>
#include <utility>

#include "../common/dual.h"
#include "acsf_inputs.h"
#include "acsf_scratch.h"
#include "thread_pool.h"

namespace bpnn_cpu {

// Calls centre(b, p0, w) for every centre b (first pair p0) with its scratch w loaded, over
// torch's intra-op threads: the centres' pair vectors v (P, 3) of dtype scalar_t grouped by
// centre (off (n_centres + 1,)), their neighbours' species sp (P,), and the plan of the functions.
// For dual `real`, moved along `tangents` ((P, 3) float64 each, one per dual level, dual.h's Seed).
template <typename real, typename scalar_t, typename Centre>
void for_each_centre_of(const bpnn_plan::Plan& plan, const scalar_t* v, const int64_t* off, const int64_t* sp,
                        int64_t n_centres, int64_t n_functions, const double* const* tangents, Centre&& centre) {
  const size_t n_shapes = bpnn_acsf::max_shapes(plan);
  bpnn_threads::run_in_chunks<bpnn_acsf::Scratch<real>>(
      n_centres, [&](int64_t begin, int64_t end, bpnn_acsf::Scratch<real>& w) {
        if (static_cast<int64_t>(w.g.size()) != n_functions) w.g.resize(n_functions);
        for (int64_t b = begin; b < end; ++b) {
          const int64_t p0 = off[b], m = off[b + 1] - p0;
          if (m > w.capacity) w.resize(m, plan, n_shapes);
          w.m = m;
          for (int64_t i = 0; i < 3 * m; ++i) {
            w.in[i] = bpnn_dual::Seed<real>::at(static_cast<double>(v[3 * p0 + i]), tangents, 3 * p0 + i);
          }
          load_centre_any(plan, sp + p0, w);  // unqualified: the entry point of Scratch<real>'s namespace
          centre(b, p0, w);
        }
      });
}

// for_each_centre_of on checked op inputs (acsf_inputs.h).
template <typename real, typename scalar_t, typename Centre>
void for_each_centre(const KernelInputs& in, int64_t n_functions, const double* const* tangents, Centre&& centre) {
  for_each_centre_of<real, scalar_t>(*in.plan, in.vectors.data_ptr<scalar_t>(), in.offsets.data_ptr<int64_t>(),
                                     in.species.data_ptr<int64_t>(), in.n_centres, n_functions, tangents,
                                     std::forward<Centre>(centre));
}

}  // namespace bpnn_cpu
