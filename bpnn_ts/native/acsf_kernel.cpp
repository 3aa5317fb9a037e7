// Fused CPU kernels for atom-centred symmetry functions (n2p2 types 2, 3, 9) and their
// derivatives contracted with dE/dG, registered as torch.ops.bpnn.acsf / acsf_backward, and a
// cell-list pair search, torch.ops.bpnn.cell_list.
//
// One centre at a time: per-pair radial factors exp(-eta (r - r_s)^2) f_c(r) are computed once
// per distinct (eta, r_s, r_c) and reused by every angular function of that group (as n2p2
// groups its functions), integer zeta by repeated multiplication, and each unordered
// neighbour pair {j, k} visited once. The same file is compiled into the C++ loader library
// (so bpnn_run and the LAMMPS plugin have the ops) and, for Python, by
// torch.utils.cpp_extension (bpnn_ts/native/__init__.py). Definitions: bpnn_ts/descriptors/params.py.
//
// Inputs (shared by both ops):
//   vectors (P, 3)  pair vectors r_ij = R_j - R_i, Å, grouped by centre
//   offsets (B + 1) pairs of centre b are offsets[b] .. offsets[b + 1] - 1
//   species (P,)    species index of each neighbour j
//   radial (Fr, 5)  rows: column, neighbour species, eta, r_s, r_c
//   angular (Fa, 9) rows: column, species j, species k, narrow (1/0), eta, zeta, lambda, r_s, r_c
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTanhScale = 2.2637537952253504;  // ((e + 1/e) / (e - 1/e))^3

