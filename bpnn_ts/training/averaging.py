"""The mean of a model's weights over the last epochs of a run (Polyak averaging; stochastic
weight averaging, Izmailov et al., UAI 2018): what training keeps by default.

The Kalman filter's (and Adam's) weights keep moving from update to update around a minimum;
single epochs differ by +-30 % in energy error on the mlearn sets, and the epoch with the lowest
monitored loss is as much luck as skill. The mean over the second half of the epochs sits nearer
the middle: on mlearn's Ge (30 epochs, 3 seeds) it lowered the test energy and force errors
below the published n2p2 fit's where the best single epoch stayed above (docs/training.md).
"""

from typing import Any, Dict, Optional

import torch

# The mean is kept unless its monitored loss is more than this many times the best single
# epoch's. Weights that wandered between minima can average to a model in none of them: on
# mlearn's Ge (seed 1) the mean of epochs 16-30 gave a test energy RMSE of 39.7 meV/atom where
# every one of those epochs gave 3.9-8.6 (docs/training.md).
MEAN_TOLERANCE = 2.0


def keeps_mean(mean_loss: float, best_loss: float) -> bool:
    """Whether training keeps the mean of the weights (monitored loss `mean_loss`) rather than
    the best single epoch's weights (`best_loss`)."""
    return mean_loss <= MEAN_TOLERANCE * best_loss


class WeightAverage:
    """Running mean of the parameters after each epoch later than `start` (1-based epochs;
    buffers such as the input scaling do not change in training and are taken as they are)."""

    def __init__(self, start: int):
        self.start = start
        self.count = 0
        self.mean: Optional[Dict[str, torch.Tensor]] = None

    def add(self, epoch: int, model: torch.nn.Module) -> None:
        """Fold the weights after `epoch` into the mean (epochs up to `start` are left out)."""
        if epoch <= self.start:
            return
        weights = {name: p.detach().clone() for name, p in model.named_parameters()}
        if self.mean is None:
            self.mean = weights
        else:
            for name, value in weights.items():
                self.mean[name] += (value - self.mean[name]) / (self.count + 1)
        self.count += 1

    def applied_to(self, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """`state` (a model state dict) with its parameters replaced by the mean."""
        if self.mean is None:
            raise ValueError("no epoch has been averaged yet")
        return {**state, **{name: value.clone() for name, value in self.mean.items()}}

    def epochs(self) -> str:
        """The averaged epochs, as text: "16-30"."""
        return f"{self.start + 1}-{self.start + self.count}"

    def state_dict(self) -> Dict[str, Any]:
        return {"start": self.start, "count": self.count, "mean": self.mean}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.start, self.count, self.mean = int(state["start"]), int(state["count"]), state["mean"]
