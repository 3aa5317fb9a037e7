"""Error metrics of predictions against labels (energies per atom, forces, per element, stress),
and of a model on labelled structures (`bpnn-ts eval`: `evaluate_model_file`)."""

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from ase import Atoms

from .. import keys
from ..elements import symbol
from ..export import load
from ..io.datasets import check_structures, read_many
from ..many_structures import DEFAULT_BATCH_ATOMS, evaluate_many
from ..precision import input_dtype
from .batch import Batch, labelled_batch, stress_from_virial


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


def described(key: str, value: float) -> str:
    """A metric of `summarize` as text with its unit: "force RMSE (Ge)  0.1234 eV/Å"."""
    for prefix, name, unit in (("energy_rmse", "energy RMSE", "meV/atom"), ("energy_mae", "energy MAE", "meV/atom"),
                               ("force_rmse", "force RMSE", "eV/Å"), ("force_mae", "force MAE", "eV/Å"),
                               ("stress_rmse", "stress RMSE", "meV/Å³")):
        if key.startswith(prefix):
            element = key[len(prefix) + 1:] if prefix.startswith("force") else ""
            label = f"{name} ({element})" if element else name
            return f"{label:20s} {value:10.4f} {unit}"
    return f"{key:20s} {value:10.6g}"


def evaluate_structures(model: Any, structures: Sequence[Atoms],
                        batch_atoms: int = DEFAULT_BATCH_ATOMS) -> Dict[str, float]:
    """Energy (meV/atom), force (eV/Å) and stress errors of `model` (a module or a loaded
    model file) over labelled structures, evaluated in forward_batch calls of at most
    `batch_atoms` atoms (0, or a model without forward_batch: one call per structure)."""
    elements = [int(z) for z in model.atomic_numbers()]
    check_structures(structures, elements, need_forces=False,
                     unknown="the model has no networks for them and cannot evaluate them")
    dtype = input_dtype(model)  # mixed-precision models take float64 positions
    store: Dict[str, List[torch.Tensor]] = {}
    for atoms, out in zip(structures, evaluate_many(model, structures, batch_atoms, compute_virial=True)):
        batch = labelled_batch(atoms, dtype, torch.device("cpu"))
        prediction = {keys.ENERGY: out[keys.ENERGY].reshape(1), keys.FORCES: out[keys.FORCES],
                      keys.VIRIAL: out[keys.VIRIAL].reshape(1, 3, 3)}
        accumulate(batch, prediction, store)
    metrics = summarize(store, elements)
    metrics["structures"] = len(structures)
    metrics["atoms"] = sum(len(a) for a in structures)
    return metrics


def evaluate_model_file(path, data: Union[str, Sequence[str]], format: Optional[str] = None,
                        length_unit: str = "angstrom", energy_unit: str = "eV",
                        batch_atoms: int = DEFAULT_BATCH_ATOMS, verify: bool = True) -> Dict[str, float]:
    """`bpnn-ts eval`: load a model file (`verify`: check its parameter hash) and evaluate it on
    data files (`batch_atoms`: as evaluate_structures)."""
    model = load(path, verify=verify)
    return evaluate_structures(model, read_many(data, format, length_unit, energy_unit), batch_atoms)
