#include "pair_bpnn.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include "bpnn/model.hpp"
#include "elements.hpp"

using namespace LAMMPS_NS;

namespace {

// Atomic number of an element symbol ("O", "Cu"), 0 if unknown.
int64_t atomic_number(const std::string& symbol) {
  for (int z = 1; z <= bpnn::kMaxZ; ++z) {
    if (symbol == bpnn::kSymbols[z]) return z;
  }
  return 0;
}

// "15.999": a mass in u, as written in data files.
std::string mass_text(double mass) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", mass);
  return text;
}

// Whether `mass` (u) is element z's standard atomic weight, within max(0.5 u, 2 %).
bool mass_matches(double mass, int64_t z) {
  const double standard = bpnn::kMasses[z];
  return std::fabs(mass - standard) <= std::max(0.5, 0.02 * standard);
}

// Why `what` ("atom type 1") with `mass` cannot be element z, with the element `mass` suggests.
std::string mass_mismatch(const std::string& what, double mass, int64_t z) {
  int64_t closest = 1;
  for (int64_t candidate = 2; candidate <= bpnn::kMaxZ; ++candidate) {
    if (std::fabs(bpnn::kMasses[candidate] - mass) < std::fabs(bpnn::kMasses[closest] - mass)) closest = candidate;
  }
  return "pair bpnn: " + what + " has mass " + mass_text(mass) + " but pair_coeff maps it to " + bpnn::kSymbols[z] +
         " (standard atomic weight " + mass_text(bpnn::kMasses[z]) + "); the element closest in mass is " +
         bpnn::kSymbols[closest] + " (" + mass_text(bpnn::kMasses[closest]) +
         "): fix the element order in pair_coeff, or, for isotopes or scaled masses, turn this check off with "
         "the pair_style bpnn keyword 'check_masses no'";
}

// glibc returns freed blocks of a few MB to the kernel and page-faults them back on every
// step inside LAMMPS (measured: ~1.7x slower per step on 2,048 Cu atoms). Keep them in the heap.
void keep_freed_memory_in_heap() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
#endif
}

// Adds row-major 3x3 `w` to `out` in LAMMPS order xx yy zz xy xz yz, off-diagonals symmetrised.
void add_voigt(double* out, const double* w) {
  out[0] += w[0];
  out[1] += w[4];
  out[2] += w[8];
  out[3] += 0.5 * (w[1] + w[3]);
  out[4] += 0.5 * (w[2] + w[6]);
  out[5] += 0.5 * (w[5] + w[7]);
}

}  // namespace

PairBPNN::PairBPNN(LAMMPS* lmp) : Pair(lmp) {
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;  // the model returns the virial itself
}

PairBPNN::~PairBPNN() {
  delete[] pvector;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairBPNN::allocate() {
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 1; i <= n; ++i) {
    for (int j = 1; j <= n; ++j) setflag[i][j] = 0;
  }
  type_to_z_.assign(n + 1, 0);
}

// pair_style bpnn MODEL [device cpu|cuda|cuda:N] [threads N] [tune_malloc yes|no]
//                  [extrapolation ignore|warn|stop] [extrapolation_every N] [extrapolation_stop_above N]
//                  [min_distance A]
//                  [uncertainty_every N] [check_masses yes|no]
// MODEL: a bpnn_ts model file, TorchScript (model.pt) or compiled (model.pt2), told by content.
void PairBPNN::settings(int narg, char** arg) {
  if (std::strcmp(update->unit_style, "metal") != 0) {
    error->all(FLERR, std::string("pair_style bpnn needs 'units metal' (eV, Å, ps); this input uses units ") +
                          update->unit_style);
  }
  if (narg < 1 || narg % 2 == 0) {
    error->all(FLERR, "Usage: pair_style bpnn MODEL [device cpu|cuda|cuda:N] [threads N] [tune_malloc yes|no] "
                      "[extrapolation ignore|warn|stop] [extrapolation_every N] [extrapolation_stop_above N] "
                      "[min_distance A] "
                      "[uncertainty_every N] [check_masses yes|no] (MODEL: model.pt or model.pt2)");
  }
  const LoadOptions options = parse_keywords(narg - 1, arg + 1);
  if (options.tune_malloc) keep_freed_memory_in_heap();
  load_model(arg[0], options);
  if (uncertainty_every_ > 0) {  // compute pair bpnn: c_ID[1..3]
    nextra = 3;
    delete[] pvector;
    pvector = new double[nextra]();
    comm_reverse = 3 * members_;  // members' forces on ghosts go back to their owners
  }
}

