"""Fit a BPNN to labelled structures: data split, reference energies, scaling, the
loss, the optimiser loop, metrics, checkpoints and resume.

Loss (per batch of whole structures):
    L = w_E mean_s ((E_s - E_s^ref) / n_s)^2            eV^2 per atom^2
      + w_F mean over force components (F - F^ref)^2     (eV/Å)^2
      + w_S mean over stress components (σ - σ^ref)^2    (eV/Å^3)^2, where labelled
Reference energies per element come from a least-squares fit of E_s to the
composition (unless the model config gives `atomic_energies`), so the nets fit
what is left. Epoch e shuffles with a generator seeded by (seed, e): a resumed
run sees exactly the batches an uninterrupted one would.
"""

import copy
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from ase import Atoms

from .. import keys
from ..config import DTYPES, parse_model_config
from ..elements import symbol
from ..export import export
from ..format1 import is_format1_state, state_dict_from_format1
from ..io.datasets import check_structures, read_many
from ..model.engine import BPNNModel
from ..model.spec import ModelSpec
from ..model_parts import AnyModel
from ..scaling import fit_scaling
from .batch import Batch, concatenate, make_batches, predict, stress_from_virial
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .metrics import accumulate, summarize
from .output import check_output, clear_outputs, write_metrics_csv

METRIC_COLUMNS = ("energy_rmse_mev_atom", "energy_mae_mev_atom", "force_rmse", "force_mae")


def split_structures(structures: Sequence[Atoms], validation: float, test: float,
                     seed: int) -> Tuple[List[int], List[int], List[int]]:
    """Seeded random split of indices into train / validation / test (at least one train)."""
    order = np.random.default_rng(seed).permutation(len(structures)).tolist()
    n_val = int(round(validation * len(order)))
    n_test = int(round(test * len(order)))
    if len(order) - n_val - n_test < 1:
        raise ValueError(f"{len(order)} structures are too few for the split "
                         f"(validation {validation}, test {test})")
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


def radial_grid_start(structures: Sequence[Atoms], cutoff: float) -> float:
    """Half the shortest interatomic distance in `structures` (Å, rounded down to 0.05; 0.5
    if no pair is within the cutoff): where automatic radial grids start (wide enough
    Gaussians for the closest pairs; 0.95 of the closest distance gave 3x larger test
    errors on the demo)."""
    from ase.neighborlist import neighbor_list as ase_neighbor_list
    shortest = cutoff
    for atoms in structures:
        distances = ase_neighbor_list("d", atoms, cutoff)
        if len(distances):
            shortest = min(shortest, float(distances.min()))
    return max(0.0, math.floor(0.5 * shortest / 0.05) * 0.05) if shortest < cutoff else 0.5


def fit_atomic_energies(structures: Sequence[Atoms], elements: Sequence[int]) -> Dict[int, float]:
    """eV per atom of each element, least squares of E_s over compositions (minimum-norm
    where compositions do not determine every element)."""
    counts = np.array([[int((atoms.numbers == z).sum()) for z in elements] for atoms in structures], dtype=float)
    energies = np.array([atoms.calc.results["energy"] for atoms in structures], dtype=float)
    solution = np.linalg.lstsq(counts, energies, rcond=None)[0]
    return {int(z): float(e) for z, e in zip(elements, solution)}


