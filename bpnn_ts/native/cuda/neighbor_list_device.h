// The device neighbour search, strung together: cell_list and neighbor_list (the ops of
// cpu/cell_list.h and cpu/neighbor_list.h, the same lists in the same order) as sequences of the
// per-thread functors of cell_list_device.h and a few torch ops (bounds, sort, inclusive sums),
// all on the device of the input. `run(n, f)` calls f(i) for i < n: a CUDA launch of one thread
// per i (neighbor_list_cuda.cu: CudaRunner, on the current stream) or a host loop (HostRunner:
// bpnn::cell_list_capacity's CPU kernel, cpu/neighbors_cpu.cpp, and the test-only emulation ops
// bpnn_emulation::cell_list / neighbor_list, emulation/emulation_ops.cpp, which the tests compare
// with the CPU ops).
//
// Two passes, so outputs are exactly sized: count each centre's pairs, an inclusive sum gives
// each centre's first row, then each centre writes its rows. The host waits for the device only
// to size outputs, each wait one small device-to-host copy:
//   cell_list:      1 (the number of pairs); cell_list_capacity (outputs of a given size): none;
//   neighbor_list:  the cell and pbc values, when they are on the device (the periodic frame is
//                   computed and checked on the host, as in neighbor_list.h); the number of
//                   periodic images (periodic systems only), with the "bad positions" flag; the
//                   number of pairs (with that flag for non-periodic systems).
// Bad input found on the device (non-finite positions, atoms 1e15 cells away) is reported by
// running the CPU op on a host copy, so the message is the CPU op's.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

#include "../cpu/neighbor_list.h"
#include "cell_list_device.h"