// f_c(r) and df_c/dr for n2p2 cutoff types 0..8 (bpnn_ts/cutoffs.py has the formulas).
inline void cutoff(double r, double rc, int kind, double alpha, double& f, double& slope) {
  f = 0.0;
  slope = 0.0;
  if (r >= rc) return;
  if (kind == 0) {
    f = 1.0;
    return;
  }
  if (kind == 2 || kind == 3) {
    const double e = std::exp(-2.0 * (1.0 - r / rc));  // tanh(u) = (1 - e^-2u) / (1 + e^-2u): one exp
    const double t = (1.0 - e) / (1.0 + e);
    const double scale = kind == 3 ? kTanhScale : 1.0;
    f = scale * t * t * t;
    slope = -3.0 * scale * t * t * (1.0 - t * t) / rc;
    return;
  }
  const double rci = alpha * rc;
  const double width = rc - rci;
  const double x = (r - rci) / width;
  if (x <= 0.0) {
    f = 1.0;
    return;
  }
  double dfdx = 0.0;
  switch (kind) {
    case 1:
      f = 0.5 * (std::cos(kPi * x) + 1.0);
      dfdx = -0.5 * kPi * std::sin(kPi * x);
      break;
    case 4: {
      const double one_minus = 1.0 - x * x;
      f = std::exp(1.0 - 1.0 / one_minus);
      dfdx = -2.0 * x * f / (one_minus * one_minus);
      break;
    }
    case 5:
      f = (2.0 * x - 3.0) * x * x + 1.0;
      dfdx = 6.0 * x * (x - 1.0);
      break;
    case 6: {
      f = ((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0;
      const double xm = x * (x - 1.0);
      dfdx = -30.0 * xm * xm;
      break;
    }
    case 7: {
      const double x2 = x * x;
      f = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0;
      const double xm = x * (x - 1.0);
      dfdx = 140.0 * xm * xm * xm;
      break;
    }
    case 8: {
      const double x2 = x * x;
      f = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0;
      const double xm = x * (x - 1.0);
      dfdx = -630.0 * xm * xm * xm * xm;
      break;
    }
    default:
      throw std::invalid_argument("bpnn: unknown cutoff type " + std::to_string(kind));
  }
  slope = dfdx / width;
}

// base^zeta for base > 0 (repeated squaring for integer zeta) and zeta * base^(zeta - 1).
inline void power(double base, double zeta, int integer_zeta, double& value, double& slope) {
  if (base <= 0.0) {
    value = 0.0;
    slope = 0.0;
    return;
  }
  if (integer_zeta > 0) {
    double result = 1.0, b = base;
    for (int e = integer_zeta - 1; e > 0; e >>= 1) {  // base^(zeta - 1)
      if (e & 1) result *= b;
      b *= b;
    }
    value = result * base;
    slope = zeta * result;
  } else {
    value = std::pow(base, zeta);
    slope = zeta * value / base;
  }
}

struct Radial {
  int64_t column, species;
  double eta, r_s;
  int cut;  // index into the distinct cutoffs
};

struct Angular {
  int64_t column;
  int group;  // distinct (eta, r_s, r_c) of the pair factors
  bool narrow;
  double zeta, lambda, prefactor;
  int integer_zeta;  // zeta if it is a positive integer, else 0
};

struct Group {
  double eta, r_s;
  int cut;
};

// The functions of one centre element, indexed for the pair and triplet loops.
struct Plan {
  std::vector<double> cutoffs;
  std::vector<Radial> radial;
  std::vector<Group> groups;
  std::vector<std::vector<Angular>> by_species_pair;  // [sj * S + sk], unordered (both orders filled)
  std::vector<std::vector<int>> narrow_groups;         // groups that narrow functions of a pair use
  std::vector<char> has_wide;                          // [sj * S + sk]: any wide function
  std::vector<double> narrow_cutoff2;                  // [sj * S + sk]: largest narrow r_c, squared
  int64_t n_species = 0;
  int kind = 1;
  double alpha = 0.0;
  double largest_narrow_cutoff = 0.0;

  int cut_index(double rc) {
    for (size_t c = 0; c < cutoffs.size(); ++c) {
      if (cutoffs[c] == rc) return static_cast<int>(c);
    }
    cutoffs.push_back(rc);
    return static_cast<int>(cutoffs.size()) - 1;
  }
};

Plan make_plan(const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_species, int64_t kind,
               double alpha) {
  TORCH_CHECK(radial.dim() == 2 && radial.size(1) == 5, "bpnn: radial parameters must be (Fr, 5)");
  TORCH_CHECK(angular.dim() == 2 && angular.size(1) == 9, "bpnn: angular parameters must be (Fa, 9)");
  Plan plan;
  plan.n_species = n_species;
  plan.kind = static_cast<int>(kind);
  plan.alpha = alpha;
  auto r = radial.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = angular.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* rp = r.data_ptr<double>();
  for (int64_t f = 0; f < r.size(0); ++f, rp += 5) {
    plan.radial.push_back({static_cast<int64_t>(rp[0]), static_cast<int64_t>(rp[1]), rp[2], rp[3], plan.cut_index(rp[4])});
  }
  plan.by_species_pair.assign(n_species * n_species, {});
  plan.narrow_groups.assign(n_species * n_species, {});
  plan.has_wide.assign(n_species * n_species, 0);
  plan.narrow_cutoff2.assign(n_species * n_species, 0.0);
  const double* ap = a.data_ptr<double>();
  for (int64_t f = 0; f < a.size(0); ++f, ap += 9) {
    const int cut = plan.cut_index(ap[8]);
    int group = -1;
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      if (plan.groups[g].eta == ap[4] && plan.groups[g].r_s == ap[7] && plan.groups[g].cut == cut) group = static_cast<int>(g);
    }
    if (group < 0) {
      plan.groups.push_back({ap[4], ap[7], cut});
      group = static_cast<int>(plan.groups.size()) - 1;
    }
    const double zeta = ap[5];
    const int integer_zeta = (zeta >= 1.0 && zeta <= 64.0 && zeta == std::floor(zeta)) ? static_cast<int>(zeta) : 0;
    const bool narrow = ap[3] != 0.0;
    Angular fn{static_cast<int64_t>(ap[0]), group, narrow, zeta, ap[6], std::pow(2.0, 1.0 - zeta), integer_zeta};
    const auto sj = static_cast<int64_t>(ap[1]), sk = static_cast<int64_t>(ap[2]);
    TORCH_CHECK(sj >= 0 && sj < n_species && sk >= 0 && sk < n_species, "bpnn: angular species out of range");
    for (int64_t key : {sj * n_species + sk, sk * n_species + sj}) {
      plan.by_species_pair[key].push_back(fn);
      if (narrow) {
        auto& groups = plan.narrow_groups[key];
        if (std::find(groups.begin(), groups.end(), group) == groups.end()) groups.push_back(group);
        std::sort(groups.begin(), groups.end(), [&](int x, int y) { return plan.groups[x].cut < plan.groups[y].cut; });
        plan.largest_narrow_cutoff = std::max(plan.largest_narrow_cutoff, ap[8]);
        plan.narrow_cutoff2[key] = std::max(plan.narrow_cutoff2[key], ap[8] * ap[8]);
      } else {
        plan.has_wide[key] = 1;
      }
      if (sj == sk) break;
    }
  }
  return plan;
}

void check_inputs(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species) {
  TORCH_CHECK(vectors.device().is_cpu(), "bpnn: the fused ACSF kernel runs on the CPU only");
  TORCH_CHECK(vectors.dim() == 2 && vectors.size(1) == 3, "bpnn: vectors must be (P, 3)");
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1, "bpnn: offsets must be (B + 1,)");
  TORCH_CHECK(species.dim() == 1 && species.size(0) == vectors.size(0), "bpnn: species must be (P,)");
}

