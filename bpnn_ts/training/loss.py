"""The training loss as sums and counts, so that parts of a batch (on several processes) add up
to the loss of the whole batch:

    L = w_E sum_s ((E_s - E_s^ref) / n_s / u_E)^2 / S          (S structures)
      + w_F sum over force components ((F - F^ref) / u_F)^2 / C (C labelled components)
      + w_S sum over stress components ((σ - σ^ref) / u_S)^2 / V (V labelled components)

u_E, u_F, u_S: units (1 for adam: eV per atom, eV/Å, eV/Å^3; the training data's spreads for
the Kalman filter's monitored loss).
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from .. import keys
from .batch import Batch, stress_from_virial
from .config import LossWeights


@dataclass(frozen=True)
class Loss:
    weights: LossWeights
    energy_unit: float = 1.0
    force_unit: float = 1.0
    stress_unit: float = 1.0

    def terms(self, batch: Batch, prediction: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sums of squared errors (3,) [energy, forces, stress] in the units, and their counts (3,)."""
        energy = prediction[keys.ENERGY]
        zero = energy.sum() * 0.0
        sums = [(((energy - batch.energy) / batch.n_atoms / self.energy_unit) ** 2).sum(), zero, zero]
        counts = [float(batch.n_structures), 0.0, 0.0]
        if self.weights.forces > 0 and bool(batch.has_forces.any()):
            error = (prediction[keys.FORCES] - batch.forces)[batch.has_forces] / self.force_unit
            sums[1], counts[1] = (error ** 2).sum(), float(error.numel())
        if self.weights.stress > 0 and bool(batch.has_stress.any()):
            error = (stress_from_virial(prediction[keys.VIRIAL], batch.volume) - batch.stress)[batch.has_stress] \
                / self.stress_unit
            sums[2], counts[2] = (error ** 2).sum(), float(error.numel())
        return torch.stack(sums), torch.tensor(counts, dtype=energy.dtype, device=energy.device)

    def combine(self, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The loss from (summed) terms: weighted mean squared errors (terms without labels drop out)."""
        w = torch.tensor([self.weights.energy, self.weights.forces, self.weights.stress], dtype=sums.dtype,
                         device=sums.device)
        return (w * sums / counts.clamp(min=1.0)).sum()

    def __call__(self, batch: Batch, prediction: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.combine(*self.terms(batch, prediction))
