// Cell-list pair search: the core shared by torch.ops.bpnn.cell_list (points given, below) and
// torch.ops.bpnn.neighbor_list (periodic images built first, neighbor_list.h); both CPU kernels
// are neighbors_cpu.cpp's, registered in register.cpp.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace bpnn_cells {

// Cell list over points x (M, 3), row-major float64 (atoms and their periodic images): calls
// emit(c, p) for every c < n_centres and p != c with |x[p] - x[c]| < cutoff, c ascending; within a
// centre, by bin (the 27 bins around it in lexicographic order of their (-1, 0, 1) offsets), then
// by p ascending (the order of the pure-torch neighbor_list). Cartesian bins at least `cutoff`
// wide, so each neighbour sits in one of the 27 bins.
template <class Emit>
void pairs_within(const double* x, int64_t n_points, int64_t n_centres, double cutoff, Emit&& emit) {
  if (n_points == 0 || n_centres == 0) return;
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
  std::vector<double> xs(3 * n_points);  // the points in bin order: each bin's points contiguous
  for (int64_t q = 0; q < n_points; ++q) {
    for (int d = 0; d < 3; ++d) xs[3 * q + d] = x[3 * sorted[q] + d];
  }
  const double cutoff2 = cutoff * cutoff;
  for (int64_t c = 0; c < n_centres; ++c) {
    const int64_t b0 = bin3(c, 0), b1 = bin3(c, 1), b2 = bin3(c, 2);
    const double xc = x[3 * c], yc = x[3 * c + 1], zc = x[3 * c + 2];
    for (int64_t i0 = std::max<int64_t>(0, b0 - 1); i0 <= std::min(n_bins[0] - 1, b0 + 1); ++i0) {
      for (int64_t i1 = std::max<int64_t>(0, b1 - 1); i1 <= std::min(n_bins[1] - 1, b1 + 1); ++i1) {
        for (int64_t i2 = std::max<int64_t>(0, b2 - 1); i2 <= std::min(n_bins[2] - 1, b2 + 1); ++i2) {
          const int64_t b = (i0 * n_bins[1] + i1) * n_bins[2] + i2;
          for (int64_t q = start[b]; q < start[b + 1]; ++q) {
            const double dx = xs[3 * q] - xc, dy = xs[3 * q + 1] - yc, dz = xs[3 * q + 2] - zc;
            if (dx * dx + dy * dy + dz * dz < cutoff2 && sorted[q] != c) emit(c, sorted[q]);
          }
        }
      }
    }
  }
}

// torch.ops.bpnn.cell_list(points (M, 3), n_centres, cutoff) -> [centres (P,), neighbours (P,)]:
// pairs_within on given points (the images built by the caller: model files exported before
// neighbor_list existed call this).
inline std::vector<torch::Tensor> cell_list(const torch::Tensor& points, int64_t n_centres, double cutoff) {
  TORCH_CHECK(points.device().is_cpu() && points.dim() == 2 && points.size(1) == 3, "bpnn: points must be (M, 3) on the CPU");
  TORCH_CHECK(cutoff > 0.0, "bpnn: cutoff must be positive");
  auto x_tensor = points.to(torch::kFloat64).contiguous();
  const int64_t n_points = points.size(0);
  TORCH_CHECK(n_centres >= 0 && n_centres <= n_points, "bpnn: n_centres out of range");
  std::vector<int64_t> centres, neighbours;
  pairs_within(x_tensor.data_ptr<double>(), n_points, n_centres, cutoff, [&](int64_t c, int64_t p) {
    centres.push_back(c);
    neighbours.push_back(p);
  });
  const auto n = static_cast<int64_t>(centres.size());
  return {torch::from_blob(centres.data(), {n}, torch::kInt64).clone(),
          torch::from_blob(neighbours.data(), {n}, torch::kInt64).clone()};
}

}  // namespace bpnn_cells