// Per-centre scratch: pair distances, unit-free vectors, cutoff and group factors.
struct Scratch {
  std::vector<double> x, r, fc, dfc, gr, dgr, gjk, dgjk;
  std::vector<int64_t> s, order, block, next;  // order: pair (within centre) of each sorted slot; block: first slot per species
  void resize(int64_t m, size_t n_cut, size_t n_groups) {
    x.resize(3 * m);
    r.resize(m);
    s.resize(m);
    order.resize(m);
    fc.resize(m * n_cut);
    dfc.resize(m * n_cut);
    gr.resize(m * n_groups);
    dgr.resize(m * n_groups);
    gjk.resize(n_groups);
    dgjk.resize(n_groups);
  }
};

// Fills the scratch for the m pairs of one centre starting at pair p0, in slots sorted by
// neighbour species (block[s] .. block[s + 1] - 1 hold species s).
template <typename scalar_t>
void load_centre(const Plan& plan, const scalar_t* vectors, const int64_t* species, int64_t p0, int64_t m,
                 Scratch& w) {
  const size_t n_cut = plan.cutoffs.size(), n_groups = plan.groups.size();
  w.resize(m, n_cut, n_groups);
  w.block.assign(plan.n_species + 1, 0);
  for (int64_t a = 0; a < m; ++a) {
    const int64_t sp = species[p0 + a];
    TORCH_CHECK(sp >= 0 && sp < plan.n_species, "bpnn: neighbour species out of range");
    ++w.block[sp + 1];
  }
  for (int64_t e = 0; e < plan.n_species; ++e) w.block[e + 1] += w.block[e];
  w.next.assign(w.block.begin(), w.block.end() - 1);  // reused scratch: no allocation per centre
  for (int64_t a = 0; a < m; ++a) w.order[w.next[species[p0 + a]]++] = a;
  for (int64_t slot = 0; slot < m; ++slot) {
    const int64_t a = w.order[slot];
    double r2 = 0.0;
    for (int d = 0; d < 3; ++d) {
      const double v = static_cast<double>(vectors[3 * (p0 + a) + d]);
      w.x[3 * slot + d] = v;
      r2 += v * v;
    }
    const double r = std::sqrt(r2);
    w.r[slot] = r;
    w.s[slot] = species[p0 + a];
    for (size_t c = 0; c < n_cut; ++c) {
      cutoff(r, plan.cutoffs[c], plan.kind, plan.alpha, w.fc[slot * n_cut + c], w.dfc[slot * n_cut + c]);
    }
    for (size_t g = 0; g < n_groups; ++g) {
      const Group& group = plan.groups[g];
      const double shifted = r - group.r_s;
      const double gauss = std::exp(-group.eta * shifted * shifted);
      const double f = w.fc[slot * n_cut + group.cut], df = w.dfc[slot * n_cut + group.cut];
      w.gr[slot * n_groups + g] = gauss * f;
      w.dgr[slot * n_groups + g] = gauss * (df - 2.0 * group.eta * shifted * f);
    }
  }
}

