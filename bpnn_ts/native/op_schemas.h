// The schemas of the bpnn ops, written once: register.cpp defines the bpnn library with them, and
// the test-only library bpnn_emulation (emulation/emulation_ops.cpp) defines its ops, which
// mirror the bpnn ops of the same names, with the very same. They are part of the model-file
// contract (export/CONTRACT.md): model files call the ops by these names and arguments, so an op,
// an argument or a result is never renamed, reordered or removed, only added as a new op.
#pragma once

namespace bpnn_schemas {

constexpr const char* kCudaKernels = "cuda_kernels() -> bool";
constexpr const char* kCellList = "cell_list(Tensor points, int n_centres, float cutoff) -> Tensor[]";
constexpr const char* kNeighborList = "neighbor_list(Tensor positions, Tensor cell, Tensor pbc, float cutoff) -> Tensor[]";
constexpr const char* kCellListCapacity =
    "cell_list_capacity(Tensor points, int n_centres, float cutoff, int capacity) -> Tensor[]";
constexpr const char* kAcsf =
    "acsf(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, int n_functions, "
    "int n_species, int cutoff_type, float cutoff_alpha) -> Tensor";
constexpr const char* kAcsfBackward =
    "acsf_backward(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
    "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor d_g) -> Tensor";
constexpr const char* kAcsfJvp =
    "acsf_jvp(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
    "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor u) -> Tensor";
constexpr const char* kAcsfBackwardJvp =
    "acsf_backward_jvp(Tensor vectors, Tensor offsets, Tensor species, Tensor radial, Tensor angular, "
    "int n_functions, int n_species, int cutoff_type, float cutoff_alpha, Tensor d_g, Tensor u) -> Tensor";
constexpr const char* kEvaluate =
    "evaluate(Tensor positions, Tensor atomic_numbers, Tensor cell, Tensor pbc, Tensor species_of_z, float cutoff, "
    "Tensor[] radial, Tensor[] angular, int[] n_functions, int cutoff_type, float cutoff_alpha, Tensor[] scaling, "
    "Tensor[] layers, int[] activations, int n_members, float energy_scale, Tensor energy_shift, "
    "bool compute_virial, bool count_extrapolation) -> Tensor[]";
constexpr const char* kEvaluateList =
    "evaluate_list(Tensor positions, Tensor atomic_numbers, Tensor cell, Tensor pairs, Tensor shifts, int n_local, "
    "Tensor species_of_z, float cutoff, Tensor[] radial, Tensor[] angular, int[] n_functions, int cutoff_type, "
    "float cutoff_alpha, Tensor[] scaling, Tensor[] layers, int[] activations, int n_members, float energy_scale, "
    "Tensor energy_shift, bool compute_virial, bool count_extrapolation) -> Tensor[]";

}  // namespace bpnn_schemas
