// pair_style bpnn: what a step reports beyond energies and forces (pair_bpnn.cpp calls these from
// compute()): extrapolation counts against the `extrapolation` policy, atoms closer than
// min_distance, and the committee spreads of `compute pair bpnn` (uncertainty_every), with the
// reverse communication of the members' ghost forces they need.
#include "pair_bpnn.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "update.h"
#include "utils.h"

#include "bpnn/model.hpp"
#include "elements.hpp"

using namespace LAMMPS_NS;

// Policy on the local atoms' counts of functions outside the training range: stop (error on
// this rank, naming atom IDs) or warn (at most once every extrapolation_every such steps, and
// at every step whose number of extrapolating atoms on this rank is a new high).
void PairBPNN::report_extrapolation(const bpnn::Result& result) {
  if (!result.extrapolation.defined()) return;  // not counting
  const int64_t* counts = result.extrapolation.data_ptr<int64_t>();
  const int nlocal = atom->nlocal;
  std::vector<int64_t> value(counts, counts + nlocal), ids(nlocal), numbers(nlocal);
  int64_t atoms = 0;
  for (int i = 0; i < nlocal; ++i) {
    if (type_to_z_[atom->type[i]] == 0) value[i] = 0;  // NULL types: not this model's atoms
    ids[i] = static_cast<int64_t>(atom->tag[i]);
    numbers[i] = type_to_z_[atom->type[i]];
    atoms += value[i] > 0;
  }
  if (atoms == 0) return;
  auto masked = torch::from_blob(value.data(), {nlocal}, torch::kInt64);
  const std::string message = "pair bpnn, step " + std::to_string(update->ntimestep) + ": " +
                              bpnn::describe_extrapolation(masked, numbers, ids);
  if (stop_on_extrapolation_ && atoms > extrapolation_stop_above_)
    error->one(FLERR, message + " (extrapolation stop" +
                          (extrapolation_stop_above_ > 0
                               ? ": more than " + std::to_string(extrapolation_stop_above_) + " atoms on this rank)"
                               : std::string(")")));
  const bool new_high = atoms > worst_atoms_;
  if (new_high) worst_atoms_ = atoms, worst_step_ = update->ntimestep;
  if (extrapolating_steps_++ % extrapolation_every_ == 0 || new_high)
    error->warning(FLERR, message + (new_high ? " [a new high on this rank]" : ""));
}

// End of a run: one line on rank 0 if any rank extrapolated (the most extrapolating steps and
// atoms of any rank, and the step of the worst).
void PairBPNN::finish() {
  int64_t local[2] = {extrapolating_steps_, worst_atoms_}, most[2] = {0, 0};
  MPI_Allreduce(local, most, 2, MPI_INT64_T, MPI_MAX, world);
  int64_t step = worst_atoms_ == most[1] && most[1] > 0 ? worst_step_ : -1, worst_step = -1;
  MPI_Allreduce(&step, &worst_step, 1, MPI_INT64_T, MPI_MAX, world);
  if (most[0] > 0 && comm->me == 0)
    utils::logmesg(lmp, "pair bpnn: extrapolation: up to {} steps per rank had atoms outside the training range; "
                        "the worst, step {}, {} atoms on one rank\n", most[0], worst_step, most[1]);
}

// Warning naming the closest pair by atom ID when it is closer than min_distance (at most once
// every extrapolation_every such steps).
void PairBPNN::report_close_atoms(const bpnn::Result& result) {
  if (result.min_distance >= min_distance_ || close_steps_++ % extrapolation_every_ != 0) return;
  const int i = static_cast<int>(result.closest_pair[0]), j = static_cast<int>(result.closest_pair[1]);
  auto name = [&](int k) {
    const int64_t z = type_to_z_[atom->type[k]];
    return "ID " + std::to_string(static_cast<int64_t>(atom->tag[k])) + " (" + bpnn::kSymbols[z] + ")";
  };
  char distances[96];
  std::snprintf(distances, sizeof(distances), " are %.3f Å apart, closer than min_distance %g Å", result.min_distance,
                min_distance_);
  error->warning(FLERR, "pair bpnn, step " + std::to_string(update->ntimestep) + ": atoms " + name(i) + " and " +
                            name(j) + distances);
}

// Committee spreads over all ranks into pvector (on rank 0; compute pair sums over ranks):
// largest and mean per-atom force spread (members' ghost forces reverse-communicated first),
// and the spread of the members' total energies. NULL-type atoms are left out.
void PairBPNN::tally_uncertainty(const bpnn::Result& result) {
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  const int k_members = members_;
  member_forces_.assign(static_cast<size_t>(nall) * 3 * k_members, 0.0);
  const double* forces = result.committee_forces.data_ptr<double>();  // (K, nall, 3)
  for (int k = 0; k < k_members; ++k)
    for (int i = 0; i < nall; ++i)
      for (int c = 0; c < 3; ++c) member_forces_[(3 * i + c) * k_members + k] = forces[(k * nall + i) * 3 + c];
  comm->reverse_comm(this);
  double local[3] = {0.0, 0.0, 0.0};  // max spread, sum of spreads, atoms
  std::vector<double> energy(k_members, 0.0), total(k_members, 0.0);
  const double* energies = result.committee_energies.data_ptr<double>();  // (K, nlocal)
  for (int i = 0; i < nlocal; ++i) {
    if (type_to_z_[atom->type[i]] == 0) continue;
    double spread = 0.0;
    for (int c = 0; c < 3; ++c) {
      const double* values = &member_forces_[(3 * i + c) * k_members];
      double mean = 0.0;
      for (int k = 0; k < k_members; ++k) mean += values[k] / k_members;
      for (int k = 0; k < k_members; ++k) spread += (values[k] - mean) * (values[k] - mean) / k_members;
    }
    spread = std::sqrt(spread);
    local[0] = std::max(local[0], spread);
    local[1] += spread;
    local[2] += 1.0;
    for (int k = 0; k < k_members; ++k) energy[k] += energies[k * nlocal + i];
  }
  double largest = 0.0, sums[2] = {0.0, 0.0};
  MPI_Allreduce(&local[0], &largest, 1, MPI_DOUBLE, MPI_MAX, world);
  MPI_Allreduce(&local[1], sums, 2, MPI_DOUBLE, MPI_SUM, world);
  MPI_Allreduce(energy.data(), total.data(), k_members, MPI_DOUBLE, MPI_SUM, world);
  double mean_energy = 0.0, energy_spread = 0.0;
  for (double e : total) mean_energy += e / k_members;
  for (double e : total) energy_spread += (e - mean_energy) * (e - mean_energy) / k_members;
  const bool root = comm->me == 0;
  pvector[0] = root ? largest : 0.0;
  pvector[1] = root && sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  pvector[2] = root ? std::sqrt(energy_spread) : 0.0;
}

int PairBPNN::pack_reverse_comm(int n, int first, double* buf) {
  const int width = 3 * members_;
  int m = 0;
  for (int i = first; i < first + n; ++i)
    for (int v = 0; v < width; ++v) buf[m++] = member_forces_[static_cast<size_t>(i) * width + v];
  return m;
}

void PairBPNN::unpack_reverse_comm(int n, int* list, double* buf) {
  const int width = 3 * members_;
  int m = 0;
  for (int i = 0; i < n; ++i)
    for (int v = 0; v < width; ++v) member_forces_[static_cast<size_t>(list[i]) * width + v] += buf[m++];
}