// Narrow-function factors of the pair (j, k): exp(-eta (r_jk - r_s)^2) f_c(r_jk) per group used
// (the cutoff function once per distinct r_c).
inline void load_jk(const Plan& plan, const std::vector<int>& groups, double r_jk, Scratch& w) {
  int last_cut = -1;
  double f = 0.0, df = 0.0;
  for (int g : groups) {
    const Group& group = plan.groups[g];
    if (group.cut != last_cut) {
      cutoff(r_jk, plan.cutoffs[group.cut], plan.kind, plan.alpha, f, df);
      last_cut = group.cut;
    }
    if (f == 0.0 && df == 0.0) {
      w.gjk[g] = 0.0;
      w.dgjk[g] = 0.0;
      continue;
    }
    const double shifted = r_jk - group.r_s;
    const double gauss = std::exp(-group.eta * shifted * shifted);
    w.gjk[g] = gauss * f;
    w.dgjk[g] = gauss * (df - 2.0 * group.eta * shifted * f);
  }
}

// Calls visit(j, k, key, cos, r_jk, djk) for every unordered neighbour pair {j, k} (sorted slots)
// whose element pair has functions and that can contribute (narrow-only pairs need r_jk < r_c).
template <typename Visit>
inline void for_each_triplet(const Plan& plan, const Scratch& w, Visit&& visit) {
  const int64_t n_species = plan.n_species;
  for (int64_t sa = 0; sa < n_species; ++sa) {
    for (int64_t sb = sa; sb < n_species; ++sb) {
      const int64_t key = sa * n_species + sb;
      if (plan.by_species_pair[key].empty()) continue;
      const bool wide = plan.has_wide[key] != 0;
      const double limit2 = plan.narrow_cutoff2[key];
      for (int64_t j = w.block[sa]; j < w.block[sa + 1]; ++j) {
        const double* xj = &w.x[3 * j];
        const double rj = w.r[j];
        for (int64_t k = (sa == sb ? j + 1 : w.block[sb]); k < w.block[sb + 1]; ++k) {
          const double* xk = &w.x[3 * k];
          const double djk[3] = {xk[0] - xj[0], xk[1] - xj[1], xk[2] - xj[2]};
          const double r_jk2 = djk[0] * djk[0] + djk[1] * djk[1] + djk[2] * djk[2];
          if (!wide && r_jk2 >= limit2) continue;
          const double cos = (xj[0] * xk[0] + xj[1] * xk[1] + xj[2] * xk[2]) / (rj * w.r[k]);
          visit(j, k, key, cos, r_jk2 > 1e-20 ? std::sqrt(r_jk2) : 0.0, djk);
        }
      }
    }
  }
}

// Narrow factors of the pair (j, k) for the groups its functions use (0 for coincident j, k).
inline void load_pair_jk(const Plan& plan, int64_t key, double r_jk, Scratch& w) {
  const auto& narrow = plan.narrow_groups[key];
  if (narrow.empty()) return;
  if (r_jk > 0.0) {
    load_jk(plan, narrow, r_jk, w);
  } else {
    for (int g : narrow) w.gjk[g] = w.dgjk[g] = 0.0;
  }
}

template <typename scalar_t>
void forward_kernel(const Plan& plan, const scalar_t* vectors, const int64_t* offsets, const int64_t* species,
                    int64_t n_centres, int64_t n_functions, scalar_t* out) {
  Scratch w;
  const size_t n_cut = plan.cutoffs.size(), n_groups = plan.groups.size();
  std::vector<double> g(n_functions);
  for (int64_t b = 0; b < n_centres; ++b) {
    const int64_t p0 = offsets[b], m = offsets[b + 1] - p0;
    std::fill(g.begin(), g.end(), 0.0);
    load_centre(plan, vectors, species, p0, m, w);
    for (const Radial& fn : plan.radial) {
      double sum = 0.0;
      for (int64_t a = w.block[fn.species]; a < w.block[fn.species + 1]; ++a) {
        const double shifted = w.r[a] - fn.r_s;
        sum += std::exp(-fn.eta * shifted * shifted) * w.fc[a * n_cut + fn.cut];
      }
      g[fn.column] += sum;
    }
    for_each_triplet(plan, w, [&](int64_t j, int64_t k, int64_t key, double cos, double r_jk, const double*) {
      load_pair_jk(plan, key, r_jk, w);
      for (const Angular& fn : plan.by_species_pair[key]) {
        double pair = w.gr[j * n_groups + fn.group] * w.gr[k * n_groups + fn.group];
        if (fn.narrow) pair *= w.gjk[fn.group];
        if (pair == 0.0) continue;
        double value, slope;
        power(1.0 + fn.lambda * cos, fn.zeta, fn.integer_zeta, value, slope);
        g[fn.column] += fn.prefactor * value * pair;
      }
    });
    for (int64_t f = 0; f < n_functions; ++f) out[b * n_functions + f] = static_cast<scalar_t>(g[f]);
  }
}