class Trainer:
    """Runs one training config; `run()` returns the metrics of every split
    (`train_*`, `validation_*`, `test_*`). Files in `config.output`:
    checkpoint.ckpt (latest), best.ckpt (best validation loss), metrics.csv,
    model.pt (exported best model), parity and learning-curve PNGs.

    A folder that already holds a run (checkpoint.ckpt, best.ckpt or model.pt) is refused
    unless `resume` (continue from its checkpoint.ckpt) or `overwrite` (remove the earlier
    run's files when `run()` starts). Without validation structures, early stopping, the
    schedule and the best model use the training-set loss (evaluated after each epoch),
    metrics.csv has it as `train_set_*` and leaves the `val_*` columns empty."""

    def __init__(self, config: TrainConfig, resume: bool = False,
                 on_epoch_end: Optional[Callable[[int, Dict[str, float]], None]] = None,
                 log: Callable[[str], None] = print, overwrite: bool = False):
        self.config = config
        self.options = config.training
        self.output = Path(config.output)
        check_output(self.output, resume, overwrite)
        self._clear_before_run = overwrite
        self.on_epoch_end = on_epoch_end
        self.log = log
        self.device = torch.device(self.options.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("`training.device` is cuda but CUDA is not available here")
        self._load_data()
        checkpoint = self._resume_state() if resume else None
        self.model = self._build_model(checkpoint)
        self._make_optimizer(checkpoint)
        cached = self.options.cache_descriptors
        started = time.perf_counter()
        self.batches = {name: make_batches(self.model, data, cached) for name, data in self.splits.items()}
        if cached:
            self.log(f"cached descriptors of {sum(len(b) for b in self.batches.values())} structures "
                     f"in {time.perf_counter() - started:.1f} s")

    # ---- setup ----
    def _load_data(self) -> None:
        d, loss = self.config.data, self.config.loss
        elements = self.config.model.elements
        read = lambda files: read_many(files, d.format, d.length_unit, d.energy_unit) if files else []  # noqa: E731
        train = read(d.train)
        validation, test = read(d.validation), read(d.test)
        if not validation and not test:
            train_idx, val_idx, test_idx = split_structures(train, d.validation_fraction, d.test_fraction,
                                                            self.options.seed)
            train, validation, test = ([train[i] for i in idx] for idx in (train_idx, val_idx, test_idx))
        elif not validation:
            train_idx, val_idx, _ = split_structures(train, d.validation_fraction, 0.0, self.options.seed)
            train, validation = [train[i] for i in train_idx], [train[i] for i in val_idx]
        for name, data in (("training", train), ("validation", validation), ("test", test)):
            check_structures(data, elements, need_forces=loss.forces > 0, source=f"{name} data")
        present = {int(z) for atoms in train for z in atoms.numbers}
        missing = [symbol(z) for z in elements if z not in present]
        if missing:
            raise ValueError(f"the training data has no atoms of {missing}: cannot fit their networks")
        self.splits: Dict[str, List[Atoms]] = {"train": train, "validation": validation, "test": test}
        self.log(f"data: {len(train)} training, {len(validation)} validation, {len(test)} test structures "
                 f"({sum(len(a) for a in train)} training atoms)")
        if not validation:
            self.log("no validation structures: early stopping, the learning-rate schedule and the best model "
                     "(best.ckpt, model.pt) use the training-set loss; metrics.csv leaves the val_* columns empty "
                     "(give `data.validation` files or a `data.split.validation` fraction for a validation set)")

    def _build_model(self, checkpoint: Optional[Dict[str, Any]]) -> BPNNModel:
        dtype = DTYPES[self.config.model.dtype]
        if checkpoint is not None:
            model = ModelSpec.from_json(checkpoint["model_spec"]).build().to(dtype)
            model.load_state_dict(checkpoint_weights(checkpoint["model_state"]))
            return model.to(self.device).train()
        model_config = self.config.model
        raw_model = self.config.raw.get("model", {})
        auto = raw_model.get("symmetry_functions", "auto")
        if auto == "auto" or (isinstance(auto, dict) and "r_lower" not in auto.get("auto", {})):
            options = dict(auto["auto"]) if isinstance(auto, dict) else {}
            options["r_lower"] = radial_grid_start(self.splits["train"], model_config.cutoff)
            model_config = parse_model_config(dict(raw_model, symmetry_functions={"auto": options}))
            self.log(f"automatic symmetry functions: radial grid from r_lower = {options['r_lower']:.2f} Å "
                     f"(half the closest pair distance in the training data) to the cutoff {model_config.cutoff} Å")
        changes: Dict[str, Any] = {}
        if "scaling" not in raw_model:  # training default: standardised inputs
            changes.update(scaling="sigma", scale_min=0.0, scale_max=1.0)
        if not model_config.atomic_energies:
            changes["atomic_energies"] = fit_atomic_energies(self.splits["train"], model_config.elements)
        model = dataclasses.replace(model_config, **changes).build()
        torch.manual_seed(self.options.seed)
        fit_scaling(model, self.splits["train"])
        return model.to(self.device).train()

    def _make_optimizer(self, checkpoint: Optional[Dict[str, Any]]) -> None:
        o = self.options
        cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = cls(self.model.parameters(), lr=o.learning_rate, weight_decay=o.weight_decay)
        self.scheduler: Optional[Union[torch.optim.lr_scheduler.ReduceLROnPlateau, torch.optim.lr_scheduler.ExponentialLR]]
        if o.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=o.schedule_factor, patience=o.schedule_patience, min_lr=o.min_learning_rate)
        elif o.schedule == "exponential":
            self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=o.schedule_factor)
        else:
            self.scheduler = None
        self.epoch = 0
        self.best_loss = math.inf
        self.best_state = copy.deepcopy(self.model.state_dict())
        self.stale_epochs = 0
        self.history: List[Dict[str, float]] = []
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(checkpoint["scheduler"])
            self.epoch = checkpoint["epoch"]
            self.best_loss = checkpoint["best_loss"]
            self.best_state = checkpoint_weights(checkpoint["best_state"])
            self.stale_epochs = checkpoint["stale_epochs"]
            self.history = checkpoint["history"]

    def _resume_state(self) -> Dict[str, Any]:
        path = self.output / "checkpoint.ckpt"
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        state = load_checkpoint(path)
        self.log(f"resuming from {path} after epoch {state['epoch']}")
        return state

    # ---- one epoch ----
    def loss(self, batch: Batch, prediction: Dict[str, torch.Tensor]) -> torch.Tensor:
        w = self.config.loss
        total = w.energy * (((prediction[keys.ENERGY] - batch.energy) / batch.n_atoms) ** 2).mean()
        if w.forces > 0 and bool(batch.has_forces.any()):
            total = total + w.forces * ((prediction[keys.FORCES] - batch.forces)[batch.has_forces] ** 2).mean()
        if w.stress > 0 and bool(batch.has_stress.any()):
            stress = stress_from_virial(prediction[keys.VIRIAL], batch.volume)
            total = total + w.stress * ((stress - batch.stress)[batch.has_stress] ** 2).mean()
        return total

    def _train_epoch(self) -> float:
        self.model.train()
        data = self.batches["train"]
        generator = torch.Generator().manual_seed(self.options.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(data), generator=generator).tolist()
        size = self.options.batch_size
        losses = []
        for first in range(0, len(order), size):
            batch = concatenate([data[i] for i in order[first:first + size]])
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(batch, predict(self.model, batch, create_graph=True))
            loss.backward()
            if self.options.clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_grad_norm)
            self.optimizer.step()
            losses.append(loss.item())
            if self.options.progress and sys.stderr.isatty():
                done = min(first + size, len(order))
                sys.stderr.write(f"\r  epoch {self.epoch + 1}: [{'#' * (20 * done // len(order)):20s}] "
                                 f"{done}/{len(order)} loss {loss:.3e}")
                sys.stderr.flush()
        if self.options.progress and sys.stderr.isatty():
            sys.stderr.write("\r" + " " * 70 + "\r")
        return float(np.mean(losses))

    def evaluate(self, name: str, model: Optional[AnyModel] = None) -> Dict[str, float]:
        """Loss and metrics of one split ('train', 'validation', 'test')."""
        model = model or self.model
        data = self.batches[name]
        if not data:
            return {}
        store: Dict[str, List[torch.Tensor]] = {}
        losses = []
        model.eval()
        for first in range(0, len(data), 16):
            batch = concatenate(data[first:first + 16])
            prediction = predict(model, batch, create_graph=False)
            losses.append(self.loss(batch, prediction).item() * batch.n_structures)
            accumulate(batch, prediction, store)
        model.train()
        metrics = summarize(store, self.config.model.elements)
        metrics["loss"] = sum(losses) / len(data)
        self._last_store = store
        return metrics

    # ---- the loop ----
    def _state(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "model_spec": self.model.model_spec(),
                "model_state": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "best_loss": self.best_loss, "best_state": copy.deepcopy(self.best_state),
                "stale_epochs": self.stale_epochs, "history": list(self.history),
                "config": self.config.raw}

    @property
    def has_validation(self) -> bool:
        return bool(self.batches["validation"])

    def _monitor(self) -> Tuple[Dict[str, float], Dict[str, float]]:
        """The metrics early stopping, the schedule and the best model follow (validation set,
        else training set) and the same under their metrics.csv names (`val_*`, `train_set_*`)."""
        if self.has_validation:
            metrics = self.evaluate("validation")
            return metrics, {f"val_{k}": v for k, v in metrics.items()}
        metrics = self.evaluate("train")
        return metrics, {f"train_set_{k}": v for k, v in metrics.items()}

    def _log_epoch(self, train_loss: float, metrics: Dict[str, float], learning_rate: float) -> None:
        monitored = f"val loss {metrics['loss']:.3e}" if self.has_validation else \
            f"training set: loss {metrics['loss']:.3e}"
        self.log(f"epoch {self.epoch:4d}  loss {train_loss:.3e}  {monitored}  "
                 f"E {metrics['energy_rmse_mev_atom']:.2f} meV/atom  "
                 f"F {metrics.get('force_rmse', float('nan')):.4f} eV/Å  lr {learning_rate:.1e}")

    def _start_output(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        if self._clear_before_run:
            removed = clear_outputs(self.output)
            if removed:
                self.log(f"overwrite: removed {', '.join(p.name for p in removed)} of the earlier run in {self.output}")
            self._clear_before_run = False

    def run(self) -> Dict[str, float]:
        o = self.options
        self._start_output()
        snapshot = self._state()
        stopped_early = False
        try:
            while self.epoch < o.epochs:
                started = time.perf_counter()
                train_loss = self._train_epoch()
                self.epoch += 1
                metrics, columns = self._monitor()
                monitored = metrics["loss"]
                if self.scheduler is not None:
                    if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        self.scheduler.step(monitored)
                    else:
                        self.scheduler.step()
                        for group in self.optimizer.param_groups:
                            group["lr"] = max(group["lr"], o.min_learning_rate)
                if monitored < self.best_loss:
                    self.best_loss, self.stale_epochs = monitored, 0
                    self.best_state = copy.deepcopy(self.model.state_dict())
                else:
                    self.stale_epochs += 1
                row = {"epoch": self.epoch, "train_loss": train_loss,
                       "learning_rate": self.optimizer.param_groups[0]["lr"],
                       "seconds": time.perf_counter() - started}
                row.update(columns)
                self.history.append(row)
                self._write_csv()
                if self.epoch % max(1, o.epochs // 30) == 0 or self.epoch in (1, o.epochs):
                    self._log_epoch(train_loss, metrics, row["learning_rate"])
                snapshot = self._state()
                if self.epoch % o.checkpoint_every == 0 or self.epoch == o.epochs:
                    save_checkpoint(snapshot, self.output / "checkpoint.ckpt")
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self.epoch, row)
                if o.early_stopping > 0 and self.stale_epochs >= o.early_stopping:
                    what = "validation" if self.has_validation else "training-set"
                    self.log(f"early stopping: no {what} loss improvement for {o.early_stopping} epochs")
                    stopped_early = True
                    break
        except KeyboardInterrupt:
            path = save_checkpoint(snapshot, self.output / "checkpoint.ckpt")
            self.log(f"interrupted: state after epoch {snapshot['epoch']} saved to {path}; "
                     "continue with --resume")
            raise
        save_checkpoint(snapshot, self.output / "checkpoint.ckpt")
        return self._finish(stopped_early)

    def _finish(self, stopped_early: bool) -> Dict[str, float]:
        self.model.load_state_dict(self.best_state)
        save_checkpoint(dict(self._state(), finished=True), self.output / "best.ckpt")
        model = copy.deepcopy(self.model).cpu().eval()
        best_key = "best_validation_loss" if self.has_validation else "best_training_set_loss"
        export(model, self.output / "model.pt", description="trained by bpnn-ts train",
               provenance={"epochs": self.epoch, best_key: self.best_loss,
                           "training_structures": len(self.splits["train"])})
        results: Dict[str, float] = {}
        for name in ("train", "validation", "test"):
            metrics = self.evaluate(name)
            if metrics:
                results.update({f"{name}_{k}": v for k, v in metrics.items()})
                self._plot_parity(name)
        self._plot_learning_curve()
        return results

    def _write_csv(self) -> None:
        """metrics.csv; without validation structures, empty `val_*` columns beside `train_set_*`."""
        prefix = "train_set_"
        empty = [] if self.has_validation else \
            ["val_" + k[len(prefix):] for k in self.history[-1] if k.startswith(prefix)]
        write_metrics_csv(self.history, self.output, empty)

    def _plot_parity(self, name: str) -> None:
        from .plots import parity_plot
        parity_plot(self._last_store, self.output / f"parity_{name}.png", name)

    def _plot_learning_curve(self) -> None:
        from .plots import learning_curve
        learning_curve(self.history, self.output / "learning_curve.png")


def checkpoint_weights(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A checkpoint's state dict with current names (checkpoints of bpnn_ts 0.1: format 1)."""
    return state_dict_from_format1(state) if is_format1_state(state) else state


def model_from_checkpoint(path) -> BPNNModel:
    """The best model of a checkpoint (eval mode, float64 or the trained dtype)."""
    state = load_checkpoint(path)
    model = ModelSpec.from_json(state["model_spec"]).build()
    weights = checkpoint_weights(state.get("best_state") or state["model_state"])
    model = model.to(weights["potential.atomic_energy_shift"].dtype)
    model.load_state_dict(weights)
    return model.eval()
