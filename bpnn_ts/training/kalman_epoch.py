"""One epoch of Kalman-filter training, n2p2's update plan: energy and force updates in a
shuffled order, each from one training structure.

- Energy update: the observation is the structure's total energy in units of sigma_E (the
  spread of the training energies per atom), error E_ref - E, Jacobian dE/dw; both times the
  `loss.energy` weight.
  Where `loss.stress` > 0, it also observes the structure's 6 stress components (units of
  sigma_S, the spread of the training stresses; weight loss.stress).
- Force update: the structure's forces; `force_components` components drawn at random, those
  whose error is at least `force_threshold` x the running force RMSE first (n2p2's selection
  by threshold), in units of sigma_F (the spread of the training force components); error and
  Jacobian times the `loss.forces` weight (n2p2's force_weight).
An update observes `structures_per_update` structures at once (their observations stacked).
Per epoch: round(energy_fraction x structures / structures_per_update) energy updates and
max(1, int(force_fraction x force components / (force_components x structures_per_update)))
force updates. The order of updates and every draw come from a generator seeded by (seed, epoch),
the same on every process, so a resumed run repeats an uninterrupted one exactly, and processes
(distributed.ProcessGroup) each observe the structures they own and gather the observations:
every rank makes the same update as one process would.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from ase import Atoms

from .. import keys
from ..model.engine import BPNNModel
from .batch import Batch, predict, stress_from_virial
from .distributed import ProcessGroup
from .kalman import KalmanFilter, KalmanSettings, flat_jacobian, parameter_blocks


@dataclass(frozen=True)
class KalmanPlan:
    """How many updates of each kind an epoch has, and what an update observes."""

    energy_fraction: float = 1.0  # energy updates per epoch / training structures
    force_fraction: float = 0.02  # force components observed per epoch / training force components
    force_components: int = 4  # force components per force update (observations of one update)
    force_threshold: float = 1.0  # prefer components whose |error| >= this x running force RMSE
    structures_per_update: int = 1  # structures observed together in one update (one per process with DDP)
    energy_weight: float = 1.0  # loss.energy: multiplies energy errors and Jacobians
    force_weight: float = 10.0  # loss.forces: multiplies force errors and Jacobians
    stress_weight: float = 0.0  # loss.stress: energy updates also observe the structure's stress


def data_spreads(structures: Sequence[Atoms], atomic_energies: Dict[int, float]) -> Dict[str, float]:
    """n2p2's units: sigma_E, the standard deviation of (E - reference energies) / N over the
    structures (eV per atom), sigma_F, that of all force components (eV/Å), and sigma_S, that of
    the stress components (eV/Å^3); 1.0 where undefined or zero."""
    per_atom = np.array([(atoms.calc.results["energy"] - sum(atomic_energies.get(int(z), 0.0) for z in atoms.numbers))
                         / len(atoms) for atoms in structures], dtype=float)
    forces = [np.asarray(atoms.calc.results["forces"]).reshape(-1) for atoms in structures
              if "forces" in atoms.calc.results]
    components = np.concatenate(forces) if forces else np.zeros(0)
    stresses = [np.asarray(atoms.calc.results["stress"]).reshape(-1) for atoms in structures
                if "stress" in atoms.calc.results]
    stress = np.concatenate(stresses) if stresses else np.zeros(0)
    spreads = {"energy": float(per_atom.std(ddof=1)) if len(per_atom) > 1 else 0.0,
               "forces": float(components.std(ddof=1)) if len(components) > 1 else 0.0,
               "stress": float(stress.std(ddof=1)) if len(stress) > 1 else 0.0}
    return {k: v if v > 0 and math.isfinite(v) else 1.0 for k, v in spreads.items()}


class KalmanEpochs:
    """The filter over `model`'s weights and the update plan over the training structures;
    `batches[i]` is None where another process owns structure i; `force_components[i]` is the
    number of labelled force components of structure i."""

    def __init__(self, model: BPNNModel, batches: Sequence[Optional[Batch]], force_components: Sequence[int],
                 settings: KalmanSettings, plan: KalmanPlan, spreads: Dict[str, float], seed: int,
                 group: Optional[ProcessGroup] = None):
        self.model = model
        self.batches = batches
        self.plan = plan
        self.spreads = spreads
        self.seed = seed
        self.group = group or ProcessGroup(torch.device("cpu"))
        self.with_forces = [i for i, n in enumerate(force_components) if n > 0]
        per_update = plan.structures_per_update
        self.n_energy_updates = 0
        if plan.energy_weight > 0:
            self.n_energy_updates = max(1, int(round(plan.energy_fraction * len(self.batches) / per_update)))
        self.n_force_updates = 0
        if plan.force_weight > 0 and self.with_forces and plan.force_fraction > 0:
            self.n_force_updates = max(1, int(plan.force_fraction * sum(force_components) /
                                              (plan.force_components * per_update)))
        if self.n_energy_updates + self.n_force_updates == 0:
            raise ValueError("the Kalman plan has no updates: raise training.kalman.energy_fraction or "
                             "force_fraction (or give loss weights > 0)")
        blocks = parameter_blocks(list(model.named_parameters()), settings.blocks)
        self.filter = KalmanFilter(blocks, settings, self.n_energy_updates + self.n_force_updates)
        self.force_rmse = math.nan  # running, eV/Å: the threshold's reference

    def run(self, epoch: int) -> float:
        """One epoch of updates; returns the mean squared (weighted, normalized) error seen before each update."""
        rng = np.random.default_rng([self.seed, epoch])
        schedule = np.array([0] * self.n_energy_updates + [1] * self.n_force_updates)
        rng.shuffle(schedule)
        k = self.plan.structures_per_update
        queue: List[int] = []
        while len(queue) < self.n_energy_updates * k:
            queue.extend(rng.permutation(len(self.batches)).tolist())
        squares: List[float] = []
        seen = torch.zeros(2, dtype=torch.float64)  # force components examined: sum of squared errors, count
        for kind in schedule.tolist():
            if kind == 0:
                picks = queue[:k]
                del queue[:k]
                seeds = [0] * k
            else:
                picks = [self.with_forces[int(i)] for i in rng.integers(len(self.with_forces), size=k)]
                seeds = rng.integers(2 ** 62, size=k).tolist()
            local = []
            for position, (index, draw_seed) in enumerate(zip(picks, seeds)):
                if self.group.owns(index):
                    local.append((position,) + self._observe(kind, index, draw_seed, seen))
            error, jacobian = self._stack(self.group.gather(local) if self.group.parallel else [local])
            squares.extend(error.square().tolist())
            self.filter.update(error, jacobian)
        seen = self.group.sum_(seen)
        if seen[1] > 0:
            self.force_rmse = math.sqrt(float(seen[0] / seen[1]))
        return float(np.mean(squares)) if squares else math.nan

    def _stack(self, parts: List[List[Tuple[int, torch.Tensor, torch.Tensor]]]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Observations of all ranks in the update's order: errors (m,), Jacobian (m, n)."""
        rows = sorted((row for part in parts for row in part), key=lambda row: row[0])
        device = self.filter.covariances[0].device
        return (torch.cat([r[1] for r in rows]).to(device), torch.cat([r[2] for r in rows]).to(device))

    def _observe(self, kind: int, index: int, draw_seed: int, seen: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        batch = self.batches[index]
        assert batch is not None, f"structure {index} is not this process's"
        if kind == 0:
            error, jacobian = self._energy_observation(batch)
        else:
            error, jacobian, all_errors = self._force_observation(batch, np.random.default_rng(draw_seed))
            seen += torch.tensor([float(all_errors.square().sum()), float(all_errors.numel())], dtype=torch.float64)
        if self.group.parallel:  # gathered by pickling: CPU copies
            return error.detach().cpu(), jacobian.cpu()
        return error.detach(), jacobian

    def _energy_observation(self, batch: Batch) -> Tuple[torch.Tensor, torch.Tensor]:
        with_stress = self.plan.stress_weight > 0 and bool(batch.has_stress[0])
        if batch.descriptors is not None and batch.jacobian is not None and not with_stress:
            total = self.model.energies_from_descriptors(batch.descriptors, batch.species, True)[0].sum()
        else:
            prediction = predict(self.model, batch, create_graph=True)
            total = prediction[keys.ENERGY][0]
        scale = self.plan.energy_weight / self.spreads["energy"]
        observed = (total * scale).reshape(1)
        error = ((batch.energy[0] - total.detach()) * scale).reshape(1)
        if with_stress:
            stress = stress_from_virial(prediction[keys.VIRIAL], batch.volume)[0]
            stress_scale = self.plan.stress_weight / self.spreads["stress"]
            observed = torch.cat([observed, stress * stress_scale])
            error = torch.cat([error, (batch.stress[0] - stress.detach()) * stress_scale])
        return error, flat_jacobian(observed, self.filter.parameters)

    def _force_observation(self, batch: Batch, rng: np.random.Generator
                           ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        forces = predict(self.model, batch, create_graph=True)[keys.FORCES][batch.has_forces].reshape(-1)
        errors = batch.forces[batch.has_forces].reshape(-1) - forces.detach()
        rmse = self.force_rmse if math.isfinite(self.force_rmse) else float(errors.square().mean().sqrt())
        order = torch.from_numpy(rng.permutation(errors.shape[0])).to(errors.device)
        large = errors[order].abs() >= self.plan.force_threshold * rmse
        chosen = torch.cat([order[large], order[~large]])[:self.plan.force_components]
        scale = self.plan.force_weight / self.spreads["forces"]
        return errors[chosen] * scale, flat_jacobian(forces[chosen] * scale, self.filter.parameters), errors

    def after_epoch(self, monitored: float) -> None:
        """(The filter's schedules follow the number of updates, not the monitored loss.)"""

    def step_sizes(self) -> Dict[str, float]:
        return {"kalman_q": self.filter.process_noise, "kalman_eta": self.filter.eta}

    def state_dict(self) -> Dict[str, Any]:
        return {"kalman": {"filter": self.filter.state_dict(), "force_rmse": self.force_rmse,
                           "spreads": dict(self.spreads)}}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        kalman = state["kalman"]
        self.filter.load_state_dict(kalman["filter"])
        self.force_rmse = float(kalman["force_rmse"])
        self.spreads = dict(kalman["spreads"])