template <typename scalar_t>
void backward_kernel(const Plan& plan, const scalar_t* vectors, const int64_t* offsets, const int64_t* species,
                     int64_t n_centres, int64_t n_functions, const scalar_t* d_g, scalar_t* out) {
  Scratch w;
  const size_t n_cut = plan.cutoffs.size(), n_groups = plan.groups.size();
  std::vector<double> grad, weight(n_functions);
  for (int64_t b = 0; b < n_centres; ++b) {
    const int64_t p0 = offsets[b], m = offsets[b + 1] - p0;
    load_centre(plan, vectors, species, p0, m, w);
    for (int64_t f = 0; f < n_functions; ++f) weight[f] = static_cast<double>(d_g[b * n_functions + f]);
    grad.assign(3 * m, 0.0);
    // Radial: dE/dr_j = sum_f w_f dG_f/d|r_j| r_j / |r_j|.
    for (const Radial& fn : plan.radial) {
      const double wf = weight[fn.column];
      if (wf == 0.0) continue;
      for (int64_t a = w.block[fn.species]; a < w.block[fn.species + 1]; ++a) {
        const double shifted = w.r[a] - fn.r_s;
        const double gauss = std::exp(-fn.eta * shifted * shifted);
        const double f = w.fc[a * n_cut + fn.cut], df = w.dfc[a * n_cut + fn.cut];
        const double d_r = wf * gauss * (df - 2.0 * fn.eta * shifted * f) / w.r[a];
        for (int d = 0; d < 3; ++d) grad[3 * a + d] += d_r * w.x[3 * a + d];
      }
    }
    // Angular: per pair {j, k}, sum the functions' dT/dcos, dT/d|r_j|, dT/d|r_k|, dT/d|r_jk|.
    for_each_triplet(plan, w, [&](int64_t j, int64_t k, int64_t key, double cos, double r_jk, const double* djk) {
      load_pair_jk(plan, key, r_jk, w);
      double s_cos = 0.0, s_j = 0.0, s_k = 0.0, s_jk = 0.0;
      for (const Angular& fn : plan.by_species_pair[key]) {
        const double wf = weight[fn.column];
        const double gj = w.gr[j * n_groups + fn.group], gk = w.gr[k * n_groups + fn.group];
        const double dgj = w.dgr[j * n_groups + fn.group], dgk = w.dgr[k * n_groups + fn.group];
        double jk = 1.0, djk_factor = 0.0;
        if (fn.narrow) {
          jk = w.gjk[fn.group];
          djk_factor = w.dgjk[fn.group];
          if (jk == 0.0 && djk_factor == 0.0) continue;
        }
        double value, slope;
        power(1.0 + fn.lambda * cos, fn.zeta, fn.integer_zeta, value, slope);
        const double c = wf * fn.prefactor;
        s_jk += c * value * gj * gk * djk_factor;
        const double cj = c * jk;
        s_cos += cj * slope * fn.lambda * gj * gk;
        s_j += cj * value * dgj * gk;
        s_k += cj * value * gj * dgk;
      }
      // d cos/d r_j = r_k / (|r_j||r_k|) - cos r_j / |r_j|^2 (and j <-> k); d|r_jk|/d r_j = -r_jk / |r_jk|.
      const double* xj = &w.x[3 * j];
      const double* xk = &w.x[3 * k];
      const double rj = w.r[j], rk = w.r[k];
      const double inv_jk = s_cos / (rj * rk);
      const double a_j = -s_cos * cos / (rj * rj) + s_j / rj;
      const double a_k = -s_cos * cos / (rk * rk) + s_k / rk;
      const double c_jk = r_jk > 0.0 ? s_jk / r_jk : 0.0;
      for (int d = 0; d < 3; ++d) {
        grad[3 * j + d] += a_j * xj[d] + inv_jk * xk[d] - c_jk * djk[d];
        grad[3 * k + d] += a_k * xk[d] + inv_jk * xj[d] + c_jk * djk[d];
      }
    });
    for (int64_t slot = 0; slot < m; ++slot) {
      for (int d = 0; d < 3; ++d) out[3 * (p0 + w.order[slot]) + d] = static_cast<scalar_t>(grad[3 * slot + d]);
    }
  }
}

