"""Names of the exported model's outputs and metadata (one place, used everywhere)."""

ENERGY = "energy"  # () total energy of the local atoms, eV
ENERGIES = "energies"  # (n_local,) per-atom energies, eV
FORCES = "forces"  # (n_atoms, 3) -dE/dR for every atom given (ghosts included), eV/Å
VIRIAL = "virial"  # (3, 3) W = -sum_pairs r_ij (x) dE/dr_ij, eV (stress = -W / volume)
ATOMIC_VIRIALS = "atomic_virials"  # (n_atoms, 3, 3) each pair's term split half to i, half to j; sums to VIRIAL
DESCRIPTORS = "descriptors"  # (n_local, n_max_functions) raw symmetry functions, zero-padded
SCALED_DESCRIPTORS = "scaled_descriptors"  # (n_local, n_max_functions) network inputs
DESCRIPTOR_JACOBIAN = "descriptor_jacobian"  # (n_pairs, n_max_functions, 3) dG_i/dr_ij (compute_descriptor_jacobian)
PAIR_CENTRES = "pair_centres"  # (n_pairs,) int64 centre i of each pair of the Jacobian
PAIR_NEIGHBOURS = "pair_neighbours"  # (n_pairs,) int64 neighbour j of each pair of the Jacobian
PAIR_VECTORS = "pair_vectors"  # (n_pairs, 3) r_ij of each pair of the Jacobian, Å
PAIR_GRADIENTS = "pair_gradients"  # (n_pairs, 3) dE/dr_ij of each pair given, eV/Å (pair_energy_gradients)
MIN_DISTANCE = "min_distance"  # () Å, the closest pair's distance (inf without pairs or with validation off)
CLOSEST_PAIR = "closest_pair"  # (2,) int64 atom indices of that pair (-1, -1 without)
EXTRAPOLATION = "extrapolation"  # (n_local,) int64: symmetry functions outside [Gmin, Gmax] of training
# committees with compute_uncertainty (K members; spreads are population standard deviations)
COMMITTEE_ENERGY = "committee_energy"  # (K,) each member's total energy, eV
COMMITTEE_ENERGIES = "committee_energies"  # (K, n_local) each member's per-atom energies, eV
COMMITTEE_FORCES = "committee_forces"  # (K, n_atoms, 3) each member's forces, eV/Å
COMMITTEE_VIRIAL = "committee_virial"  # (K, 3, 3) each member's virial, eV (with compute_virial)
COMMITTEE_PAIR_GRADIENTS = "committee_pair_gradients"  # (K, n_pairs, 3) each member's dE/dr_ij, eV/Å
ENERGY_UNCERTAINTY = "energy_uncertainty"  # () spread of the members' total energies, eV
ENERGIES_UNCERTAINTY = "energies_uncertainty"  # (n_local,) spread of each atom's energy, eV
FORCES_UNCERTAINTY = "forces_uncertainty"  # (n_atoms,) sqrt(mean_k |F_ik - mean F_i|^2) per atom, eV/Å

FORMAT_VERSION = 2  # major version of the model-file contract (export/CONTRACT.md)
METADATA_FILE = "metadata.json"  # extra file in the archive: the typed getters as JSON
PROVENANCE_FILE = "provenance.json"  # extra file in the archive: versions, date, config
