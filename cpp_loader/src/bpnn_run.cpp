// bpnn_run MODEL STRUCTURE.xyz [--device cpu|cuda] [--threads N] [--md N --dt FS [--every K]]
//          [--extrapolation ignore|warn|stop [--extrapolation-stop-above N]] [--min-distance A]
//          [--uncertainty] [--no-verify]
// MODEL: a bpnn_ts model file, TorchScript (model.pt) or compiled (model.pt2), told by content.
// Prints energy, per-atom energies, forces and virial as JSON; with --md, runs
// velocity-Verlet NVE (the worked example of an MD loop around bpnn::Model) and
// prints one JSON line per K steps. Units: eV, Å, fs, amu.
// Extrapolation (symmetry functions outside the training range; default "warn" where the
// model knows its range, else "ignore"): warn prints the atoms to stderr (in MD at most once
// per 100 extrapolating steps, and at every new high of extrapolating atoms; a summary line at
// the end), stop exits with status 3 naming them (with --extrapolation-stop-above N only when
// more than N atoms extrapolate; fewer are warned about); the single-point JSON then has
// "extrapolation" (functions per atom).
// --min-distance (Å, default 0.5; 0: off): warn on stderr when two atoms are closer (in MD at
// most once per 100 such steps). --uncertainty (committee files): the JSON adds the members'
// spreads ("energy_uncertainty", per-atom "forces_uncertainty", ...); in MD each printed line
// adds "energy_uncertainty" and "max_force_uncertainty" (computed on printed steps only).
// --no-verify: skip the check of the file's parameters against their recorded SHA-256 (files
// without that hash are refused unless it is given; .pt2 files are not checked: their weights
// are compiled in).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "bpnn/model.hpp"
#include "elements.hpp"
#include "xyz.hpp"

