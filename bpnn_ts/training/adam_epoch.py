"""One epoch of gradient training (Adam or AdamW) with its learning-rate schedule.

Epoch e shuffles the training structures with a generator seeded by (seed, e), the same on every
process; each global batch of `batch_size` structures is split by ownership
(distributed.ProcessGroup), every rank backpropagates its part of the batch loss (sums over
its structures divided by the whole batch's counts), and the gradients are summed over ranks
before the step: one step per global batch, as in a single process.
"""

import sys
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..model.engine import BPNNModel
from .batch import Batch, concatenate, predict
from .config import TrainingOptions
from .distributed import ProcessGroup
from .loss import Loss

Scheduler = Union[torch.optim.lr_scheduler.ReduceLROnPlateau, torch.optim.lr_scheduler.ExponentialLR]


class AdamEpochs:
    """The optimiser and schedule over `model`'s weights; `batches[i]` is None where another rank
    owns structure i."""

    def __init__(self, model: BPNNModel, batches: Sequence[Optional[Batch]], options: TrainingOptions, loss: Loss,
                 group: ProcessGroup):
        self.model = model
        self.batches = batches
        self.options = options
        self.loss = loss
        self.group = group
        cls = torch.optim.AdamW if options.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = cls(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
        self.scheduler: Optional[Scheduler] = None
        if options.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=options.schedule_factor, patience=options.schedule_patience,
                min_lr=options.min_learning_rate)
        elif options.schedule == "exponential":
            self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=options.schedule_factor)

    def run(self, epoch: int) -> float:
        """One pass over the training structures; returns the mean batch loss."""
        o = self.options
        generator = torch.Generator().manual_seed(o.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.batches), generator=generator).tolist()
        parameters = list(self.model.parameters())
        losses: List[float] = []
        for first in range(0, len(order), o.batch_size):
            mine = [self.batches[i] for i in order[first:first + o.batch_size] if self.group.owns(i)]
            self.optimizer.zero_grad(set_to_none=True)
            sums, counts = self._terms(mine, parameters[0])
            counts = self.group.sum_(counts.detach().clone())
            loss = self.loss.combine(sums, counts)
            loss.backward()
            self.group.sum_gradients(parameters)
            if o.clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(parameters, o.clip_grad_norm)
            self.optimizer.step()
            losses.append(float(self.group.sum_(loss.detach().clone())))
            self._progress(epoch, min(first + o.batch_size, len(order)), len(order), losses[-1])
        if o.progress and sys.stderr.isatty() and self.group.is_main:
            sys.stderr.write("\r" + " " * 70 + "\r")
        return float(np.mean(losses))

    def _terms(self, mine: List[Optional[Batch]], like: torch.Tensor):
        if not mine:  # this rank owns none of the batch: it adds nothing (but joins the sums)
            zeros = torch.zeros(3, dtype=like.dtype, device=like.device)
            return zeros + 0.0 * sum(p.sum() for p in self.model.parameters()), zeros.clone()
        batch = concatenate([b for b in mine if b is not None])
        return self.loss.terms(batch, predict(self.model, batch, create_graph=True))

    def _progress(self, epoch: int, done: int, total: int, loss: float) -> None:
        if self.options.progress and sys.stderr.isatty() and self.group.is_main:
            sys.stderr.write(f"\r  epoch {epoch + 1}: [{'#' * (20 * done // total):20s}] {done}/{total} loss {loss:.3e}")
            sys.stderr.flush()

    def after_epoch(self, monitored: float) -> None:
        """Advance the learning-rate schedule with the monitored (validation) loss."""
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"], self.options.min_learning_rate)

    def step_sizes(self) -> Dict[str, float]:
        return {"learning_rate": self.optimizer.param_groups[0]["lr"]}

    def state_dict(self) -> Dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
