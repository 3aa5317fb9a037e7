// LAMMPS pair style `bpnn`: runs a bpnn_ts model file (export/CONTRACT.md; TorchScript or
// .pt2, told by content) on each MPI domain with LAMMPS's full neighbour list and ghost atoms.
//
//   units metal
//   pair_style bpnn model.pt [device cpu|cuda|cuda:N] [threads N] [tune_malloc yes|no]
//                    [extrapolation ignore|warn|stop] [extrapolation_every N]
//                    [min_distance A] [uncertainty_every N] [check_masses yes|no]
//   pair_coeff * * O H        # element symbol of each atom type (NULL: not handled)
//   (pair_style bpnn model.pt2 ... the same)
//
// check_masses (default yes): at each run's setup, a mapped type's mass (or an atom's per-atom
// mass) that differs from its element's standard atomic weight by more than max(0.5 u, 2 %)
// stops the run (pair_coeff in the wrong order); `no` for isotopes (D) or scaled masses.
// min_distance (Å, default 0.5; 0: off): warn (at most once every extrapolation_every such
// steps) when two atoms are closer. uncertainty_every N (committee files): every N steps all
// members are evaluated (one force pass each on those steps) and `compute pair bpnn`
// gives c_ID[1] the largest and c_ID[2] the mean per-atom force spread (eV/Å), c_ID[3] the
// spread of the total energy (eV); values hold until the next such step.
// Defined in pair_bpnn.cpp (options, model, masses, the compute() steps) and pair_bpnn_report.cpp
// (extrapolation and close-atom reports, committee spreads and their reverse communication).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pair.h"

namespace bpnn {
class Model;
struct Result;
}

namespace LAMMPS_NS {

class PairBPNN : public Pair {
 public:
  explicit PairBPNN(class LAMMPS *lmp);
  ~PairBPNN() override;
  void finish() override;               // end of a run: the extrapolation summary

  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  int pack_reverse_comm(int n, int first, double *buf) override;
  void unpack_reverse_comm(int n, int *list, double *buf) override;

 private:
  // pair_style keywords needed only while settings() loads the model
  struct LoadOptions {
    std::string device = "cpu";
    int threads = 1;
    bool tune_malloc = true;
    std::string extrapolation;  // ignore|warn|stop; empty: warn if the file knows its training range
  };

  void allocate();
  // settings() steps
  LoadOptions parse_keywords(int narg, char **arg);
  void load_model(const std::string &path, const LoadOptions &options);
  // init_style() step
  void check_masses();
  // compute() steps, in order
  void gather_atoms();
  void gather_pairs();
  bool spreads_this_step() const;
  bpnn::Result evaluate(bool spreads);
  void report_extrapolation(const bpnn::Result &result);
  void report_close_atoms(const bpnn::Result &result);
  void tally_uncertainty(const bpnn::Result &result);
  void add_forces(const bpnn::Result &result);
  void add_energies(const bpnn::Result &result);
  void add_virials(const bpnn::Result &result);

  std::unique_ptr<bpnn::Model> model_;
  std::string model_path_;
  double cutoff_ = 0.0;                 // Å, from the model file
  std::vector<int64_t> type_to_z_;      // atomic number of each LAMMPS type (index 1..ntypes; 0: NULL)
  std::vector<double> positions_;       // per step: local + ghost positions, Å
  std::vector<int64_t> numbers_;        // per step: atomic numbers of local + ghost atoms
  std::vector<int64_t> pairs_i_, pairs_j_, shifts_;
  bool stop_on_extrapolation_ = false;
  int extrapolation_every_ = 100;       // warn at most once per this many extrapolating steps
  int64_t extrapolating_steps_ = 0;
  int64_t extrapolation_stop_above_ = 0;  // stop: only beyond this many extrapolating atoms (per rank)
  int64_t worst_atoms_ = 0;             // most extrapolating atoms in one step on this rank
  int64_t worst_step_ = 0;
  double min_distance_ = 0.5;           // Å; closer pairs are warned about
  int64_t close_steps_ = 0;
  bool check_masses_ = true;            // masses against the mapped elements' standard weights
  int uncertainty_every_ = 0;           // 0: committee spreads never computed
  int members_ = 1;                     // committee size K
  std::vector<double> member_forces_;   // per step with spreads: (nall, K, 3), reverse-communicated
};

}  // namespace LAMMPS_NS
