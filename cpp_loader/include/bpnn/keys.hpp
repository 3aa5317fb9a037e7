// Names of the model file's outputs and records: a mirror of bpnn_ts/keys.py (shapes and
// meanings there; tests/test_layout.py checks that both say the same).
#pragma once

#include <cstdint>

namespace bpnn {
namespace keys {

constexpr const char* kEnergy = "energy";  // () total energy of the local atoms, eV
constexpr const char* kEnergies = "energies";  // (n_local,) per-atom energies, eV
constexpr const char* kForces = "forces";  // (n_atoms, 3) -dE/dR for every atom given (ghosts included), eV/Å
constexpr const char* kVirial = "virial";  // (3, 3) W = -sum_pairs r_ij (x) dE/dr_ij, eV (stress = -W / volume)
constexpr const char* kAtomicVirials = "atomic_virials";  // (n_atoms, 3, 3) each pair's term split half to i, half to j; sums to VIRIAL
constexpr const char* kDescriptors = "descriptors";  // (n_local, n_max_functions) raw symmetry functions, zero-padded
constexpr const char* kScaledDescriptors = "scaled_descriptors";  // (n_local, n_max_functions) network inputs
constexpr const char* kDescriptorJacobian = "descriptor_jacobian";  // (n_pairs, n_max_functions, 3) dG_i/dr_ij (compute_descriptor_jacobian)
constexpr const char* kPairCentres = "pair_centres";  // (n_pairs,) int64 centre i of each pair of the Jacobian
constexpr const char* kPairNeighbours = "pair_neighbours";  // (n_pairs,) int64 neighbour j of each pair of the Jacobian
constexpr const char* kPairVectors = "pair_vectors";  // (n_pairs, 3) r_ij of each pair of the Jacobian, Å
constexpr const char* kPairGradients = "pair_gradients";  // (n_pairs, 3) dE/dr_ij of each pair given, eV/Å (pair_energy_gradients)
constexpr const char* kMinDistance = "min_distance";  // () Å, the closest pair's distance (inf without pairs or with validation off)
constexpr const char* kClosestPair = "closest_pair";  // (2,) int64 atom indices of that pair (-1, -1 without)
constexpr const char* kExtrapolation = "extrapolation";  // (n_local,) int64: symmetry functions outside [Gmin, Gmax] of training
constexpr const char* kCommitteeEnergy = "committee_energy";  // (K,) each member's total energy, eV
constexpr const char* kCommitteeEnergies = "committee_energies";  // (K, n_local) each member's per-atom energies, eV
constexpr const char* kCommitteeForces = "committee_forces";  // (K, n_atoms, 3) each member's forces, eV/Å
constexpr const char* kCommitteeVirial = "committee_virial";  // (K, 3, 3) each member's virial, eV (with compute_virial)
constexpr const char* kCommitteePairGradients = "committee_pair_gradients";  // (K, n_pairs, 3) each member's dE/dr_ij, eV/Å
constexpr const char* kEnergyUncertainty = "energy_uncertainty";  // () spread of the members' total energies, eV
constexpr const char* kEnergiesUncertainty = "energies_uncertainty";  // (n_local,) spread of each atom's energy, eV
constexpr const char* kForcesUncertainty = "forces_uncertainty";  // (n_atoms,) sqrt(mean_k |F_ik - mean F_i|^2) per atom, eV/Å
constexpr int64_t kFormatVersion = 2;  // major version of the model-file contract (export/CONTRACT.md)
constexpr const char* kMetadataFile = "metadata.json";  // extra file in the archive: the typed getters as JSON
constexpr const char* kProvenanceFile = "provenance.json";  // extra file in the archive: versions, date, config

}  // namespace keys
}  // namespace bpnn
