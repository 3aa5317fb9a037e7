// bad_input_test MODEL: bpnn::Model on bad inputs (an H/O model), one line per case, "case:
// message" (or "case: no error"). tests/test_cpp.py runs it on a TorchScript file and on the
// .pt2 file of the same model: the loader checks inputs that a .pt2 file's programs do not
// (bpnn_ts/model/inputs.py), and both files must refuse them with the same messages.
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "bpnn/model.hpp"

namespace {

const std::vector<double> kWater = {0.0, 0.0, 0.0, 0.96, 0.0, 0.0, -0.24, 0.93, 0.0};  // O H H, Å
const std::vector<int64_t> kNumbers = {8, 1, 1};
const std::vector<double> kCube = {6.0, 0, 0, 0, 6.0, 0, 0, 0, 6.0};
const std::vector<bool> kPeriodic = {true, true, true}, kOpen = {false, false, false};

void report(const std::string& name, const std::function<bpnn::Result()>& evaluate) {
  try {
    const bpnn::Result result = evaluate();
    std::printf("%s: no error (energy %.10f)\n", name.c_str(), result.energy);
  } catch (const bpnn::Error& error) {
    std::printf("%s: %s\n", name.c_str(), error.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: bad_input_test MODEL\n");
    return 2;
  }
  bpnn::Model model(argv[1]);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto with = [](std::vector<double> values, size_t k, double value) {
    values[k] = value;
    return values;
  };
  auto system = [&](std::vector<double> positions, std::vector<int64_t> numbers, std::vector<double> cell,
                    std::vector<bool> pbc) {
    return [&model, positions, numbers, cell, pbc] { return model.compute(positions, numbers, cell, pbc); };
  };
  auto engine = [&](std::vector<double> positions, std::vector<int64_t> i, std::vector<int64_t> j, int64_t n_local) {
    return [&model, positions, i, j, n_local] {
      return model.compute_with_pairs(positions, kNumbers, std::vector<double>(9, 0.0), i, j,
                                      std::vector<int64_t>(3 * i.size(), 0), n_local);
    };
  };
  report("fine", system(kWater, kNumbers, kCube, kPeriodic));
  report("nan position", system(with(kWater, 4, nan), kNumbers, kCube, kPeriodic));
  report("inf cell", system(kWater, kNumbers, with(kCube, 0, INFINITY), kPeriodic));
  report("unknown element", system(kWater, {8, 6, 1}, kCube, kPeriodic));
  report("flat cell", system(kWater, kNumbers, {3.0, 0, 0, 6.0, 0, 0, 0, 0, 3.0}, kPeriodic));
  report("flat sheet", system(kWater, kNumbers, {3.0, 0, 0, 6.0, 1e-12, 0, 0, 0, 0}, {true, true, false}));
  report("zero lattice vector", system(kWater, kNumbers, std::vector<double>(9, 0.0), {true, false, false}));
  report("flat cell, no atoms", system({}, {}, {3.0, 0, 0, 6.0, 0, 0, 0, 0, 3.0}, kPeriodic));
  report("overlap", system(with(kWater, 3, 0.0), kNumbers, kCube, kOpen));
  report("engine fine", engine(kWater, {0, 0, 1, 1, 2, 2}, {1, 2, 0, 2, 0, 1}, 3));
  report("engine ghosts", engine(kWater, {0, 0}, {1, 2}, 1));
  report("engine pair outside", engine(kWater, {0, 1}, {1, 7}, 3));
  report("engine negative pair", engine(kWater, {0, -1}, {1, 0}, 3));
  report("engine n_local", engine(kWater, {0}, {1}, 4));
  report("engine nan", engine(with(kWater, 0, nan), {0}, {1}, 3));
  report("engine overlap", engine({0, 0, 0, 0.96, 0, 0, 0, 0, 0}, {0, 2}, {2, 0}, 3));
  return 0;
}