namespace bpnn_device {

// The emulation: one loop iteration per would-be CUDA thread.
struct HostRunner {
  template <class F>
  void operator()(int64_t n, const F& f) const {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
};

// The cell list over points x (M, 3) float64, contiguous, M > 0, its pairs counted: the search,
// with the tensors it points into, and offset (n_centres + 1,), centre c's pairs being rows
// offset[c] .. offset[c + 1] - 1.
struct Counted {
  at::Tensor grid, start, order, xs, offset;
  Search search;
};

template <class Runner>
Counted count_pairs(const Runner& run, const at::Tensor& x, int64_t n_centres, double cutoff) {
  const int64_t n_points = x.size(0);
  const auto int64 = x.options().dtype(at::kLong);
  Counted counted;
  const auto bounds = at::aminmax(x, 0);
  const at::Tensor low = std::get<0>(bounds).contiguous(), high = std::get<1>(bounds).contiguous();
  counted.grid = at::empty({static_cast<int64_t>(sizeof(Grid))}, x.options().dtype(at::kByte));
  auto* grid = reinterpret_cast<Grid*>(counted.grid.data_ptr());
  run(1, MakeGrid{low.data_ptr<double>(), high.data_ptr<double>(), n_points, cutoff, grid});
  const int64_t max_bins = std::max<int64_t>(64, 4 * n_points);  // MakeGrid's bound on the bins
  auto count = at::zeros({max_bins + 1}, int64);
  auto bin = at::empty({n_points}, int64);
  run(n_points, BinPoints{x.data_ptr<double>(), grid, bin.data_ptr<int64_t>(), count.data_ptr<int64_t>()});
  counted.start = at::cumsum(count, 0);
  counted.order = std::get<1>(at::sort(bin, /*stable=*/true, 0, /*descending=*/false));
  counted.xs = at::empty_like(x);
  run(n_points, GatherPoints{x.data_ptr<double>(), counted.order.data_ptr<int64_t>(), counted.xs.data_ptr<double>()});
  counted.search = Search{x.data_ptr<double>(), counted.xs.data_ptr<double>(), counted.order.data_ptr<int64_t>(),
                          counted.start.data_ptr<int64_t>(), grid, cutoff * cutoff, n_centres};
  auto pair_count = at::zeros({n_centres + 1}, int64);
  run(n_points, CountPairs{counted.search, pair_count.data_ptr<int64_t>()});
  counted.offset = at::cumsum(pair_count, 0);
  return counted;
}

// cell_list(points (M, 3), n_centres, cutoff) -> [centres (P,), neighbours (P,)] int64 on the
// device of `points` (arguments checked by the caller). One wait: the number of pairs.
template <class Runner>
std::vector<at::Tensor> cell_list(const Runner& run, const at::Tensor& points, int64_t n_centres, double cutoff) {
  const auto int64 = points.options().dtype(at::kLong);
  if (points.size(0) == 0 || n_centres == 0) return {at::zeros({0}, int64), at::zeros({0}, int64)};
  const at::Tensor x = points.to(at::kDouble).contiguous();
  const Counted counted = count_pairs(run, x, n_centres, cutoff);
  const int64_t n_pairs = counted.offset[n_centres].item<int64_t>();  // the one wait for the device
  auto centres = at::empty({n_pairs}, int64), neighbours = at::empty({n_pairs}, int64);
  run(x.size(0), WritePairs{counted.search, counted.offset.data_ptr<int64_t>(), centres.data_ptr<int64_t>(),
                            neighbours.data_ptr<int64_t>(), n_pairs});
  return {centres, neighbours};
}

// cell_list_capacity(points, n_centres, cutoff, capacity) -> [centres (capacity,), neighbours
// (capacity,), n_pairs (1,)] int64: cell_list's first `capacity` rows, rows past the list -1, and
// the list's length, which may exceed `capacity` (the caller then asks again with more). No wait
// for the device, and every size fixed by the arguments: it can be captured in a CUDA graph.
template <class Runner>
std::vector<at::Tensor> cell_list_capacity(const Runner& run, const at::Tensor& points, int64_t n_centres, double cutoff,
                                           int64_t capacity) {
  const auto int64 = points.options().dtype(at::kLong);
  auto centres = at::full({capacity}, -1, int64), neighbours = at::full({capacity}, -1, int64);
  if (points.size(0) == 0 || n_centres == 0) return {centres, neighbours, at::zeros({1}, int64)};
  const at::Tensor x = points.to(at::kDouble).contiguous();
  const Counted counted = count_pairs(run, x, n_centres, cutoff);
  run(x.size(0), WritePairs{counted.search, counted.offset.data_ptr<int64_t>(), centres.data_ptr<int64_t>(),
                            neighbours.data_ptr<int64_t>(), capacity});
  return {centres, neighbours, counted.offset.narrow(0, n_centres, 1).clone()};
}

// The CPU op on host copies: raises its error for input the device found bad.
[[noreturn]] inline void raise_as_the_cpu_op(const at::Tensor& positions, const at::Tensor& cell, const at::Tensor& pbc,
                                             double cutoff) {
  bpnn_cells::neighbor_list(positions.cpu(), cell.cpu(), pbc.cpu(), cutoff);
  TORCH_CHECK(false, "bpnn: neighbor_list on ", positions.device(), " found non-finite positions or atoms 1e15 cells "
              "away, which the CPU op accepted (a bug: please report it)");
}

// neighbor_list(positions, cell, pbc, cutoff) -> [pairs (2, P), shifts (P, 3)] int64 on the device
// of `positions`; arguments checked as the CPU op does (devices by the caller).
template <class Runner>
std::vector<at::Tensor> neighbor_list(const Runner& run, const at::Tensor& positions, const at::Tensor& cell,
                                      const at::Tensor& pbc, double cutoff) {
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3 && positions.is_floating_point(),
              "bpnn: `positions` must be a floating-point (N, 3) tensor, got ", positions.scalar_type(), " ", positions.sizes());
  TORCH_CHECK(cell.dim() == 2 && cell.size(0) == 3 && cell.size(1) == 3 && cell.is_floating_point(),
              "bpnn: `cell` must be a floating-point (3, 3) tensor, got ", cell.scalar_type(), " ", cell.sizes());
  TORCH_CHECK(pbc.dim() == 1 && pbc.size(0) == 3 && pbc.scalar_type() == at::kBool,
              "bpnn: `pbc` must be a bool (3,) tensor, got ", pbc.scalar_type(), " ", pbc.sizes());
  TORCH_CHECK_VALUE(cutoff > 0.0 && std::isfinite(cutoff), "bpnn: `cutoff` must be positive and finite, got ", cutoff);
  const auto int64 = positions.options().dtype(at::kLong);
  const int64_t n_atoms = positions.size(0);
  if (n_atoms == 0) return {at::zeros({2, 0}, int64), at::zeros({0, 3}, int64)};

