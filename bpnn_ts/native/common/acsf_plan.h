// The symmetry functions of one centre element, indexed for the CPU kernels' pair and triplet
// loops (cpu/acsf_centre.h; the GPU code reads them flattened, cuda/acsf_device_plan.h), from
// the parameter tables whose columns are named below:
//   radial (Fr, 5)  column, neighbour species, eta, r_s, r_c
//   angular (Fa, 9) column, species j, species k, narrow (1/0), eta, zeta, lambda, r_s, r_c
// ("column": the function's column in G (B, F); species: indices 0 .. n_species - 1).
#pragma once

#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <memory>
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

// The angular functions of one element pair that share a group and kind (narrow or wide): the
// CPU loops sum them in one pass over a batch of pairs {j, k} (cpu/acsf_sets.h).
struct FunctionSet {
  int group;
  bool narrow;
  std::vector<int> members;  // indexes ElementPair::functions
};

// The angular functions of one unordered neighbour-element pair.
struct ElementPair {
  std::vector<Angular> functions;
  std::vector<FunctionSet> sets;   // the functions by group and kind
  std::vector<Shape> shapes;
  std::vector<int> groups;         // groups used by its functions
  std::vector<int> narrow_groups;  // groups used by its narrow functions
  std::vector<int> wide_groups;    // groups used by its wide functions
  std::vector<int> narrow_cuts;    // their distinct cutoffs
  bool has_wide = false;
  double narrow_cutoff2 = 0.0;     // largest narrow r_c, squared

  void add_to_set(int function) {
    const Angular& fn = functions[function];
    for (FunctionSet& set : sets) {
      if (set.group == fn.group && set.narrow == fn.narrow) {
        set.members.push_back(function);
        return;
      }
    }
    sets.push_back({fn.group, fn.narrow, {function}});
  }

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

// The plan of the tables (radial (Fr, 5) and angular (Fa, 9), any dtype and device; checked:
// shapes, species in 0 .. n_species - 1, cutoff type `kind` in 0 .. 8), parsed the first time
// these values are seen and then held (acsf_plan.cpp: a cache keyed on the values, shared by the
// threads and the ops of one library), so an op call copies no table on the CPU and parses none.
// Tables on a GPU are copied to the host first: the CUDA launchers cache their device tables
// themselves and call this once per table.
C10_HIDDEN std::shared_ptr<const Plan> make_plan(const at::Tensor& radial, const at::Tensor& angular, int64_t n_species,
                                                 int64_t kind, double alpha);

}  // namespace bpnn_plan
