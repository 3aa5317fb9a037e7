// The whole neighbour search as one op (registered in register.cpp), so that an exported graph
// calls a single op whose output size depends on the data:
//   neighbor_list(Tensor positions, Tensor cell, Tensor pbc, float cutoff) -> Tensor[]
//     = [pairs (2, P) int64, shifts (P, 3) int64]
// with the convention of bpnn_ts/model/neighbors.py: every pair closer than `cutoff` (Å), the
// vector from i to j being r_ij = R_j - R_i + S @ cell (rows of `cell` = lattice vectors); a full
// list ((i, j, S) and (j, i, -S) both present), grouped by centre i ascending, within a centre in
// the order of the pure-torch neighbor_list (cell_list.h: pairs_within); periodic images of an
// atom are its neighbours (cutoffs larger than the cell work); (i, i, 0) never appears.
// positions (N, 3) float32/float64 (computed in float64), cell (3, 3), pbc (3,) bool, all on the
// CPU; N = 0 gives (2, 0) and (0, 3). Periodic images: a port of effective_cell and
// _periodic_images in neighbors.py (atoms wrapped into the cell along periodic axes, then the
// images within `cutoff` of the cell). The caller checks the cell (neighbors.check_cell); a
// degenerate one, or one far too small for the cutoff, is refused here too (ValueError).
#pragma once

#include <torch/types.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cell_list.h"

