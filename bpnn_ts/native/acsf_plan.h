// The symmetry functions of one centre element, indexed for the ACSF kernels' pair and
// triplet loops (acsf_centre.h), from the parameter tables whose columns are named below:
//   radial (Fr, 5)  column, neighbour species, eta, r_s, r_c
//   angular (Fa, 9) column, species j, species k, narrow (1/0), eta, zeta, lambda, r_s, r_c
// ("column": the function's column in G (B, F); species: indices 0 .. n_species - 1).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace bpnn_plan {

// Columns of the radial table (Fr, kRadialWidth); Python mirror: RADIAL_COLUMNS in bpnn_ts/model/kernels.py.
enum RadialColumn : int { kRadialColumn, kRadialSpecies, kRadialEta, kRadialRs, kRadialRc, kRadialWidth };

// Columns of the angular table (Fa, kAngularWidth); Python mirror: ANGULAR_COLUMNS in bpnn_ts/model/kernels.py.
enum AngularColumn : int {
  kAngularColumn,
  kAngularSpeciesJ,
  kAngularSpeciesK,
  kAngularNarrow,  // 1: narrow (n2p2 type 3, with the r_jk terms), 0: wide (type 9)
  kAngularEta,
  kAngularZeta,
  kAngularLambda,
  kAngularRs,
  kAngularRc,
  kAngularWidth
};

struct Radial {
  int64_t column, species;
  double eta, r_s;
  int cut;  // index into Plan::cutoffs
};

// A distinct (eta, r_s, r_c): the pair factors exp(-eta (r - r_s)^2) f_c(r) its functions share.
struct Group {
  double eta, r_s;
  int cut;
};

// A distinct (lambda, zeta) of one element pair: the angular term (1 + lambda cos)^zeta.
struct Shape {
  double lambda, zeta;
  int integer_zeta;  // zeta if it is a positive integer (<= 64), else 0
};

struct Angular {
  int64_t column;
  int group, shape;  // shape indexes ElementPair::shapes
  bool narrow;
  double prefactor;  // 2^(1 - zeta)
};

// The angular functions of one unordered neighbour-element pair.
struct ElementPair {
  std::vector<Angular> functions;
  std::vector<Shape> shapes;
  std::vector<int> groups;         // groups used by its functions
  std::vector<int> narrow_groups;  // groups used by its narrow functions
  std::vector<int> narrow_cuts;    // their distinct cutoffs
  bool has_wide = false;
  double narrow_cutoff2 = 0.0;     // largest narrow r_c, squared

  int shape_index(double lambda, double zeta) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (shapes[i].lambda == lambda && shapes[i].zeta == zeta) return static_cast<int>(i);
    }
    const int integer_zeta = (zeta >= 1.0 && zeta <= 64.0 && zeta == std::floor(zeta)) ? static_cast<int>(zeta) : 0;
    shapes.push_back({lambda, zeta, integer_zeta});
    return static_cast<int>(shapes.size()) - 1;
  }
};

struct Plan {
  std::vector<double> cutoffs;
  std::vector<Radial> radial;
  std::vector<Group> groups;
  std::vector<ElementPair> pairs;  // [sj * S + sk], filled for both orders
  int64_t n_species = 0;
  int kind = 1;
  double alpha = 0.0;

  int cut_index(double rc) {
    for (size_t c = 0; c < cutoffs.size(); ++c) {
      if (cutoffs[c] == rc) return static_cast<int>(c);
    }
    cutoffs.push_back(rc);
    return static_cast<int>(cutoffs.size()) - 1;
  }

  int group_index(double eta, double r_s, int cut) {
    for (size_t g = 0; g < groups.size(); ++g) {
      if (groups[g].eta == eta && groups[g].r_s == r_s && groups[g].cut == cut) return static_cast<int>(g);
    }
    groups.push_back({eta, r_s, cut});
    return static_cast<int>(groups.size()) - 1;
  }
};

inline void add_unique(std::vector<int>& values, int value) {
  if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
}

inline Plan make_plan(const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_species, int64_t kind,
                      double alpha) {
  TORCH_CHECK(radial.dim() == 2 && radial.size(1) == kRadialWidth, "bpnn: radial parameters must be (Fr, ",
              kRadialWidth, ")");
  TORCH_CHECK(angular.dim() == 2 && angular.size(1) == kAngularWidth, "bpnn: angular parameters must be (Fa, ",
              kAngularWidth, ")");
  TORCH_CHECK(kind >= 0 && kind <= 8, "bpnn: unknown cutoff type ", kind);
  Plan plan;
  plan.n_species = n_species;
  plan.kind = static_cast<int>(kind);
  plan.alpha = alpha;
  auto r = radial.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = angular.to(torch::kCPU, torch::kFloat64).contiguous();
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
      add_unique(pair.groups, group);
      if (narrow) {
        add_unique(pair.narrow_groups, group);
        add_unique(pair.narrow_cuts, cut);
        pair.narrow_cutoff2 = std::max(pair.narrow_cutoff2, r_c * r_c);
      } else {
        pair.has_wide = true;
      }
      if (sj == sk) break;
    }
  }
  return plan;
}

}  // namespace bpnn_plan
