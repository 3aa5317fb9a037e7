"""Error metrics of predictions against labels: energies per atom, forces, per element, stress."""

from typing import Dict, List, Sequence

import torch

from .. import keys
from ..elements import symbol
from .batch import Batch, stress_from_virial


def accumulate(batch: Batch, prediction: Dict[str, torch.Tensor], store: Dict[str, List[torch.Tensor]]) -> None:
    """Append one batch's errors (detached) to `store`."""
    per_atom = ((prediction[keys.ENERGY] - batch.energy) / batch.n_atoms).detach()
    store.setdefault("energy", []).append(per_atom)
    store.setdefault("energy_ref", []).append((batch.energy / batch.n_atoms).detach())
    store.setdefault("energy_pred", []).append((prediction[keys.ENERGY] / batch.n_atoms).detach())
    mask = batch.has_forces
    store.setdefault("force", []).append((prediction[keys.FORCES] - batch.forces).detach()[mask])
    store.setdefault("force_ref", []).append(batch.forces[mask])
    store.setdefault("force_pred", []).append(prediction[keys.FORCES].detach()[mask])
    store.setdefault("force_numbers", []).append(batch.numbers[mask])
    if bool(batch.has_stress.any()):
        stress = stress_from_virial(prediction[keys.VIRIAL].detach(), batch.volume)
        store.setdefault("stress", []).append((stress - batch.stress)[batch.has_stress])


def summarize(store: Dict[str, List[torch.Tensor]], elements: Sequence[int]) -> Dict[str, float]:
    """RMSE/MAE: energy in meV/atom, forces in eV/Å (all components), stress in meV/Å^3."""
    out: Dict[str, float] = {}
    energy = torch.cat(store["energy"])
    out["energy_rmse_mev_atom"] = 1000.0 * float(energy.pow(2).mean().sqrt())
    out["energy_mae_mev_atom"] = 1000.0 * float(energy.abs().mean())
    force = torch.cat(store["force"])
    if force.numel() > 0:
        out["force_rmse"] = float(force.pow(2).mean().sqrt())
        out["force_mae"] = float(force.abs().mean())
        numbers = torch.cat(store["force_numbers"])
        for z in elements:
            rows = force[numbers == z]
            if rows.numel() > 0:
                out[f"force_rmse_{symbol(z)}"] = float(rows.pow(2).mean().sqrt())
    if store.get("stress"):
        stress = torch.cat(store["stress"])
        out["stress_rmse_mev_a3"] = 1000.0 * float(stress.pow(2).mean().sqrt())
    return out
