"""A whole evaluation in one op: what BPNNModel.forward computes for a system without an engine's
pair list, by bpnn::evaluate (bpnn_ts/native/cpu/evaluate_cpu.cpp; BPNNPotential.evaluate_whole
gathers its tables). Inference on the CPU with the fused kernels, one precision, no committee
spreads; forward takes it for systems of at most `BPNNModel.whole_evaluation_atoms` atoms (all,
by default). Results equal the general path's to rounding (tests/test_whole_evaluation.py).

Why: the general path runs ~300 small torch ops per call, ~450 µs for a 3-atom molecule; one op
runs the search, descriptors, networks and forces in ~20 µs. Boxes gain too (each centre is
loaded once for G and its force contraction, not twice)."""

from typing import Dict, List

import torch

from .. import keys


def as_result(out: List[torch.Tensor], compute_forces: bool, compute_virial: bool,
              count_extrapolation: bool) -> Dict[str, torch.Tensor]:
    """bpnn::evaluate's outputs [energy, energies, forces, virial, atomic virials, extrapolation,
    closest pair, its distance] as forward's result, with what was asked for."""
    result: Dict[str, torch.Tensor] = {}
    result[keys.ENERGY] = out[0]
    result[keys.ENERGIES] = out[1]
    if compute_forces:
        result[keys.FORCES] = out[2]
    if compute_virial:
        result[keys.VIRIAL] = out[3]
        result[keys.ATOMIC_VIRIALS] = out[4]
    if count_extrapolation:
        result[keys.EXTRAPOLATION] = out[5]
    result[keys.CLOSEST_PAIR] = out[6]
    result[keys.MIN_DISTANCE] = out[7]
    return result