// Keyword-value pairs after the model file: sets the per-step options, returns the load-time ones.
PairBPNN::LoadOptions PairBPNN::parse_keywords(int narg, char** arg) {
  LoadOptions options;
  for (int i = 0; i < narg; i += 2) {
    const std::string key = arg[i];
    if (key == "device") {
      options.device = arg[i + 1];
    } else if (key == "threads") {
      options.threads = std::atoi(arg[i + 1]);
    } else if (key == "tune_malloc") {
      const std::string value = arg[i + 1];
      if (value != "yes" && value != "no") error->all(FLERR, "pair_style bpnn: tune_malloc takes yes or no");
      options.tune_malloc = value == "yes";
    } else if (key == "extrapolation") {
      options.extrapolation = arg[i + 1];
      if (options.extrapolation != "ignore" && options.extrapolation != "warn" && options.extrapolation != "stop") {
        error->all(FLERR,
                   "pair_style bpnn: extrapolation takes ignore, warn or stop, got '" + options.extrapolation + "'");
      }
    } else if (key == "extrapolation_stop_above") {
      extrapolation_stop_above_ = std::atoll(arg[i + 1]);
      if (extrapolation_stop_above_ < 0)
        error->all(FLERR, "pair_style bpnn: extrapolation_stop_above must be >= 0 (atoms)");
    } else if (key == "extrapolation_every") {
      extrapolation_every_ = std::atoi(arg[i + 1]);
      if (extrapolation_every_ < 1) error->all(FLERR, "pair_style bpnn: extrapolation_every must be >= 1");
    } else if (key == "min_distance") {
      min_distance_ = std::atof(arg[i + 1]);
      if (min_distance_ < 0.0) error->all(FLERR, "pair_style bpnn: min_distance must be >= 0 (Å)");
    } else if (key == "uncertainty_every") {
      uncertainty_every_ = std::atoi(arg[i + 1]);
      if (uncertainty_every_ < 1) error->all(FLERR, "pair_style bpnn: uncertainty_every must be >= 1");
    } else if (key == "check_masses") {
      const std::string value = arg[i + 1];
      if (value != "yes" && value != "no") {
        error->all(FLERR, "pair_style bpnn: check_masses takes yes or no, got '" + value + "'");
      }
      check_masses_ = value == "yes";
    } else {
      error->all(FLERR, "pair_style bpnn: unknown keyword '" + key +
                            "' (known: device, threads, tune_malloc, extrapolation, extrapolation_every, "
                            "extrapolation_stop_above, "
                            "min_distance, uncertainty_every, check_masses)");
    }
  }
  return options;
}

// Loads the model; extrapolation defaults to warn if the file knows its training range.
void PairBPNN::load_model(const std::string& path, const LoadOptions& options) {
  model_path_ = path;
  std::string extrapolation = options.extrapolation;
  try {
    model_ = std::make_unique<bpnn::Model>(model_path_, options.device, options.threads);
    if (extrapolation.empty()) extrapolation = model_->training_range_known() ? "warn" : "ignore";
    model_->set_count_extrapolation(extrapolation != "ignore");
    if (uncertainty_every_ > 0) model_->set_compute_uncertainty(true);  // throws unless a committee
    model_->set_compute_uncertainty(false);
  } catch (const std::exception& e) {
    error->all(FLERR, e.what());
  }
  members_ = static_cast<int>(model_->committee_size());
  stop_on_extrapolation_ = extrapolation == "stop";
  cutoff_ = model_->cutoff();
}

// pair_coeff * * El1 El2 ... : the element of each atom type, NULL for types handled elsewhere.
void PairBPNN::coeff(int narg, char** arg) {
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0) {
    error->all(FLERR, "Usage: pair_coeff * * El1 ... El" + std::to_string(ntypes) +
                          " (one element symbol or NULL per atom type; this system has " +
                          std::to_string(ntypes) + " types)");
  }
  for (int t = 1; t <= ntypes; ++t) {
    const std::string symbol = arg[1 + t];
    if (symbol == "NULL") {
      type_to_z_[t] = 0;
      continue;
    }
    const int64_t z = atomic_number(symbol);
    if (z == 0) error->all(FLERR, "pair_coeff: '" + symbol + "' (type " + std::to_string(t) + ") is not an element symbol");
    try {
      model_->check_elements({z});
    } catch (const std::exception& e) {
      error->all(FLERR, std::string(e.what()) + " (" + model_path_ + ", atom type " + std::to_string(t) + ")");
    }
    type_to_z_[t] = z;
  }
  int count = 0;
  for (int i = 1; i <= ntypes; ++i) {
    for (int j = i; j <= ntypes; ++j) {
      setflag[i][j] = (type_to_z_[i] > 0 && type_to_z_[j] > 0) ? 1 : 0;
      count += setflag[i][j];
    }
  }
  if (count == 0) error->all(FLERR, "pair_coeff: no atom type is mapped to an element");
}

