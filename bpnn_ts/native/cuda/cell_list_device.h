// The neighbour search of cpu/cell_list.h and cpu/neighbor_list.h written for the GPU: small
// functors, each called once per would-be CUDA thread (`f(i)` for i < n), that bin the points into
// cells, count and write each centre's pairs, and build the periodic images. Plain C++ with no
// torch: compiled by nvcc for the device (neighbor_list_cuda.cu launches them, one thread per
// index) and by the host compiler for the emulation (emulation/emulation_ops.cpp runs them in a
// loop), so the CPU tests exercise this very code. neighbor_list_device.h strings them together.
//
// The list is the CPU ops' list, in the CPU ops' order: the same bins (the grid is computed from
// the same bounds with the same operations), each centre's candidates visited in the same order
// (the 27 bins around it lexicographically, then points ascending within a bin: a stable sort by
// bin), and the same float64 arithmetic. On the device the sums and products are the explicitly
// rounded intrinsics (__dadd_rn, ...), which nvcc never fuses into FMAs, so a pair on the cutoff
// sphere is decided as on the CPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/host_device.h"

namespace bpnn_device {

// IEEE double operations, never contracted on the device.
BPNN_HD inline double add(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
BPNN_HD inline double sub(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
BPNN_HD inline double mul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
BPNN_HD inline double div(double a, double b) {
#ifdef __CUDA_ARCH__
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
// a[0] b[0] + a[1] b[1] + a[2] b[2], summed left to right (neighbor_list.h: dot)
BPNN_HD inline double dot3(const double* a, const double* b) {
  return add(add(mul(a[0], b[0]), mul(a[1], b[1])), mul(a[2], b[2]));
}

BPNN_HD inline double floor_of(double x) {
#ifdef __CUDA_ARCH__
  return ::floor(x);
#else
  return std::floor(x);
#endif
}
BPNN_HD inline bool finite(double x) {
#ifdef __CUDA_ARCH__
  return ::isfinite(x);
#else
  return std::isfinite(x);
#endif
}

// count += 1 by many threads at once
BPNN_HD inline void increment(int64_t* count) {
#ifdef __CUDA_ARCH__
  atomicAdd(reinterpret_cast<unsigned long long*>(count), 1ULL);
#else
  ++*count;
#endif
}

// The bins: Cartesian, at least `cutoff` wide, so that each neighbour sits in one of the 27 bins
// around its centre (cell_list.h: pairs_within).
struct Grid {
  double low[3];
  double width[3];
  int64_t n_bins[3];
};

// Bin index of coordinate x along axis d, clamped to the grid (NaN: bin 0, as the CPU does).
BPNN_HD inline int64_t bin_along(const Grid& grid, double x, int d) {
  const double f = floor_of(div(sub(x, grid.low[d]), grid.width[d]));
  if (!(f >= 0.0)) return 0;
  const double last = static_cast<double>(grid.n_bins[d] - 1);
  return f > last ? grid.n_bins[d] - 1 : static_cast<int64_t>(f);
}

// One thread: the grid of pairs_within from the points' bounds (low[0..2], high[0..2]) and their
// number. Guarded where the CPU's integer arithmetic would overflow (absurd extents: the CPU then
// has undefined behaviour; here the grid stays within max_bins).
struct MakeGrid {
  const double* low;
  const double* high;
  int64_t n_points;
  double cutoff;
  Grid* grid;

  BPNN_HD void operator()(int64_t) const {
    int64_t n_bins[3];
    for (int d = 0; d < 3; ++d) {
      const double n = floor_of(div(sub(high[d], low[d]), cutoff));
      n_bins[d] = n >= 1.0 ? (n < 4.0e15 ? static_cast<int64_t>(n) : int64_t{4000000000000000}) : 1;
    }
    const int64_t max_bins = n_points * 4 > 64 ? n_points * 4 : 64;  // far-apart atoms: coarser bins
    // the product in double: exact below 2^53, and above it larger than max_bins either way
    while (static_cast<double>(n_bins[0]) * static_cast<double>(n_bins[1]) * static_cast<double>(n_bins[2]) >
           static_cast<double>(max_bins)) {
      for (int d = 0; d < 3; ++d) n_bins[d] = (n_bins[d] + 1) / 2 > 1 ? (n_bins[d] + 1) / 2 : 1;
    }
    for (int d = 0; d < 3; ++d) {
      const double width = div(sub(high[d], low[d]), static_cast<double>(n_bins[d]));
      grid->low[d] = low[d];
      grid->width[d] = width < cutoff ? cutoff : width;  // std::max(width, cutoff)
      grid->n_bins[d] = n_bins[d];
    }
  }
};

BPNN_HD inline int64_t bin_of_point(const Grid& grid, const double* x) {
  return (bin_along(grid, x[0], 0) * grid.n_bins[1] + bin_along(grid, x[1], 1)) * grid.n_bins[2] + bin_along(grid, x[2], 2);
}

// Thread per point p: its bin, and one more point in that bin (count[bin + 1], so that the
// inclusive sum of `count` is each bin's first slot).
struct BinPoints {
  const double* x;  // (M, 3)
  const Grid* grid;
  int64_t* bin;    // (M,)
  int64_t* count;  // (n_bins + 1,)

  BPNN_HD void operator()(int64_t p) const {
    const int64_t b = bin_of_point(*grid, x + 3 * p);
    bin[p] = b;
    increment(count + b + 1);
  }
};

// Thread per slot q of the bin-sorted order: a copy of the points in that order, each bin's points
// contiguous (as cell_list.h's xs).
struct GatherPoints {
  const double* x;       // (M, 3)
  const int64_t* order;  // (M,) the points sorted by bin, stably
  double* xs;            // (M, 3)

  BPNN_HD void operator()(int64_t q) const {
    for (int d = 0; d < 3; ++d) xs[3 * q + d] = x[3 * order[q] + d];
  }
};

// The candidates of centre c, in the CPU order: emit(q) for every slot q (point order[q]) within
// the cutoff, order[q] != c. The per-centre functors below run a thread per slot q of the bin
// order, for the centre order[q] (nothing when it is not a centre): neighbouring threads then
// search the same bins (shared cache lines, equal loop counts); each centre still writes its own
// rows, so the output is the same as with a thread per centre.
struct Search {
  const double* x;       // (M, 3) points
  const double* xs;      // (M, 3) points in bin order
  const int64_t* order;  // (M,)
  const int64_t* start;  // (n_bins + 1,) first slot of each bin
  const Grid* grid;
  double cutoff2;
  int64_t n_centres;  // the first n_centres points are the centres

  // The centre of slot q, or -1.
  BPNN_HD int64_t centre_at(int64_t q) const { return order[q] < n_centres ? order[q] : -1; }

  template <class Emit>
  BPNN_HD void visit(int64_t c, Emit& emit) const {
    const Grid& g = *grid;
    const int64_t b0 = bin_along(g, x[3 * c], 0), b1 = bin_along(g, x[3 * c + 1], 1), b2 = bin_along(g, x[3 * c + 2], 2);
    const double xc = x[3 * c], yc = x[3 * c + 1], zc = x[3 * c + 2];
    const int64_t last0 = b0 + 1 < g.n_bins[0] - 1 ? b0 + 1 : g.n_bins[0] - 1;
    const int64_t last1 = b1 + 1 < g.n_bins[1] - 1 ? b1 + 1 : g.n_bins[1] - 1;
    const int64_t last2 = b2 + 1 < g.n_bins[2] - 1 ? b2 + 1 : g.n_bins[2] - 1;
    for (int64_t i0 = b0 > 0 ? b0 - 1 : 0; i0 <= last0; ++i0) {
      for (int64_t i1 = b1 > 0 ? b1 - 1 : 0; i1 <= last1; ++i1) {
        for (int64_t i2 = b2 > 0 ? b2 - 1 : 0; i2 <= last2; ++i2) {
          const int64_t b = (i0 * g.n_bins[1] + i1) * g.n_bins[2] + i2;
          for (int64_t q = start[b]; q < start[b + 1]; ++q) {
            const double dx = sub(xs[3 * q], xc), dy = sub(xs[3 * q + 1], yc), dz = sub(xs[3 * q + 2], zc);
            if (add(add(mul(dx, dx), mul(dy, dy)), mul(dz, dz)) < cutoff2 && order[q] != c) emit(q);
          }
        }
      }
    }
  }
};

struct Counter {
  int64_t n = 0;
  BPNN_HD void operator()(int64_t) { ++n; }
};

// Thread per slot (centre c): its number of pairs, into count[c + 1] (the inclusive sum of
// `count` is then each centre's first output row).
struct CountPairs {
  Search search;
  int64_t* count;  // (n_centres + 1,), count[0] = 0

  BPNN_HD void operator()(int64_t q) const {
    const int64_t c = search.centre_at(q);
    if (c < 0) return;
    Counter counter;
    search.visit(c, counter);
    count[c + 1] = counter.n;
  }
};

// Thread per slot (centre c): its pairs (c, point) into rows offset[c] ... of the cell_list output, those
// below `capacity` (the output's rows: all of them, but for cell_list_capacity).
struct WritePairs {
  Search search;
  const int64_t* offset;  // (n_centres + 1,)
  int64_t* centre;        // (capacity,)
  int64_t* neighbour;     // (capacity,)
  int64_t capacity;

  struct Emit {
    const WritePairs* out;
    int64_t c, row;
    BPNN_HD void operator()(int64_t q) {
      if (row < out->capacity) {
        out->centre[row] = c;
        out->neighbour[row] = out->search.order[q];
      }
      ++row;
    }
  };
  BPNN_HD void operator()(int64_t q) const {
    const int64_t c = search.centre_at(q);
    if (c < 0) return;
    Emit emit{this, c, offset[c]};
    search.visit(c, emit);
  }
};

// ---- periodic images (neighbor_list.h: periodic_images, the same arithmetic) ----

// The periodic frame, as plain numbers a kernel can take by value.
struct Frame {
  double eff[3][3];         // effective cell, rows = lattice vectors
  double reciprocal[3][3];  // fractional coordinate k = r . reciprocal[k]
  double reach[3];          // the cutoff in fractional units
  int64_t n_images[3];      // images along each axis (0 where not periodic)
  bool pbc[3];
};

// The number of non-zero shifts (all (2 n_images + 1) products, less one).
inline int64_t n_shifts(const Frame& frame) {
  return (2 * frame.n_images[0] + 1) * (2 * frame.n_images[1] + 1) * (2 * frame.n_images[2] + 1) - 1;
}

// The s-th non-zero shift in lexicographic order (s0 slowest), as periodic_images visits them.
BPNN_HD inline void shift_of(const Frame& frame, int64_t s, int64_t* shift) {
  const int64_t w1 = 2 * frame.n_images[1] + 1, w2 = 2 * frame.n_images[2] + 1;
  const int64_t zero = (frame.n_images[0] * w1 + frame.n_images[1]) * w2 + frame.n_images[2];
  const int64_t t = s < zero ? s : s + 1;
  shift[0] = t / (w1 * w2) - frame.n_images[0];
  shift[1] = (t / w2) % w1 - frame.n_images[1];
  shift[2] = t % w2 - frame.n_images[2];
}

// Thread per atom a: wrapped into the cell along periodic axes (point a, with point_shift = -wrap),
// its fractional coordinates and wrap. Non-finite positions, or atoms 1e15 cells away, set *bad
// (the caller then raises the CPU op's error).
struct WrapAtoms {
  Frame frame;
  const double* r;       // (N, 3)
  double* points;        // (M, 3): rows 0 .. N - 1 here
  int64_t* point_atom;   // (M,)
  int64_t* point_shift;  // (M, 3): each point's shift minus its atom's wrap
  double* frac;          // (N, 3)
  int64_t* wrap;         // (N, 3)
  int64_t* bad;          // (1,)

  BPNN_HD void operator()(int64_t a) const {
    const double* position = r + 3 * a;
    double w[3];
    for (int k = 0; k < 3; ++k) {
      if (!finite(position[k])) *bad = 1;
      const double f = dot3(position, frame.reciprocal[k]);
      w[k] = frame.pbc[k] ? floor_of(f) : 0.0;
      if (!(w[k] < 1e15 && w[k] > -1e15)) {
        *bad = 1;
        w[k] = 0.0;
      }
      frac[3 * a + k] = sub(f, w[k]);
      wrap[3 * a + k] = static_cast<int64_t>(w[k]);
      point_shift[3 * a + k] = -static_cast<int64_t>(w[k]);
    }
    for (int d = 0; d < 3; ++d) {
      const double back = add(add(mul(w[0], frame.eff[0][d]), mul(w[1], frame.eff[1][d])), mul(w[2], frame.eff[2][d]));
      points[3 * a + d] = sub(position[d], back);
    }
    point_atom[a] = a;
  }
};

// Whether image t = s * N + a (shift s, atom a) lies within the cutoff of the cell.
BPNN_HD inline bool image_inside(const Frame& frame, const double* frac, int64_t n_atoms, int64_t t) {
  int64_t shift[3];
  shift_of(frame, t / n_atoms, shift);
  const int64_t a = t % n_atoms;
  for (int k = 0; k < 3; ++k) {
    const double f = add(frac[3 * a + k], static_cast<double>(shift[k]));
    if (frame.pbc[k] && !(f > -frame.reach[k] && f < add(1.0, frame.reach[k]))) return false;
  }
  return true;
}

// Thread per candidate image t = s * N + a: 1 if it is kept.
struct FlagImages {
  Frame frame;
  const double* frac;  // (N, 3)
  int64_t n_atoms;
  int32_t* keep;  // (n_shifts * N,)

  BPNN_HD void operator()(int64_t t) const { keep[t] = image_inside(frame, frac, n_atoms, t) ? 1 : 0; }
};

// Thread per candidate image t: a kept one becomes point N + index[t] - 1 (index: inclusive sum of
// the flags, so images are shift-major, atoms ascending, as on the CPU).
struct WriteImages {
  Frame frame;
  int64_t n_atoms;
  const int32_t* keep;
  const int32_t* index;
  const int64_t* wrap;   // (N, 3)
  double* points;        // (M, 3)
  int64_t* point_atom;   // (M,)
  int64_t* point_shift;  // (M, 3)

  BPNN_HD void operator()(int64_t t) const {
    if (!keep[t]) return;
    int64_t shift[3];
    shift_of(frame, t / n_atoms, shift);
    const int64_t a = t % n_atoms, p = n_atoms + index[t] - 1;
    const double sd[3] = {static_cast<double>(shift[0]), static_cast<double>(shift[1]), static_cast<double>(shift[2])};
    for (int d = 0; d < 3; ++d) {
      const double move = add(add(mul(sd[0], frame.eff[0][d]), mul(sd[1], frame.eff[1][d])), mul(sd[2], frame.eff[2][d]));
      points[3 * p + d] = add(points[3 * a + d], move);
    }
    for (int k = 0; k < 3; ++k) point_shift[3 * p + k] = shift[k] - wrap[3 * a + k];
    point_atom[p] = a;
  }
};

// Thread per slot (centre i): its pairs (i, atom of the point) and shifts into rows offset[i] ... of the
// neighbor_list output.
struct WriteNeighbours {
  Search search;
  const int64_t* offset;       // (N + 1,)
  const int64_t* point_atom;   // (M,)
  const int64_t* point_shift;  // (M, 3)
  const int64_t* wrap;         // (N, 3)
  int64_t* i_out;              // (P,)
  int64_t* j_out;              // (P,)
  int64_t* shifts;             // (P, 3)

  struct Emit {
    const WriteNeighbours* out;
    int64_t i, row;
    BPNN_HD void operator()(int64_t q) {
      const int64_t p = out->search.order[q];
      out->i_out[row] = i;
      out->j_out[row] = out->point_atom[p];
      for (int k = 0; k < 3; ++k) out->shifts[3 * row + k] = out->point_shift[3 * p + k] + out->wrap[3 * i + k];
      ++row;
    }
  };
  BPNN_HD void operator()(int64_t q) const {
    const int64_t i = search.centre_at(q);
    if (i < 0) return;
    Emit emit{this, i, offset[i]};
    search.visit(i, emit);
  }
};

}  // namespace bpnn_device
