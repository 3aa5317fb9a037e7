// The per-centre scratch of the CPU ACSF kernels (acsf_centre.h says what is computed): a
// centre's pairs sorted by neighbour element into slots, one array per quantity (structure of
// arrays), and the compact row of one j with its k. One per thread (thread_pool.h), resized to
// the largest centre it meets, so a centre allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../common/acsf_plan.h"
#include "../common/dual.h"

namespace bpnn_acsf {
// Internal linkage (here and in acsf_load.h, acsf_centre.h): every translation unit that runs the
// kernels has its own copy, and no kernel symbol is exported from the libraries they are built into.
namespace {

using bpnn_plan::Angular;
using bpnn_plan::ElementPair;
using bpnn_plan::Group;
using bpnn_plan::Plan;
using bpnn_plan::Radial;
using bpnn_plan::Shape;

// The rows of a centre: each j and the k of one element that form unordered pairs {j, k}
// with angular functions (same element: k > j), k = k0 .. k0 + n - 1.
struct RowRange {
  int64_t key, j, k0, n;
};

// Per-centre scratch. Slots are the centre's pairs sorted by neighbour element
// (block[s] .. block[s + 1] - 1 hold element s); "[n][m]" arrays are n rows of m slots.
template <typename real>
struct Scratch {
  int64_t m = 0;
  std::vector<real> in;                  // [m][3] the centre's pair vectors, unsorted
  std::vector<real> x, y, z, r, inv_r;   // [m]
  std::vector<real> fc, dfc;             // [cutoffs][m]  f_c(r), df_c/dr
  std::vector<real> gr, dgr;             // [groups][m]   exp(-eta (r - r_s)^2) f_c(r) and d/dr
  std::vector<int64_t> order, block, next; // order[slot]: pair (within the centre) in that slot
  // One row of neighbour pairs (j, k0 .. k0 + L - 1):
  std::vector<real> r2;                             // [m] |r_jk|^2 of the whole row
  std::vector<int32_t> slot;                          // [m] slot of each kept k
  std::vector<real> kx, ky, kz, k_inv_r;            // [m] of the kept k
  std::vector<real> dx, dy, dz, rjk, inv_rjk, cos;  // [m] r_k - r_j, |r_jk|, 1/|r_jk|, cos
  std::vector<real> gk, dgk;                        // [groups][m] group factors of the kept k
  std::vector<real> fcjk, dfcjk;                    // [cutoffs][m]
  std::vector<real> gjk, dgjk;                      // [groups][m]  narrow factors of r_jk
  std::vector<real> value, slope;                   // [shapes][m]  (1 + lambda cos)^zeta, d/dcos
  std::vector<real> s_cos, s_j, s_k, s_jk;          // [m] sums over functions (backward)
  std::vector<real> cgx, cgy, cgz;                  // [m] dE/dr_ik of the row (backward)
  std::vector<real> gx, gy, gz;                     // [m] dE/dr_ij (backward)
  std::vector<typename bpnn_dual::Sum<real>::type> g;  // [functions] G of the centre (forward)
  std::vector<RowRange> rows;

  int64_t capacity = 0;  // slots the arrays hold

  void resize(int64_t slots, const Plan& plan, size_t n_shapes) {
    m = capacity = slots;
    const size_t n_cut = plan.cutoffs.size(), n_groups = plan.groups.size();
    for (auto* v : {&x, &y, &z, &r, &inv_r, &r2, &kx, &ky, &kz, &k_inv_r, &cgx, &cgy, &cgz, &dx, &dy, &dz, &rjk, &inv_rjk, &cos, &s_cos, &s_j, &s_k, &s_jk, &gx,
                    &gy, &gz}) {
      v->resize(m);
    }
    in.resize(3 * m);
    for (auto* v : {&fc, &dfc, &fcjk, &dfcjk}) v->resize(n_cut * m);
    for (auto* v : {&gr, &dgr, &gk, &dgk, &gjk, &dgjk}) v->resize(n_groups * m);
    slot.resize(m);
    value.resize(n_shapes * m);
    slope.resize(n_shapes * m);
    order.resize(m);
  }
};

size_t max_shapes(const Plan& plan) {
  size_t n = 1;
  for (const ElementPair& pair : plan.pairs) n = std::max(n, pair.shapes.size());
  return n;
}

}  // namespace
}  // namespace bpnn_acsf