namespace {

constexpr double kFs = 0.09822694788464063;  // 1 fs in ASE's time unit Å sqrt(amu/eV)

void print_vector(const torch::Tensor& t) {
  auto flat = t.reshape({-1});
  std::printf("[");
  for (int64_t k = 0; k < flat.size(0); ++k) std::printf("%s%.17g", k ? ", " : "", flat[k].item<double>());
  std::printf("]");
}

void print_rows(const torch::Tensor& t) {
  std::printf("[");
  for (int64_t r = 0; r < t.size(0); ++r) {
    std::printf("%s", r ? ", " : "");
    print_vector(t[r]);
  }
  std::printf("]");
}

int usage() {
  std::fprintf(stderr, "usage: bpnn_run MODEL STRUCTURE.xyz [--device cpu|cuda] [--threads N] "
                       "[--md STEPS --dt FS [--every K]] [--extrapolation ignore|warn|stop] [--extrapolation-stop-above N] "
                       "[--min-distance A] "
                       "[--uncertainty] [--no-verify]\n"
                       "  MODEL: a bpnn_ts model file, TorchScript (model.pt) or compiled (model.pt2)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string model_path = argv[1], structure_path = argv[2], device = "cpu", extrapolation;
  int threads = 1, md_steps = 0, every = 10;
  int64_t stop_above = 0;  // --extrapolation stop: stop only beyond this many extrapolating atoms
  double dt_fs = 1.0, min_distance = 0.5;
  bool uncertainty = false, verify = true;
  for (int k = 3; k < argc; ++k) {
    std::string flag = argv[k];
    if (flag == "--uncertainty" || flag == "--no-verify") {
      (flag == "--uncertainty" ? uncertainty : verify) = flag == "--uncertainty";
      continue;
    }
    if (k + 1 >= argc) return usage();
    std::string value = argv[++k];
    try {
      if (flag == "--device") device = value;
      else if (flag == "--threads") threads = std::stoi(value);
      else if (flag == "--md") md_steps = std::stoi(value);
      else if (flag == "--dt") dt_fs = std::stod(value);
      else if (flag == "--every") every = std::max(1, std::stoi(value));
      else if (flag == "--min-distance") min_distance = std::stod(value);
      else if (flag == "--extrapolation-stop-above") {
        stop_above = std::stoll(value);
        if (stop_above < 0) throw std::invalid_argument("negative");
      }
      else if (flag == "--extrapolation" && (value == "ignore" || value == "warn" || value == "stop")) extrapolation = value;
      else return usage();
    } catch (const std::exception&) {
      std::fprintf(stderr, "bpnn: bad value '%s' for %s\n", value.c_str(), flag.c_str());
      return 2;
    }
  }
  try {
    bpnn::Model model(model_path, device, threads, verify);
    model.set_compute_uncertainty(uncertainty);
    if (extrapolation.empty()) extrapolation = model.training_range_known() ? "warn" : "ignore";
    model.set_count_extrapolation(extrapolation != "ignore");
    bpnn::Structure s = bpnn::read_xyz(structure_path);
    int64_t extrapolating_steps = 0, worst_atoms = 0, worst_step = 0;
    // Applies the policy; false: stop. Warns at most once per 100 extrapolating steps, and at
    // every step whose number of extrapolating atoms is a new high (a growing blow-up).
    auto check = [&](const bpnn::Result& r, int step) {
      if (!r.extrapolation.defined()) return true;
      const int64_t atoms = r.extrapolation.gt(0).sum().item<int64_t>();
      if (atoms == 0) return true;
      const std::string where = md_steps > 0 ? "step " + std::to_string(step) + ": " : "";
      const std::string message = where + bpnn::describe_extrapolation(r.extrapolation, s.numbers);
      if (extrapolation == "stop" && atoms > stop_above) {
        std::fprintf(stderr, "bpnn: %s (--extrapolation stop%s)\n", message.c_str(),
                     stop_above > 0 ? (": more than " + std::to_string(stop_above) + " atoms").c_str() : "");
        return false;
      }
      const bool new_high = atoms > worst_atoms;
      if (new_high) worst_atoms = atoms, worst_step = step;
      if (extrapolating_steps++ % 100 == 0 || new_high)
        std::fprintf(stderr, "bpnn: warning: %s%s\n", message.c_str(), new_high ? " [a new high]" : "");
      return true;
    };
    auto summary = [&]() {  // the end of an MD run that extrapolated
      if (extrapolating_steps > 0)
        std::fprintf(stderr, "bpnn: extrapolation: %lld of %d steps had atoms outside the training range; the worst, "
                     "step %lld, %lld atoms\n", static_cast<long long>(extrapolating_steps), md_steps + 1,
                     static_cast<long long>(worst_step), static_cast<long long>(worst_atoms));
    };
    int64_t close_steps = 0;
    auto check_distance = [&](const bpnn::Result& r, int step) {
      if (r.min_distance >= min_distance || close_steps++ % 100 != 0) return;
      const int64_t i = r.closest_pair[0], j = r.closest_pair[1];
      std::fprintf(stderr, "bpnn: warning: %satoms %lld (%s) and %lld (%s) are %.3f Å apart, closer than "
                   "--min-distance %g Å: is the structure (or its units) right?\n",
                   md_steps > 0 ? ("step " + std::to_string(step) + ": ").c_str() : "", static_cast<long long>(i),
                   bpnn::kSymbols[s.numbers[i]], static_cast<long long>(j), bpnn::kSymbols[s.numbers[j]],
                   r.min_distance, min_distance);
    };
    auto result = model.compute(s.positions, s.numbers, s.cell, s.pbc, true);
    if (!check(result, 0)) return 3;
    check_distance(result, 0);
    if (md_steps == 0) {
      std::printf("{\"n_atoms\": %zu, \"energy\": %.17g, \"energies\": ", s.numbers.size(), result.energy);
      print_vector(result.energies);
      std::printf(", \"forces\": ");
      print_rows(result.forces);
      std::printf(", \"virial\": ");
      print_rows(result.virial);
      if (result.extrapolation.defined()) {
        std::printf(", \"extrapolation\": ");
        print_vector(result.extrapolation);
      }
      if (uncertainty) {
        std::printf(", \"energy_uncertainty\": %.17g, \"committee_energy\": ", result.energy_uncertainty);
        print_vector(result.committee_energy);
        std::printf(", \"energies_uncertainty\": ");
        print_vector(result.energies_uncertainty);
        std::printf(", \"forces_uncertainty\": ");
        print_vector(result.forces_uncertainty);
      }
      std::printf("}\n");
      return 0;
    }
    // Velocity Verlet, atoms start at rest (x in Å, v in Å per ASE time unit).
    const size_t n = s.numbers.size();
    const double dt = dt_fs * kFs;
    std::vector<double> velocity(3 * n, 0.0), mass(n);
    for (size_t i = 0; i < n; ++i) mass[i] = bpnn::kMasses[s.numbers[i]];
    auto forces = result.forces;
    for (int step = 0; step <= md_steps; ++step) {
      if (step > 0) {
        for (size_t i = 0; i < n; ++i)
          for (int c = 0; c < 3; ++c) {
            velocity[3 * i + c] += 0.5 * dt * forces[i][c].item<double>() / mass[i];
            s.positions[3 * i + c] += dt * velocity[3 * i + c];
          }
        const bool printed = step % every == 0 || step == md_steps;
        model.set_compute_uncertainty(uncertainty && printed);
        result = model.compute(s.positions, s.numbers, s.cell, s.pbc, false);
        if (!check(result, step)) return 3;
        check_distance(result, step);
        forces = result.forces;
        for (size_t i = 0; i < n; ++i)
          for (int c = 0; c < 3; ++c) velocity[3 * i + c] += 0.5 * dt * forces[i][c].item<double>() / mass[i];
      }
      if (step % every == 0 || step == md_steps) {
        double kinetic = 0.0;
        for (size_t i = 0; i < n; ++i)
          for (int c = 0; c < 3; ++c) kinetic += 0.5 * mass[i] * velocity[3 * i + c] * velocity[3 * i + c];
        std::printf("{\"step\": %d, \"time_fs\": %.6g, \"potential\": %.17g, \"kinetic\": %.17g, \"total\": %.17g",
                    step, step * dt_fs, result.energy, kinetic, result.energy + kinetic);
        if (uncertainty) {
          std::printf(", \"energy_uncertainty\": %.17g, \"max_force_uncertainty\": %.17g", result.energy_uncertainty,
                      result.forces_uncertainty.max().item<double>());
        }
        std::printf("}\n");
      }
    }
    summary();
    return 0;
  } catch (const bpnn::Error& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
}