  // the cell and pbc on the host: one copy (a wait when they are on the device)
  const auto cell_values = cell.reshape({9}).to(at::kDouble), pbc_values = pbc.to(at::kDouble);
  const at::Tensor values = (cell.device() == pbc.device() ? at::cat({cell_values, pbc_values}).cpu()
                                                           : at::cat({cell_values.cpu(), pbc_values.cpu()}))
                                .contiguous();
  const double* v = values.data_ptr<double>();
  const bpnn_cells::Mat3 lattice{bpnn_cells::Vec3{v[0], v[1], v[2]}, bpnn_cells::Vec3{v[3], v[4], v[5]},
                                 bpnn_cells::Vec3{v[6], v[7], v[8]}};
  const bool periodic[3] = {v[9] != 0.0, v[10] != 0.0, v[11] != 0.0};
  const bool any_periodic = periodic[0] || periodic[1] || periodic[2];
  Frame frame{};
  for (int k = 0; k < 3; ++k) {
    frame.eff[k][k] = frame.reciprocal[k][k] = 1.0;  // no periodic axis: nothing is wrapped
    frame.pbc[k] = periodic[k];
  }
  if (any_periodic) {
    const bpnn_cells::Frame host = bpnn_cells::periodic_frame(lattice, periodic, cutoff, n_atoms);
    for (int k = 0; k < 3; ++k) {
      for (int d = 0; d < 3; ++d) {
        frame.eff[k][d] = host.eff[k][d];
        frame.reciprocal[k][d] = host.reciprocal[k][d];
      }
      frame.reach[k] = host.reach[k];
      frame.n_images[k] = host.n_images[k];
    }
  }

  // the atoms wrapped into the cell (the first N points), then their images
  const at::Tensor r = positions.to(at::kDouble).contiguous();
  const auto float64 = r.options();
  auto bad = at::zeros({1}, int64);
  auto frac = at::empty({n_atoms, 3}, float64);
  auto wrap = at::empty({n_atoms, 3}, int64);
  auto points = at::empty({n_atoms, 3}, float64);
  auto point_atom = at::empty({n_atoms}, int64);
  auto point_shift = at::empty({n_atoms, 3}, int64);
  run(n_atoms, WrapAtoms{frame, r.data_ptr<double>(), points.data_ptr<double>(), point_atom.data_ptr<int64_t>(),
                         point_shift.data_ptr<int64_t>(), frac.data_ptr<double>(), wrap.data_ptr<int64_t>(),
                         bad.data_ptr<int64_t>()});
  const int64_t n_candidates = any_periodic ? n_shifts(frame) * n_atoms : 0;
  if (n_candidates > 0) {
    auto keep = at::empty({n_candidates}, positions.options().dtype(at::kInt));
    run(n_candidates, FlagImages{frame, frac.data_ptr<double>(), n_atoms, keep.data_ptr<int32_t>()});
    const at::Tensor index = at::cumsum(keep, 0, at::kInt);
    const at::Tensor status = at::cat({index.narrow(0, n_candidates - 1, 1).to(at::kLong), bad}).cpu();  // a wait
    if (status[1].item<int64_t>() != 0) raise_as_the_cpu_op(positions, cell, pbc, cutoff);
    const int64_t n_points = n_atoms + status[0].item<int64_t>();
    TORCH_CHECK(n_points < (int64_t{1} << 31), "bpnn: neighbor_list takes fewer than 2^31 atoms and periodic images, got ",
                n_points);
    auto all_points = at::empty({n_points, 3}, float64);
    auto all_atom = at::empty({n_points}, int64);
    auto all_shift = at::empty({n_points, 3}, int64);
    all_points.narrow(0, 0, n_atoms).copy_(points);
    all_atom.narrow(0, 0, n_atoms).copy_(point_atom);
    all_shift.narrow(0, 0, n_atoms).copy_(point_shift);
    run(n_candidates, WriteImages{frame, n_atoms, keep.data_ptr<int32_t>(), index.data_ptr<int32_t>(),
                                  wrap.data_ptr<int64_t>(), all_points.data_ptr<double>(), all_atom.data_ptr<int64_t>(),
                                  all_shift.data_ptr<int64_t>()});
    points = all_points;
    point_atom = all_atom;
    point_shift = all_shift;
  }

  const Counted counted = count_pairs(run, points, n_atoms, cutoff);
  const at::Tensor status = at::cat({counted.offset.narrow(0, n_atoms, 1), bad}).cpu();  // a wait
  if (status[1].item<int64_t>() != 0) raise_as_the_cpu_op(positions, cell, pbc, cutoff);
  const int64_t n_pairs = status[0].item<int64_t>();
  auto pairs = at::empty({2, n_pairs}, int64);
  auto shifts = at::empty({n_pairs, 3}, int64);
  run(points.size(0), WriteNeighbours{counted.search, counted.offset.data_ptr<int64_t>(), point_atom.data_ptr<int64_t>(),
                               point_shift.data_ptr<int64_t>(), wrap.data_ptr<int64_t>(), pairs.data_ptr<int64_t>(),
                               pairs.data_ptr<int64_t>() + n_pairs, shifts.data_ptr<int64_t>()});
  return {pairs, shifts};
}

}  // namespace bpnn_device
