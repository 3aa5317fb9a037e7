"""Fake (meta) implementations of the bpnn ops: output shapes and dtypes without data, so that
torch.export traces models that call them with symbolic numbers of atoms and pairs. The pair
searches return a data-dependent number of pairs (a fresh symbolic size). Registered once, by
`register_fakes()`, after the ops themselves (bpnn_ts.native.load_ops)."""

import torch

_registered = False


def register_fakes() -> None:
    """Register the fake implementations (idempotent; torch >= 2.4, the ops loaded)."""
    global _registered
    if _registered:
        return

    @torch.library.register_fake("bpnn::acsf")
    def _acsf(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha):
        return vectors.new_empty((offsets.shape[0] - 1, n_functions))  # G (B, F)

    @torch.library.register_fake("bpnn::acsf_backward")
    def _acsf_backward(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                       cutoff_alpha, d_g):
        return vectors.new_empty((vectors.shape[0], 3))  # dE/dr_ij (P, 3)

    @torch.library.register_fake("bpnn::acsf_jvp")
    def _acsf_jvp(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type, cutoff_alpha, u):
        return vectors.new_empty((offsets.shape[0] - 1, n_functions))

    @torch.library.register_fake("bpnn::acsf_backward_jvp")
    def _acsf_backward_jvp(vectors, offsets, species, radial, angular, n_functions, n_species, cutoff_type,
                           cutoff_alpha, d_g, u):
        return vectors.new_empty((vectors.shape[0], 3))

    @torch.library.register_fake("bpnn::cell_list")
    def _cell_list(points, n_centres, cutoff):
        n_pairs = torch.library.get_ctx().new_dynamic_size()
        return [points.new_empty((n_pairs,), dtype=torch.long), points.new_empty((n_pairs,), dtype=torch.long)]

    @torch.library.register_fake("bpnn::neighbor_list")
    def _neighbor_list(positions, cell, pbc, cutoff):
        n_pairs = torch.library.get_ctx().new_dynamic_size()
        return [positions.new_empty((2, n_pairs), dtype=torch.long),
                positions.new_empty((n_pairs, 3), dtype=torch.long)]

    _registered = True