// The inputs both ACSF ops share, checked and made contiguous.
struct KernelInputs {
  torch::Tensor vectors, offsets, species;
  Plan plan;
  int64_t n_centres;

  KernelInputs(const torch::Tensor& v, const torch::Tensor& o, const torch::Tensor& s, const torch::Tensor& radial,
               const torch::Tensor& angular, int64_t n_species, int64_t cutoff_type, double cutoff_alpha)
      : vectors(v.contiguous()), offsets(o.to(torch::kInt64).contiguous()), species(s.to(torch::kInt64).contiguous()),
        plan(make_plan(radial, angular, n_species, cutoff_type, cutoff_alpha)), n_centres(o.size(0) - 1) {
    check_inputs(v, o, s);
    const int64_t* off = offsets.data_ptr<int64_t>();
    TORCH_CHECK(off[0] == 0 && off[n_centres] == v.size(0), "bpnn: offsets must run from 0 to the number of pairs");
    for (int64_t b = 0; b < n_centres; ++b) TORCH_CHECK(off[b] <= off[b + 1], "bpnn: offsets must not decrease");
  }
};

torch::Tensor acsf(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                   const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                   int64_t n_species, int64_t cutoff_type, double cutoff_alpha) {
  KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  auto out = torch::zeros({in.n_centres, n_functions}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf", [&] {
    forward_kernel<scalar_t>(in.plan, in.vectors.data_ptr<scalar_t>(), in.offsets.data_ptr<int64_t>(),
                             in.species.data_ptr<int64_t>(), in.n_centres, n_functions, out.data_ptr<scalar_t>());
  });
  return out;
}

