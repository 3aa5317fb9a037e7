// The engine contract's input checks that a .pt2 file's compiled programs leave to their front
// end (a TorchScript file makes them inside its graph): the C++ twins of bpnn_ts/model/inputs.py
// and check_cell in bpnn_ts/model/neighbors.py, with the same messages. Each throws bpnn::Error.
#pragma once

#include <cstdint>
#include <vector>

namespace bpnn {
namespace detail {

// Positions (N*3) and cell (9) hold only finite numbers.
void check_finite(const std::vector<double>& positions, const std::vector<double>& cell);

// The periodic lattice vectors (rows of `cell`, 9 values) span a volume (3 periodic axes), area
// (2) or length (1) above 1e-10 of the product of their lengths, none of them zero.
void check_cell(const std::vector<double>& cell, const std::vector<bool>& pbc);

// An engine's list: n_local in [0, n_atoms], every pair index in [0, n_atoms).
void check_engine_list(const std::vector<int64_t>& pairs_i, const std::vector<int64_t>& pairs_j, int64_t n_local,
                       int64_t n_atoms);

// No two atoms closer than 1e-6 Å (from the closest pair an evaluation found).
void check_overlap(double min_distance, const int64_t closest_pair[2]);

}  // namespace detail
}  // namespace bpnn