namespace bpnn_cells {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  // rows = lattice vectors

inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline Vec3 unit(const Vec3& a) {
  const double length = norm(a);
  return {a[0] / length, a[1] / length, a[2] / length};
}

inline std::string cell_text(const Mat3& cell) {
  std::ostringstream text;
  text.precision(10);
  text << "[[" << cell[0][0] << ", " << cell[0][1] << ", " << cell[0][2] << "], [" << cell[1][0] << ", " << cell[1][1]
       << ", " << cell[1][2] << "], [" << cell[2][0] << ", " << cell[2][1] << ", " << cell[2][2] << "]]";
  return text.str();
}

inline std::string pbc_text(const bool* pbc) {
  return std::string("[") + (pbc[0] ? "True" : "False") + ", " + (pbc[1] ? "True" : "False") + ", " +
         (pbc[2] ? "True" : "False") + "]";
}

// The cell whose non-periodic rows are replaced by unit vectors orthogonal to the periodic ones,
// so that fractional coordinates along periodic axes are defined whatever those rows hold.
inline Mat3 effective_cell(const Mat3& cell, const bool* pbc) {
  int periodic[3], loose[3], n_periodic = 0, n_loose = 0;
  for (int k = 0; k < 3; ++k) {
    if (pbc[k]) {
      periodic[n_periodic++] = k;
    } else {
      loose[n_loose++] = k;
    }
  }
  if (n_periodic == 3) return cell;
  if (n_periodic == 0) return Mat3{Vec3{1.0, 0.0, 0.0}, Vec3{0.0, 1.0, 0.0}, Vec3{0.0, 0.0, 1.0}};
  Mat3 eff = cell;
  if (n_periodic == 2) {
    eff[loose[0]] = unit(cross(cell[periodic[0]], cell[periodic[1]]));
  } else {
    const Vec3 u = unit(cell[periodic[0]]);
    const Vec3 helper = std::abs(u[0]) < 0.9 ? Vec3{1.0, 0.0, 0.0} : Vec3{0.0, 1.0, 0.0};
    const Vec3 v1 = unit(cross(u, helper));
    eff[loose[0]] = v1;
    eff[loose[1]] = cross(u, v1);
  }
  return eff;
}

// neighbors.check_cell's rule: a periodic row must not be zero, and the periodic rows must span a
// length (1 periodic axis), area (2) or volume (3) above 1e-10 of the product of their lengths
// (the effective cell's determinant: its other rows are orthonormal to them). NaN-safe.
inline void check_effective_cell(const Mat3& cell, const Mat3& eff, const bool* pbc) {
  double lengths = 1.0;
  int n_periodic = 0;
  for (int k = 0; k < 3; ++k) {
    if (!pbc[k]) continue;
    const double length = norm(cell[k]);
    TORCH_CHECK_VALUE(length >= 1e-8, "bpnn: `cell` row ", k, " is zero (or not finite) but pbc is True along that axis; ",
                      "give a lattice vector or set pbc False there; got cell ", cell_text(cell), " with pbc ", pbc_text(pbc));
    lengths *= length;
    ++n_periodic;
  }
  const double measure = std::abs(dot(eff[0], cross(eff[1], eff[2])));
  const char* what[] = {"length", "area", "volume"};
  TORCH_CHECK_VALUE(std::isfinite(measure) && measure > 1e-10 * lengths, "bpnn: `cell` has zero ", what[n_periodic - 1],
                    " along its periodic axes (the periodic lattice vectors are linearly dependent, or not finite); ",
                    "got cell ", cell_text(cell), " with pbc ", pbc_text(pbc));
}

// The points the cell list searches: the N atoms wrapped into the cell, then their images within
// `cutoff` of it (shift-major: shifts in lexicographic order, zero left out; atoms ascending).
struct Images {
  std::vector<double> points;  // (M, 3)
  std::vector<int64_t> atom;   // (M,) the atom of each point
  std::vector<int64_t> shift;  // (M, 3) each point's integer shift relative to its wrapped atom
  std::vector<int64_t> wrap;   // (N, 3) wrapped atom = R - wrap @ cell
};

// The periodic frame of a search: the effective cell, its reciprocal and the images needed along
// each axis (shared by periodic_images here and the device search, neighbor_list_device.h). Checks
// the cell (check_effective_cell) and refuses one far too small for the cutoff.
struct Frame {
  Mat3 eff;         // effective_cell
  Mat3 reciprocal;  // columns of eff^-1: fractional coordinate k = r . reciprocal[k]
  double reach[3];  // the cutoff in fractional units, along each axis
  int64_t n_images[3];  // images along each axis (0 where not periodic)
};

inline Frame periodic_frame(const Mat3& cell, const bool* pbc, double cutoff, int64_t n_atoms) {
  Frame frame;
  frame.eff = effective_cell(cell, pbc);
  check_effective_cell(cell, frame.eff, pbc);
  const Mat3& eff = frame.eff;
  const double det = dot(eff[0], cross(eff[1], eff[2]));
  double n_shifts = 1.0;
  for (int k = 0; k < 3; ++k) {
    const Vec3 normal = cross(eff[(k + 1) % 3], eff[(k + 2) % 3]);
    frame.reciprocal[k] = {normal[0] / det, normal[1] / det, normal[2] / det};
    frame.reach[k] = cutoff * norm(frame.reciprocal[k]) + 1e-6;
    n_shifts *= pbc[k] ? 2.0 * std::ceil(frame.reach[k]) + 1.0 : 1.0;
  }
  // atoms x images to consider: beyond this the cell is absurd (also catches NaN)
  TORCH_CHECK_VALUE(n_shifts * static_cast<double>(std::max<int64_t>(n_atoms, 1)) <= 5e7,
                    "bpnn: `cell`: the cell is far too small for the cutoff (", cutoff, " Å): every atom would need ",
                    n_shifts < 9e18 ? c10::str(static_cast<int64_t>(n_shifts)) : c10::str(n_shifts),
                    " periodic images; check the cell's units and shape, got cell ", cell_text(cell));
  for (int k = 0; k < 3; ++k) frame.n_images[k] = pbc[k] ? static_cast<int64_t>(std::ceil(frame.reach[k])) : 0;
  return frame;
}

inline Images periodic_images(const double* r, int64_t n_atoms, const Mat3& cell, const bool* pbc, double cutoff) {
  Images images;
  images.points.assign(r, r + 3 * n_atoms);
  images.atom.resize(n_atoms);
  std::iota(images.atom.begin(), images.atom.end(), int64_t{0});
  images.shift.assign(3 * n_atoms, 0);
  images.wrap.assign(3 * n_atoms, 0);
  if (!(pbc[0] || pbc[1] || pbc[2])) return images;
  const Frame frame = periodic_frame(cell, pbc, cutoff, n_atoms);
  const Mat3& eff = frame.eff;
  const Mat3& reciprocal = frame.reciprocal;
  const double* reach = frame.reach;
  const int64_t* n_images = frame.n_images;

  std::vector<double> frac(3 * n_atoms);  // (N, 3) fractional coordinates of the wrapped atoms
  for (int64_t a = 0; a < n_atoms; ++a) {
    const Vec3 position{r[3 * a], r[3 * a + 1], r[3 * a + 2]};
    double wrap[3];
    for (int k = 0; k < 3; ++k) {
      const double f = dot(position, reciprocal[k]);
      wrap[k] = pbc[k] ? std::floor(f) : 0.0;
      TORCH_CHECK_VALUE(std::abs(wrap[k]) < 1e15, "bpnn: `positions` row ", a, " lies ", wrap[k],
                        " cells away from the cell along axis ", k, "; wrap the atoms into the cell first");
      frac[3 * a + k] = f - wrap[k];
      images.wrap[3 * a + k] = static_cast<int64_t>(wrap[k]);
    }
    for (int d = 0; d < 3; ++d) {
      images.points[3 * a + d] = r[3 * a + d] - (wrap[0] * eff[0][d] + wrap[1] * eff[1][d] + wrap[2] * eff[2][d]);
    }
  }
  for (int64_t s0 = -n_images[0]; s0 <= n_images[0]; ++s0) {
    for (int64_t s1 = -n_images[1]; s1 <= n_images[1]; ++s1) {
      for (int64_t s2 = -n_images[2]; s2 <= n_images[2]; ++s2) {
        if (s0 == 0 && s1 == 0 && s2 == 0) continue;
        const int64_t s[3] = {s0, s1, s2};
        const double sd[3] = {static_cast<double>(s0), static_cast<double>(s1), static_cast<double>(s2)};
        for (int64_t a = 0; a < n_atoms; ++a) {
          bool inside = true;
          for (int k = 0; k < 3 && inside; ++k) {
            const double f = frac[3 * a + k] + sd[k];
            inside = !pbc[k] || (f > -reach[k] && f < 1.0 + reach[k]);
          }
          if (!inside) continue;
          for (int d = 0; d < 3; ++d) {
            images.points.push_back(images.points[3 * a + d] + (sd[0] * eff[0][d] + sd[1] * eff[1][d] + sd[2] * eff[2][d]));
          }
          images.atom.push_back(a);
          images.shift.insert(images.shift.end(), s, s + 3);
        }
      }
    }
  }
  return images;
}

// torch.ops.bpnn.neighbor_list (the header comment says what it returns).
inline std::vector<torch::Tensor> neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell,
                                                const torch::Tensor& pbc, double cutoff) {
  TORCH_CHECK(positions.device().is_cpu() && cell.device().is_cpu() && pbc.device().is_cpu(),
              "bpnn: neighbor_list runs on the CPU only, got positions on ", positions.device(), ", cell on ",
              cell.device(), ", pbc on ", pbc.device());
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3 && positions.is_floating_point(),
              "bpnn: `positions` must be a floating-point (N, 3) tensor, got ", positions.scalar_type(), " ", positions.sizes());
  TORCH_CHECK(cell.dim() == 2 && cell.size(0) == 3 && cell.size(1) == 3 && cell.is_floating_point(),
              "bpnn: `cell` must be a floating-point (3, 3) tensor, got ", cell.scalar_type(), " ", cell.sizes());
  TORCH_CHECK(pbc.dim() == 1 && pbc.size(0) == 3 && pbc.scalar_type() == torch::kBool,
              "bpnn: `pbc` must be a bool (3,) tensor, got ", pbc.scalar_type(), " ", pbc.sizes());
  TORCH_CHECK_VALUE(cutoff > 0.0 && std::isfinite(cutoff), "bpnn: `cutoff` must be positive and finite, got ", cutoff);
  const int64_t n_atoms = positions.size(0);
  if (n_atoms == 0) return {torch::zeros({2, 0}, torch::kInt64), torch::zeros({0, 3}, torch::kInt64)};
  const auto r_tensor = positions.to(torch::kFloat64).contiguous();
  const double* r = r_tensor.data_ptr<double>();
  for (int64_t a = 0; a < n_atoms; ++a) {
    TORCH_CHECK_VALUE(std::isfinite(r[3 * a]) && std::isfinite(r[3 * a + 1]) && std::isfinite(r[3 * a + 2]),
                      "bpnn: `positions` must be finite, got [", r[3 * a], ", ", r[3 * a + 1], ", ", r[3 * a + 2],
                      "] in row ", a);
  }
  const auto cell_tensor = cell.to(torch::kFloat64).contiguous();
  const double* c = cell_tensor.data_ptr<double>();
  const Mat3 lattice{Vec3{c[0], c[1], c[2]}, Vec3{c[3], c[4], c[5]}, Vec3{c[6], c[7], c[8]}};
  const auto pbc_tensor = pbc.contiguous();
  const bool periodic[3] = {pbc_tensor.data_ptr<bool>()[0], pbc_tensor.data_ptr<bool>()[1], pbc_tensor.data_ptr<bool>()[2]};

  const Images images = periodic_images(r, n_atoms, lattice, periodic, cutoff);
  const auto n_points = static_cast<int64_t>(images.atom.size());
  TORCH_CHECK(n_points < (int64_t{1} << 31), "bpnn: neighbor_list takes fewer than 2^31 atoms and periodic images, got ", n_points);
  std::vector<int64_t> point_shift(3 * n_points);  // (M, 3) each point's shift minus its atom's wrap
  for (int64_t p = 0; p < n_points; ++p) {
    for (int k = 0; k < 3; ++k) point_shift[3 * p + k] = images.shift[3 * p + k] - images.wrap[3 * images.atom[p] + k];
  }
  std::vector<int32_t> found;  // the point of each pair
  std::vector<int64_t> count(n_atoms, 0);  // pairs per centre
  pairs_within(images.points.data(), n_points, n_atoms, cutoff, [&](int64_t c, int64_t p) {
    found.push_back(static_cast<int32_t>(p));
    ++count[c];
  });
  const auto n_pairs = static_cast<int64_t>(found.size());
  auto pairs = torch::empty({2, n_pairs}, torch::kInt64);
  auto shifts = torch::empty({n_pairs, 3}, torch::kInt64);
  int64_t* i_out = pairs.data_ptr<int64_t>();
  int64_t* j_out = i_out + n_pairs;
  int64_t* s_out = shifts.data_ptr<int64_t>();
  int64_t q = 0;
  for (int64_t i = 0; i < n_atoms; ++i) {
    const int64_t* wrap = images.wrap.data() + 3 * i;
    for (const int64_t end = q + count[i]; q < end; ++q) {
      const int64_t p = found[q];
      i_out[q] = i;
      j_out[q] = images.atom[p];
      for (int k = 0; k < 3; ++k) s_out[3 * q + k] = point_shift[3 * p + k] + wrap[k];
    }
  }
  return {pairs, shifts};
}

}  // namespace bpnn_cells