torch::Tensor acsf_backward(const torch::Tensor& vectors, const torch::Tensor& offsets, const torch::Tensor& species,
                            const torch::Tensor& radial, const torch::Tensor& angular, int64_t n_functions,
                            int64_t n_species, int64_t cutoff_type, double cutoff_alpha, const torch::Tensor& d_g) {
  KernelInputs in(vectors, offsets, species, radial, angular, n_species, cutoff_type, cutoff_alpha);
  TORCH_CHECK(d_g.dim() == 2 && d_g.size(0) == in.n_centres && d_g.size(1) == n_functions,
              "bpnn: d_g must be (B, n_functions)");
  auto weights = d_g.to(in.vectors.scalar_type()).contiguous();
  auto out = torch::zeros({in.vectors.size(0), 3}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(in.vectors.scalar_type(), "bpnn_acsf_backward", [&] {
    backward_kernel<scalar_t>(in.plan, in.vectors.data_ptr<scalar_t>(), in.offsets.data_ptr<int64_t>(),
                              in.species.data_ptr<int64_t>(), in.n_centres, n_functions,
                              weights.data_ptr<scalar_t>(), out.data_ptr<scalar_t>());
  });
  return out;
}

// Cell list over points (M, 3) (atoms and their periodic images): every (c, p) with
// c < n_centres, p != c and |points[p] - points[c]| < cutoff, grouped by c. Cartesian bins at
// least `cutoff` wide, so each neighbour sits in one of the 27 bins around its centre.
std::vector<torch::Tensor> cell_list(const torch::Tensor& points, int64_t n_centres, double cutoff) {
  TORCH_CHECK(points.device().is_cpu() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on the CPU");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  auto x_tensor = points.to(torch::kFloat64).contiguous();
  const double* x = x_tensor.data_ptr<double>();
  const int64_t n_points = points.size(0);
  TORCH_CHECK(n_centres >= 0 && n_centres <= n_points, "bpnn: n_centres out of range");
  std::vector<int64_t> centres, neighbours;
  if (n_points == 0 || n_centres == 0) {
    return {torch::zeros({0}, torch::kInt64), torch::zeros({0}, torch::kInt64)};
  }
  double low[3], high[3];
  for (int d = 0; d < 3; ++d) low[d] = high[d] = x[d];
  for (int64_t p = 0; p < n_points; ++p) {
    for (int d = 0; d < 3; ++d) {
      low[d] = std::min(low[d], x[3 * p + d]);
      high[d] = std::max(high[d], x[3 * p + d]);
    }
  }
  int64_t n_bins[3];
  for (int d = 0; d < 3; ++d) n_bins[d] = std::max<int64_t>(1, static_cast<int64_t>(std::floor((high[d] - low[d]) / cutoff)));
  const int64_t max_bins = std::max<int64_t>(64, 4 * n_points);  // far-apart atoms: coarser bins
  while (n_bins[0] * n_bins[1] * n_bins[2] > max_bins) {
    for (int d = 0; d < 3; ++d) n_bins[d] = std::max<int64_t>(1, (n_bins[d] + 1) / 2);
  }
  double width[3];
  for (int d = 0; d < 3; ++d) width[d] = std::max((high[d] - low[d]) / n_bins[d], cutoff);
  std::vector<int64_t> bin_of(n_points), start(n_bins[0] * n_bins[1] * n_bins[2] + 1, 0), sorted(n_points);
  auto bin3 = [&](int64_t p, int d) {
    return std::min<int64_t>(n_bins[d] - 1, std::max<int64_t>(0, static_cast<int64_t>(std::floor((x[3 * p + d] - low[d]) / width[d]))));
  };
  for (int64_t p = 0; p < n_points; ++p) {
    bin_of[p] = (bin3(p, 0) * n_bins[1] + bin3(p, 1)) * n_bins[2] + bin3(p, 2);
    ++start[bin_of[p] + 1];
  }
  for (size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t p = 0; p < n_points; ++p) sorted[fill[bin_of[p]]++] = p;
  const double cutoff2 = cutoff * cutoff;
  for (int64_t c = 0; c < n_centres; ++c) {
    const int64_t b0 = bin3(c, 0), b1 = bin3(c, 1), b2 = bin3(c, 2);
    for (int64_t i0 = std::max<int64_t>(0, b0 - 1); i0 <= std::min(n_bins[0] - 1, b0 + 1); ++i0) {
      for (int64_t i1 = std::max<int64_t>(0, b1 - 1); i1 <= std::min(n_bins[1] - 1, b1 + 1); ++i1) {
        for (int64_t i2 = std::max<int64_t>(0, b2 - 1); i2 <= std::min(n_bins[2] - 1, b2 + 1); ++i2) {
          const int64_t b = (i0 * n_bins[1] + i1) * n_bins[2] + i2;
          for (int64_t q = start[b]; q < start[b + 1]; ++q) {
            const int64_t p = sorted[q];
            if (p == c) continue;
            const double dx = x[3 * p] - x[3 * c], dy = x[3 * p + 1] - x[3 * c + 1], dz = x[3 * p + 2] - x[3 * c + 2];
            if (dx * dx + dy * dy + dz * dz < cutoff2) {
              centres.push_back(c);
              neighbours.push_back(p);
            }
          }
        }
      }
    }
  }
  const auto n = static_cast<int64_t>(centres.size());
  return {torch::from_blob(centres.data(), {n}, torch::kInt64).clone(),
          torch::from_blob(neighbours.data(), {n}, torch::kInt64).clone()};
}

}  // namespace

TORCH_LIBRARY(bpnn, m) {
  m.def("cell_list(Tensor points, int n_centres, float cutoff) -> Tensor[]");
  m.def("acsf(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, int n_functions, "
        "int n_species, int cutoff_type, float cutoff_alpha) -> Tensor");
  m.def("acsf_backward(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
        "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor d_g) -> Tensor");
}

TORCH_LIBRARY_IMPL(bpnn, CPU, m) {
  m.impl("acsf", acsf);
  m.impl("acsf_backward", acsf_backward);
  m.impl("cell_list", cell_list);
}
