// make_plan (acsf_plan.h): the tables parsed into a Plan once, then held between op calls. The
// cache is keyed on the tables' values (float64 on the host, compared byte for byte), n_species,
// the cutoff type and alpha, so a table whose memory is reused for other values, or that is
// changed in place, gets a plan of its own; it holds the last kMostPlans plans (a model has one
// per element), dropping the oldest. One mutex guards it: the ops run on several Python threads
// and C++ engine threads at once. The plans are immutable, shared (std::shared_ptr) with the
// calls that use them, so dropping one from the cache never pulls it from under a running op.
// One cache per library (libbpnn, and the test-only emulation its own): hidden symbols.
#include "acsf_plan.h"

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <mutex>
#include <vector>

namespace bpnn_plan {
namespace {

constexpr size_t kMostPlans = 64;

void add_unique(std::vector<int>& values, int value) {
  if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
}

// The plan of float64, contiguous host tables r (Fr, kRadialWidth) and a (Fa, kAngularWidth).
Plan parse_plan(const at::Tensor& r, const at::Tensor& a, int64_t n_species, int64_t kind, double alpha) {
  Plan plan;
  plan.n_species = n_species;
  plan.kind = static_cast<int>(kind);
  plan.alpha = alpha;
  const double* rp = r.data_ptr<double>();
  for (int64_t f = 0; f < r.size(0); ++f, rp += kRadialWidth) {
    const auto species = static_cast<int64_t>(rp[kRadialSpecies]);
    TORCH_CHECK(species >= 0 && species < n_species, "bpnn: radial species out of range");
    plan.radial.push_back({static_cast<int64_t>(rp[kRadialColumn]), species, rp[kRadialEta], rp[kRadialRs],
                           plan.cut_index(rp[kRadialRc])});
  }
  plan.pairs.assign(n_species * n_species, {});
  const double* ap = a.data_ptr<double>();
  for (int64_t f = 0; f < a.size(0); ++f, ap += kAngularWidth) {
    const double r_c = ap[kAngularRc];
    const int cut = plan.cut_index(r_c);
    const int group = plan.group_index(ap[kAngularEta], ap[kAngularRs], cut);
    const bool narrow = ap[kAngularNarrow] != 0.0;
    const double zeta = ap[kAngularZeta];
    const auto sj = static_cast<int64_t>(ap[kAngularSpeciesJ]), sk = static_cast<int64_t>(ap[kAngularSpeciesK]);
    TORCH_CHECK(sj >= 0 && sj < n_species && sk >= 0 && sk < n_species, "bpnn: angular species out of range");
    for (int64_t key : {sj * n_species + sk, sk * n_species + sj}) {
      ElementPair& pair = plan.pairs[key];
      pair.functions.push_back({static_cast<int64_t>(ap[kAngularColumn]), group,
                                pair.shape_index(ap[kAngularLambda], zeta), narrow, std::pow(2.0, 1.0 - zeta)});
      pair.add_to_set(static_cast<int>(pair.functions.size()) - 1);
      add_unique(pair.groups, group);
      if (narrow) {
        add_unique(pair.narrow_groups, group);
        add_unique(pair.narrow_cuts, cut);
        pair.narrow_cutoff2 = std::max(pair.narrow_cutoff2, r_c * r_c);
      } else {
        add_unique(pair.wide_groups, group);
        pair.has_wide = true;
      }
      if (sj == sk) break;
    }
  }
  return plan;
}

bool same_values(const std::vector<double>& held, const at::Tensor& table) {
  return static_cast<int64_t>(held.size()) == table.numel() &&
         (held.empty() || std::memcmp(held.data(), table.data_ptr<double>(), held.size() * sizeof(double)) == 0);
}

std::vector<double> values_of(const at::Tensor& table) {
  const double* begin = table.data_ptr<double>();
  return std::vector<double>(begin, begin + table.numel());
}

// A held plan and what it was made from.
struct Entry {
  std::vector<double> radial, angular;
  int64_t n_species, kind;
  double alpha;
  std::shared_ptr<const Plan> plan;

  bool made_from(const at::Tensor& r, const at::Tensor& a, int64_t species, int64_t cutoff_type,
                 double cutoff_alpha) const {
    return n_species == species && kind == cutoff_type &&
           std::memcmp(&alpha, &cutoff_alpha, sizeof(double)) == 0 && same_values(radial, r) &&
           same_values(angular, a);
  }
};

class PlanCache {
 public:
  std::shared_ptr<const Plan> get(const at::Tensor& r, const at::Tensor& a, int64_t n_species, int64_t kind,
                                  double alpha) {
    if (auto held = find(r, a, n_species, kind, alpha)) return held;
    // Parsed outside the lock (it may throw on bad tables, which are then never held).
    auto plan = std::make_shared<const Plan>(parse_plan(r, a, n_species, kind, alpha));
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Entry& entry : entries_) {  // another thread may have parsed the same tables meanwhile
      if (entry.made_from(r, a, n_species, kind, alpha)) return entry.plan;
    }
    if (entries_.size() >= kMostPlans) entries_.pop_front();
    entries_.push_back({values_of(r), values_of(a), n_species, kind, alpha, plan});
    return plan;
  }

 private:
  std::shared_ptr<const Plan> find(const at::Tensor& r, const at::Tensor& a, int64_t n_species, int64_t kind,
                                   double alpha) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Entry& entry : entries_) {
      if (entry.made_from(r, a, n_species, kind, alpha)) return entry.plan;
    }
    return nullptr;
  }

  std::mutex mutex_;
  std::deque<Entry> entries_;  // oldest first
};

}  // namespace

std::shared_ptr<const Plan> make_plan(const at::Tensor& radial, const at::Tensor& angular, int64_t n_species,
                                      int64_t kind, double alpha) {
  TORCH_CHECK(radial.dim() == 2 && radial.size(1) == kRadialWidth, "bpnn: radial parameters must be (Fr, ",
              kRadialWidth, ")");
  TORCH_CHECK(angular.dim() == 2 && angular.size(1) == kAngularWidth, "bpnn: angular parameters must be (Fa, ",
              kAngularWidth, ")");
  TORCH_CHECK(kind >= 0 && kind <= 8, "bpnn: unknown cutoff type ", kind);
  static PlanCache cache;
  const auto as_table = [](const at::Tensor& t) {  // (no op call where it is one already: small systems)
    return t.is_cpu() && t.scalar_type() == at::kDouble && t.is_contiguous() ? t : t.to(at::kCPU, at::kDouble).contiguous();
  };
  return cache.get(as_table(radial), as_table(angular), n_species, kind, alpha);
}

}  // namespace bpnn_plan