void PairBPNN::init_style() {
  if (!model_) error->all(FLERR, "pair_style bpnn: no model loaded");
  if (std::strcmp(update->unit_style, "metal") != 0) {
    error->all(FLERR, std::string("pair_style bpnn needs 'units metal'; this input uses units ") + update->unit_style);
  }
  if (force->newton_pair == 0) error->all(FLERR, "pair_style bpnn needs 'newton on' (forces on ghost atoms)");
  if (check_masses_) check_masses();
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

// Masses (known by init) against the mapped elements, so that pair_coeff in the wrong order
// stops instead of running with the elements swapped: per-type masses that are set, and each
// local atom's per-atom mass.
void PairBPNN::check_masses() {
  if (atom->mass && atom->mass_setflag) {
    for (int t = 1; t <= atom->ntypes; ++t) {
      const int64_t z = type_to_z_[t];
      if (z > 0 && atom->mass_setflag[t] && !mass_matches(atom->mass[t], z)) {
        error->all(FLERR, mass_mismatch("atom type " + std::to_string(t), atom->mass[t], z));
      }
    }
  }
  if (atom->rmass_flag && atom->rmass) {
    for (int i = 0; i < atom->nlocal; ++i) {
      const int64_t z = type_to_z_[atom->type[i]];
      if (z > 0 && !mass_matches(atom->rmass[i], z)) {
        error->one(FLERR, mass_mismatch("atom ID " + std::to_string(static_cast<int64_t>(atom->tag[i])) + " (type " +
                                            std::to_string(atom->type[i]) + ", per-atom mass)",
                                        atom->rmass[i], z));
      }
    }
  }
}

double PairBPNN::init_one(int i, int j) {
  if (setflag[i][j] == 0) error->all(FLERR, "pair_style bpnn: all pair coeffs are not set");
  return cutoff_;
}

void PairBPNN::compute(int eflag, int vflag) {
  ev_init(eflag, vflag);
  gather_atoms();
  gather_pairs();
  const bool spreads = spreads_this_step();
  const bpnn::Result result = evaluate(spreads);
  report_extrapolation(result);
  report_close_atoms(result);
  if (spreads) tally_uncertainty(result);
  add_forces(result);
  if (eflag_either) add_energies(result);
  if (vflag_either) add_virials(result);
}

// Positions and atomic numbers of local + ghost atoms; NULL types get a stand-in element.
void PairBPNN::gather_atoms() {
  const int nall = atom->nlocal + atom->nghost;
  double** x = atom->x;
  const int64_t stand_in = model_->atomic_numbers().front();
  positions_.resize(3 * static_cast<size_t>(nall));
  numbers_.resize(nall);
  for (int i = 0; i < nall; ++i) {
    for (int k = 0; k < 3; ++k) positions_[3 * i + k] = x[i][k];
    const int64_t z = type_to_z_[atom->type[i]];
    numbers_[i] = z > 0 ? z : stand_in;
  }
}

// Full list of local centres within the cutoff (no skin); ghosts are the images: zero shifts.
void PairBPNN::gather_pairs() {
  double** x = atom->x;
  const int* type = atom->type;
  const double cut2 = cutoff_ * cutoff_;
  pairs_i_.clear();
  pairs_j_.clear();
  for (int ii = 0; ii < list->inum; ++ii) {
    const int i = list->ilist[ii];
    if (type_to_z_[type[i]] == 0) continue;
    const int* neighbours = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; ++jj) {
      const int j = neighbours[jj] & NEIGHMASK;
      if (type_to_z_[type[j]] == 0) continue;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz >= cut2) continue;
      pairs_i_.push_back(i);
      pairs_j_.push_back(j);
    }
  }
  shifts_.assign(3 * pairs_i_.size(), 0);
}

// Committee spreads are computed on every uncertainty_every-th step.
bool PairBPNN::spreads_this_step() const {
  return uncertainty_every_ > 0 && update->ntimestep % uncertainty_every_ == 0;
}

// One model call on the gathered atoms and pairs (virials only when LAMMPS asks for them).
bpnn::Result PairBPNN::evaluate(bool spreads) {
  bpnn::Result result;
  try {
    model_->set_compute_uncertainty(spreads);
    result = model_->compute_with_pairs(positions_, numbers_, std::vector<double>(9, 0.0), pairs_i_, pairs_j_,
                                        shifts_, atom->nlocal, vflag_either != 0);
  } catch (const std::exception& e) {
    error->one(FLERR, e.what());
  }
  return result;
}

// Forces on local and ghost atoms (newton on: ghosts' forces go back to their owners).
void PairBPNN::add_forces(const bpnn::Result& result) {
  const int nall = atom->nlocal + atom->nghost;
  double** f = atom->f;
  const double* forces = result.forces.data_ptr<double>();
  for (int i = 0; i < nall; ++i) {
    for (int k = 0; k < 3; ++k) f[i][k] += forces[3 * i + k];
  }
}

// Global and per-atom energies of the local atoms of this model's elements.
void PairBPNN::add_energies(const bpnn::Result& result) {
  const double* energies = result.energies.data_ptr<double>();
  for (int i = 0; i < atom->nlocal; ++i) {
    if (type_to_z_[atom->type[i]] == 0) continue;
    if (eflag_global) eng_vdwl += energies[i];
    if (eflag_atom) eatom[i] += energies[i];
  }
}

// Global and per-atom (local and ghost) virials.
void PairBPNN::add_virials(const bpnn::Result& result) {
  if (vflag_global) add_voigt(virial, result.virial.data_ptr<double>());
  if (vflag_atom) {
    const int nall = atom->nlocal + atom->nghost;
    const double* atomic = result.atomic_virials.data_ptr<double>();
    for (int i = 0; i < nall; ++i) add_voigt(vatom[i], atomic + 9 * i);
  }
}
