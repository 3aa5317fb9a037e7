// Host side of the GPU kernels' parameters: bpnn_plan::Plan (acsf_plan.h) flattened into the one
// float64 block that acsf_device.h's DevicePlan describes, so that a launch copies one array.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../common/acsf_plan.h"
#include "acsf_device.h"

namespace bpnn_device {

// A DevicePlan (offsets and counts; `data` unset) and the values its offsets point into.
struct FlatPlan {
  DevicePlan header;
  std::vector<double> values;
};

inline FlatPlan flatten(const bpnn_plan::Plan& plan) {
  FlatPlan flat;
  DevicePlan& h = flat.header;
  std::vector<double>& v = flat.values;
  const int64_t n_keys = plan.n_species * plan.n_species;
  h.n_species = plan.n_species;
  h.kind = plan.kind;
  h.alpha = plan.alpha;
  h.n_cut = static_cast<int64_t>(plan.cutoffs.size());
  h.n_radial = static_cast<int64_t>(plan.radial.size());
  h.n_groups = static_cast<int64_t>(plan.groups.size());
  h.cutoffs_at = 0;
  v.insert(v.end(), plan.cutoffs.begin(), plan.cutoffs.end());
  h.radial_at = static_cast<int64_t>(v.size());
  for (const bpnn_plan::Radial& fn : plan.radial) {
    v.insert(v.end(), {static_cast<double>(fn.column), static_cast<double>(fn.species), fn.eta, fn.r_s,
                       static_cast<double>(fn.cut)});
  }
  h.groups_at = static_cast<int64_t>(v.size());
  for (const bpnn_plan::Group& group : plan.groups) v.insert(v.end(), {group.eta, group.r_s, static_cast<double>(group.cut)});
  // Entries per element pair, sorted so that a thread reuses a triplet's |r_jk| factor (same
  // group) and angular term (same lambda, zeta) from one entry to the next.
  std::vector<double> entries, first(1, 0.0), limit2;
  for (int64_t key = 0; key < n_keys; ++key) {
    const bpnn_plan::ElementPair& pair = plan.pairs[key];
    std::vector<bpnn_plan::Angular> functions(pair.functions.begin(), pair.functions.end());
    std::stable_sort(functions.begin(), functions.end(), [&](const bpnn_plan::Angular& a, const bpnn_plan::Angular& b) {
      const bpnn_plan::Shape &sa = pair.shapes[a.shape], &sb = pair.shapes[b.shape];
      if (a.group != b.group) return a.group < b.group;
      if (sa.lambda != sb.lambda) return sa.lambda < sb.lambda;
      return sa.zeta < sb.zeta;
    });
    for (const bpnn_plan::Angular& fn : functions) {
      const bpnn_plan::Shape& shape = pair.shapes[fn.shape];
      entries.insert(entries.end(), {static_cast<double>(fn.column), static_cast<double>(fn.group), fn.narrow ? 1.0 : 0.0,
                                     fn.prefactor, shape.lambda, shape.zeta, static_cast<double>(shape.integer_zeta)});
    }
    first.push_back(static_cast<double>(entries.size() / kEntryFields));
    limit2.push_back(pair.has_wide ? std::numeric_limits<double>::infinity() : pair.narrow_cutoff2);
  }
  h.first_at = static_cast<int64_t>(v.size());
  v.insert(v.end(), first.begin(), first.end());
  h.limit2_at = static_cast<int64_t>(v.size());
  v.insert(v.end(), limit2.begin(), limit2.end());
  h.entries_at = static_cast<int64_t>(v.size());
  h.n_entries = static_cast<int64_t>(entries.size() / kEntryFields);
  v.insert(v.end(), entries.begin(), entries.end());
  h.size = static_cast<int64_t>(v.size());
  if (v.empty()) v.push_back(0.0);  // a valid pointer even for no functions
  return flat;
}

}  // namespace bpnn_device
