// The per-centre scratch of the CPU ACSF kernels (acsf_centre.h says what is computed): a
// centre's pairs sorted by neighbour element into slots, one array per quantity (structure of
// arrays), and the compact pairs {j, k} of one batch of rows. One per thread (thread_pool.h), resized to
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
using bpnn_plan::FunctionSet;
using bpnn_plan::Group;
using bpnn_plan::Plan;
using bpnn_plan::Radial;
using bpnn_plan::Shape;

// The rows of a centre: each j and the k of one element that form unordered pairs {j, k}
// with angular functions (same element: k > j), k = k0 .. k0 + n - 1.
struct RowRange {
  int64_t j, k0, n;
};

// Rows first .. last - 1 (of one element pair, `key`), loaded and summed together (acsf_load.h).
// A forward pass that remembers sets where its kept pairs are held: base .. base + kept - 1.
struct RowBatch {
  int64_t key, first, last;
  int64_t base = 0, kept = 0;
};

// Candidate pairs {j, k} per batch: long enough for the vector loops, small enough for the cache.
constexpr int64_t kBatchCandidates = 256;

// The rows of a batch's pair ends (Scratch::ends, Kept::ends): r_j, 1/|r_j|, r_k, 1/|r_k| of each
// pair {j, k}, gathered from the slots of j and k.
enum End { kJx, kJy, kJz, kJInvR, kKx, kKy, kKz, kKInvR, kEnds };

// Per-centre scratch. Slots are the centre's pairs sorted by neighbour element
// (block[s] .. block[s + 1] - 1 hold element s); "[n][m]" arrays are n rows of m slots, "[n][span]"
// n rows of one batch's pairs {j, k} (span: room for the largest batch).
template <typename real>
struct Scratch {
  int64_t m = 0, span = 0;
  std::vector<real> in;                  // [m][3] the centre's pair vectors, unsorted
  std::vector<real> x, y, z, r, inv_r;   // [m]
  std::vector<real> fc, dfc;             // [cutoffs][m]  f_c(r), df_c/dr
  std::vector<real> gr, dgr;             // [groups][m]   exp(-eta (r - r_s)^2) f_c(r) and d/dr
  std::vector<int64_t> order, block, next; // order[slot]: pair (within the centre) in that slot
  std::vector<real> r2;                  // [m] |r_jk|^2 of one row
  // One batch of kept pairs {j, k}:
  std::vector<int32_t> slot, j_slot;                 // [span] slots of k and j
  std::vector<real> ends;                            // [kEnds][span] r_j, 1/|r_j|, r_k, 1/|r_k| (Kept)
  std::vector<real> dx, dy, dz, rjk, inv_rjk, cos;   // [span] r_k - r_j, |r_jk|, 1/|r_jk|, cos
  std::vector<real> gj, dgj, gk, dgk;                // [groups][span] group factors of j and k
  std::vector<real> fcjk, dfcjk;                     // [cutoffs][span]
  std::vector<real> gjk, dgjk;                       // [groups][span]  narrow factors of r_jk and slopes
  std::vector<real> p, pj, pk, pjk;                  // [groups][span]  narrow products (Kept)
  std::vector<real> value, slope;                    // [shapes][span]  (1 + lambda cos)^zeta, d/dcos
  std::vector<real> s_cos, s_j, s_k, s_jk;           // [span] sums over functions (backward)
  std::vector<real> cjx, cjy, cjz, cgx, cgy, cgz;    // [span] dE/dr_ij, dE/dr_ik of each pair (backward)
  std::vector<real> gx, gy, gz;                      // [m] dE/dr_ij (backward)
  std::vector<typename bpnn_dual::Sum<real>::type> g;  // [functions] G of the centre (forward)
  std::vector<RowRange> rows;
  std::vector<RowBatch> batches;
  // The batches' costly terms, held from a forward pass for the backward pass of the same centre
  // (acsf_load.h: RowMode): [held] slots of k and j, |r_jk|, 1/|r_jk|; [kEnds][held] the pair
  // ends; [groups][held] the narrow products (Kept).
  int64_t held = 0;
  std::vector<int32_t> held_slot, held_j_slot;
  std::vector<real> held_rjk, held_inv_rjk, held_ends, held_p, held_pj, held_pk, held_pjk;
  // Where the loaded batch's slots, |r_jk|, 1/|r_jk|, pair ends (row e at e * stride) and narrow
  // products (group g's at g * stride) are: the held arrays (at the batch's base) or the batch
  // arrays (`view`). The narrow
  // products of a pair {j, k} and group g: p = g(r_j) g(r_k) g(r_jk), pj = g'(r_j) g(r_k) g(r_jk),
  // pk = g(r_j) g'(r_k) g(r_jk), pjk = g(r_j) g(r_k) g'(r_jk) (g' = dg/dr): all that the
  // functions' sums and slopes take from the group.
  struct Kept {
    int32_t *slot, *j_slot;
    real *rjk, *inv_rjk, *ends, *p, *pj, *pk, *pjk;
    int64_t stride;

    real* end(End e) const { return ends + e * stride; }
  } kept{};

  // Points `kept` at the held arrays from `base` (held) or at the batch arrays.
  void view(bool in_held, int64_t base) {
    if (in_held) {
      kept = {held_slot.data() + base, held_j_slot.data() + base, held_rjk.data() + base, held_inv_rjk.data() + base,
              held_ends.data() + base, held_p.data() + base, held_pj.data() + base, held_pk.data() + base,
              held_pjk.data() + base, held};
    } else {
      kept = {slot.data(), j_slot.data(), rjk.data(), inv_rjk.data(), ends.data(), p.data(), pj.data(), pk.data(),
              pjk.data(), span};
    }
  }

  int64_t capacity = 0;  // slots the arrays hold

  // Room for `count` held pairs.
  void hold(int64_t count, const Plan& plan) {
    if (count <= held) return;
    held = count;
    for (auto* v : {&held_slot, &held_j_slot}) v->resize(count);
    for (auto* v : {&held_rjk, &held_inv_rjk}) v->resize(count);
    held_ends.resize(kEnds * count);
    for (auto* v : {&held_p, &held_pj, &held_pk, &held_pjk}) v->resize(plan.groups.size() * count);
  }

  void resize(int64_t slots, const Plan& plan, size_t n_shapes) {
    m = capacity = slots;
    // A batch has fewer than kBatchCandidates + one row's pairs, and at most m^2 / 2.
    span = capacity + std::min(kBatchCandidates, capacity * capacity / 2);
    const size_t n_cut = plan.cutoffs.size(), n_groups = plan.groups.size();
    for (auto* v : {&x, &y, &z, &r, &inv_r, &r2, &gx, &gy, &gz}) v->resize(m);
    for (auto* v : {&dx, &dy, &dz, &rjk, &inv_rjk, &cos, &s_cos, &s_j, &s_k, &s_jk, &cjx, &cjy, &cjz, &cgx, &cgy,
                    &cgz}) {
      v->resize(span);
    }
    ends.resize(kEnds * span);
    in.resize(3 * m);
    for (auto* v : {&fc, &dfc}) v->resize(n_cut * m);
    for (auto* v : {&fcjk, &dfcjk}) v->resize(n_cut * span);
    for (auto* v : {&gr, &dgr}) v->resize(n_groups * m);
    for (auto* v : {&gj, &dgj, &gk, &dgk, &gjk, &dgjk, &p, &pj, &pk, &pjk}) v->resize(n_groups * span);
    slot.resize(span);
    j_slot.resize(span);
    value.resize(n_shapes * span);
    slope.resize(n_shapes * span);
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
