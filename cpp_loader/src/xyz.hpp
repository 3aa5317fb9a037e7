// Reading the first frame of an XYZ / extended-XYZ file (symbol x y z as the first columns;
// Lattice="..." and pbc="T T T" from the comment line when present).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bpnn {

struct Structure {
  std::vector<double> positions;  // N*3, Å
  std::vector<int64_t> numbers;   // N
  std::vector<double> cell = std::vector<double>(9, 0.0);  // rows = lattice vectors, Å
  std::vector<bool> pbc = {false, false, false};
};

Structure read_xyz(const std::string& path);  // throws bpnn::Error naming file and line

}  // namespace bpnn
