"""A committee's outputs from its members' results: means, member values and spreads.

Spreads are population standard deviations over the K members (1/K, as in DP-GEN's model
deviation); the force spread of atom i is sqrt(mean_k |F_ik - mean_k F_ik|^2), in eV/Å.
"""

from typing import Dict, List

import torch

from .. import keys


def _spread(values: torch.Tensor) -> torch.Tensor:
    """Population standard deviation over dim 0 of (K, ...)."""
    deviation = values - values.mean(dim=0)
    return torch.sqrt((deviation * deviation).mean(dim=0))


def combine_members(members: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """One result from K members' results (each as BPNNPotential evaluates it):
    energies, forces and virials become means; committee_* keep the members' values;
    *_uncertainty are spreads (keys.py). Other entries (descriptors) come from member 0."""
    result: Dict[str, torch.Tensor] = {}
    for name, value in members[0].items():
        result[name] = value
    energies = torch.stack([m[keys.ENERGIES] for m in members])  # (K, n_local)
    totals = energies.sum(dim=1)  # (K,)
    result[keys.ENERGIES] = energies.mean(dim=0)
    result[keys.ENERGY] = totals.mean()
    result[keys.COMMITTEE_ENERGY] = totals
    result[keys.COMMITTEE_ENERGIES] = energies
    result[keys.ENERGY_UNCERTAINTY] = _spread(totals)
    result[keys.ENERGIES_UNCERTAINTY] = _spread(energies)
    if keys.FORCES in members[0]:
        forces = torch.stack([m[keys.FORCES] for m in members])  # (K, N, 3)
        mean_forces = forces.mean(dim=0)
        deviation = forces - mean_forces
        result[keys.FORCES] = mean_forces
        result[keys.COMMITTEE_FORCES] = forces
        result[keys.FORCES_UNCERTAINTY] = torch.sqrt((deviation * deviation).sum(dim=2).mean(dim=0))
    if keys.PAIR_GRADIENTS in members[0]:
        gradients = torch.stack([m[keys.PAIR_GRADIENTS] for m in members])  # (K, P, 3)
        result[keys.PAIR_GRADIENTS] = gradients.mean(dim=0)
        result[keys.COMMITTEE_PAIR_GRADIENTS] = gradients
    if keys.VIRIAL in members[0]:
        virials = torch.stack([m[keys.VIRIAL] for m in members])
        result[keys.VIRIAL] = virials.mean(dim=0)
        result[keys.COMMITTEE_VIRIAL] = virials
        result[keys.ATOMIC_VIRIALS] = torch.stack([m[keys.ATOMIC_VIRIALS] for m in members]).mean(dim=0)
    return result
