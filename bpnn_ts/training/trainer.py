"""Fit a BPNN to labelled structures: the data and its split, the model (reference energies,
input scaling), the optimiser (Kalman filter: kalman_epoch.py; Adam: adam_epoch.py), the epoch
loop with early stopping and the best model, metrics, checkpoints and resume.

Reference energies per element come from a least-squares fit of E_s to the composition (unless
the model config gives `atomic_energies`), so the nets fit what is left. Every epoch's draws come
from generators seeded by (seed, epoch): a resumed run repeats an uninterrupted one exactly.
Under `torchrun` the processes share the work (distributed.py) and rank 0 writes the files.
"""

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from ase import Atoms

from ..config import DTYPES, parse_model_config
from ..elements import symbol
from ..export import export
from ..function_pool import closest_pair_start
from ..function_selection import resolve_symmetry_functions
from ..input_scaling import fit_scaling, scaling_report
from ..io.datasets import check_structures, read_many
from ..io.streaming import StructureStore
from ..model.engine import BPNNModel
from ..model.spec import ModelSpec
from ..potential_sources import imported_scaling_statistics
from .adam_epoch import AdamEpochs
from .averaging import WeightAverage, keeps_mean
from .batch import Batch, StreamedBatches, concatenate, make_batches, predict
from .checkpoint import checkpoint_weights, load_checkpoint, load_weights, model_from_checkpoint, save_checkpoint
from .config import LossWeights, TrainConfig
from .distributed import ProcessGroup
from .kalman_epoch import KalmanEpochs, data_spreads
from .loss import Loss
from .metrics import accumulate, summarize
from .output import check_output, clear_outputs, write_metrics_csv
from .setup import fit_atomic_energies, split_structures, with_energy_scale
from .warm_start import source_model, warm_start


def _subset(structures: Sequence[Atoms], indices: List[int]) -> Sequence[Atoms]:
    """The structures at `indices` (a view of a StructureStore; a list otherwise)."""
    return structures.subset(indices) if isinstance(structures, StructureStore) else [structures[i] for i in indices]

__all__ = ["Trainer", "checkpoint_weights", "fit_atomic_energies", "model_from_checkpoint", "split_structures"]
METRIC_COLUMNS = ("energy_rmse_mev_atom", "energy_mae_mev_atom", "force_rmse", "force_mae")
Stepper = Union[KalmanEpochs, AdamEpochs]


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
        device = torch.device(self.options.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("`training.device` is cuda but CUDA is not available here")
        setup_started = time.perf_counter()
        self.group = ProcessGroup(device)
        self.device = self.group.device
        check_output(self.output, resume, overwrite)
        self._clear_before_run = overwrite and self.group.is_main
        self.on_epoch_end = on_epoch_end
        self.log = log if self.group.is_main else (lambda _line: None)
        if self.group.parallel:
            self.log(f"data parallel: {self.group.world_size} processes; rank 0 writes {self.output}")
        self._load_data()
        checkpoint = self._resume_state() if resume else None
        self.model = self._build_model(checkpoint)
        if not self.options.cache_descriptors and self.options.kernels:
            if self.model.use_native_kernels(True):
                self.log("uncached descriptors: computed in every step by the fused C++ kernels")
            else:
                self.log("uncached descriptors: the fused C++ kernels cannot be built here; the pure-torch path")
        started = time.perf_counter()
        self.batches = {name: self._make_batches(data) for name, data in self.splits.items()}
        if self.options.cache_descriptors:
            self.log(f"cached descriptors of {sum(len(b) for b in self.batches.values())} structures "
                     f"in {time.perf_counter() - started:.1f} s")
        self.stepper = self._make_stepper()
        self.monitor = self._monitor_loss()
        self._restore(checkpoint)
        self.log(f"setup (data, model, scaling, caches) took {time.perf_counter() - setup_started:.1f} s")

    # ---- setup ----
    def _load_data(self) -> None:
        d, loss = self.config.data, self.config.loss
        elements = self.config.model.elements
        train = self._read(d.train)
        validation, test = self._read(d.validation), self._read(d.test)
        if not validation and not test:
            train_idx, val_idx, test_idx = split_structures(train, d.validation_fraction, d.test_fraction,
                                                            self.options.seed)
            train, validation, test = (_subset(train, idx) for idx in (train_idx, val_idx, test_idx))
        elif not validation:
            train_idx, val_idx, _ = split_structures(train, d.validation_fraction, 0.0, self.options.seed)
            train, validation = _subset(train, train_idx), _subset(train, val_idx)
        for name, data in (("training", train), ("validation", validation), ("test", test)):
            check_structures(data, elements, need_forces=loss.forces > 0, source=f"{name} data")
        present = {int(z) for atoms in train for z in atoms.numbers}
        missing = [symbol(z) for z in elements if z not in present]
        if missing:
            raise ValueError(f"the training data has no atoms of {missing}: cannot fit their networks")
        self.splits: Dict[str, Sequence[Atoms]] = {"train": train, "validation": validation, "test": test}
        self.log(f"data: {len(train)} training, {len(validation)} validation, {len(test)} test structures "
                 f"({sum(len(a) for a in train)} training atoms)")
        if not validation:
            self.log("no validation structures: early stopping, the learning-rate schedule and the best model "
                     "(best.ckpt, model.pt) use the training-set loss; metrics.csv leaves the val_* columns empty "
                     "(give `data.validation` files or a `data.split.validation` fraction for a validation set)")

    def _build_model(self, checkpoint: Optional[Dict[str, Any]]) -> BPNNModel:
        dtype = DTYPES[self.config.model.dtype]
        self.spreads: Dict[str, float] = {}  # the Kalman filter's units (kalman_epoch.data_spreads)
        if checkpoint is not None:
            model = BPNNModel.from_spec(ModelSpec.from_json(checkpoint["model_spec"])).to(dtype)
            load_weights(model, checkpoint["model_state"])
            if checkpoint.get("kalman") is not None:
                self.spreads = dict(checkpoint["kalman"]["spreads"])
            return model.to(self.device).train()
        base = self.config.base
        source = self.config.raw.get("model", {}).get("symmetry_functions")
        imported_scaling = isinstance(source, dict) and "from" in source and bool(source.get("scaling"))
        raw_model = resolve_symmetry_functions(self.config.raw.get("model", {}), self.splits["train"], self.log, base)
        model_config = parse_model_config(raw_model, base)
        auto = raw_model.get("symmetry_functions", "auto")
        if auto == "auto" or (isinstance(auto, dict) and "r_lower" not in auto.get("auto", {})):
            options = dict(auto["auto"]) if isinstance(auto, dict) else {}
            options["r_lower"] = closest_pair_start(self.splits["train"], model_config.cutoff)
            model_config = parse_model_config(dict(raw_model, symmetry_functions={"auto": options}), base)
            self.log(f"automatic symmetry functions: radial grid from r_lower = {options['r_lower']:.2f} Å "
                     f"(half the closest pair distance in the training data) to the cutoff {model_config.cutoff} Å")
        changes: Dict[str, Any] = {}
        if "scaling" not in raw_model:  # training default: centred, divided by the range (docs/training.md)
            changes.update(scaling="scalecenter", scale_min=0.0, scale_max=1.0)
        if not model_config.atomic_energies:
            changes["atomic_energies"] = fit_atomic_energies(self.splits["train"], model_config.elements)
        model_config = dataclasses.replace(model_config, **changes)
        model = model_config.build()
        if self.options.optimizer == "kalman":  # the nets fit energies in units of the data's spread (n2p2)
            self.spreads = data_spreads(self.splits["train"], model_config.atomic_energies)
            spread = self.spreads["energy"]
            model = with_energy_scale(model, spread)
            self.log(f"Kalman filter: network outputs in units of the training energies' spread, "
                     f"{spread * 1000:.3f} meV/atom")
        torch.manual_seed(self.options.seed)
        if imported_scaling:
            model.set_scaling_statistics(imported_scaling_statistics(self.config.raw["model"], base))
            self.log("input scaling: the statistics of the potential the symmetry functions come from")
        else:
            started = time.perf_counter()
            fit_scaling(model, self.splits["train"])
            self.log(f"input scaling ({model_config.scaling}) fitted to the training data in "
                     f"{time.perf_counter() - started:.1f} s")
        for line in scaling_report(model):
            self.log(line)
        if self.options.initial_weights:
            warm_start(model, source_model(self.options.initial_weights))
            self.log(f"initial weights: the networks of {self.options.initial_weights}, re-expressed for this run's "
                     "input scaling and energies (a warm start)")
        return model.to(self.device).train()

    def _read(self, files: Sequence[str]) -> Sequence[Atoms]:
        """The structures of `files`: all read now, or (data.stream) a StructureStore that reads
        them on demand and keeps at most data.cache_size in memory."""
        d = self.config.data
        if not files:
            return []
        if d.stream:
            store = StructureStore(list(files), d.format, d.length_unit, d.energy_unit, cache_size=d.cache_size)
            self.log(f"streaming {len(store)} structures from {', '.join(str(p) for p in store.paths)} "
                     f"(at most {d.cache_size} in memory)")
            return store
        return read_many(list(files), d.format, d.length_unit, d.energy_unit)

    def _make_batches(self, structures: Sequence[Atoms]) -> Sequence[Optional[Batch]]:
        """Batches (with the descriptor cache if asked) of this process's structures; None for others'."""
        if self.config.data.stream:
            return StreamedBatches(self.model, structures, self.group.owns)
        mine = [i for i in range(len(structures)) if self.group.owns(i)]
        made = make_batches(self.model, [structures[i] for i in mine], self.options.cache_descriptors)
        batches: List[Optional[Batch]] = [None] * len(structures)
        for i, batch in zip(mine, made):
            batches[i] = batch
        return batches

    def _make_stepper(self) -> Stepper:
        o = self.options
        if o.optimizer != "kalman":
            return AdamEpochs(self.model, self.batches["train"], o, Loss(self.config.loss), self.group)
        train = self.splits["train"]
        spreads = self.spreads or data_spreads(train, {})  # (a resumed Adam checkpoint is refused in _restore)
        components = [3 * len(atoms) if "forces" in atoms.calc.results else 0 for atoms in train]
        kalman = KalmanEpochs(self.model, self.batches["train"], components, o.kalman, o.kalman_plan, spreads, o.seed,
                              self.group)
        self.log(f"Kalman filter ({o.kalman.kind}; covariance blocks of {kalman.filter.sizes} weights): "
                 f"{kalman.n_energy_updates} energy and {kalman.n_force_updates} force updates per epoch; "
                 f"units {spreads['energy'] * 1000:.3f} meV/atom and {spreads['forces']:.4f} eV/Å")
        return kalman

    def _monitor_loss(self) -> Loss:
        """The loss that early stopping, the schedule and the best model follow: adam's own; with
        the Kalman filter, the energy-per-atom, force and stress mean squared errors in units of the
        training data's spreads (weights loss.energy, 1 and 1: loss.forces and loss.stress weigh the
        filter's observations)."""
        w = self.config.loss
        if isinstance(self.stepper, KalmanEpochs):
            spreads = self.stepper.spreads
            return Loss(LossWeights(w.energy, float(w.forces > 0), float(w.stress > 0)), spreads["energy"],
                        spreads["forces"], spreads["stress"])
        return Loss(w)

    def _restore(self, checkpoint: Optional[Dict[str, Any]]) -> None:
        self.epoch = 0
        self.best_loss = float("inf")
        self.best_state = copy.deepcopy(self.model.state_dict())
        self.stale_epochs = 0
        self.history: List[Dict[str, float]] = []
        o = self.options
        self.average = WeightAverage(int(o.average_from * o.epochs) if o.average_from < 1 else o.epochs)
        if checkpoint is None:
            return
        if (checkpoint.get("kalman") is not None) != isinstance(self.stepper, KalmanEpochs):
            written = "kalman" if checkpoint.get("kalman") is not None else "adam"
            raise ValueError(f"--resume: the checkpoint was written by `training.optimizer: {written}`, the config "
                             f"asks for {self.options.optimizer}; resume with the optimizer it was trained with")
        self.stepper.load_state_dict(checkpoint)
        self.epoch = checkpoint["epoch"]
        self.best_loss = checkpoint["best_loss"]
        self.best_state = checkpoint_weights(checkpoint["best_state"])
        self.stale_epochs = checkpoint["stale_epochs"]
        self.history = checkpoint["history"]
        if checkpoint.get("average") is not None:
            self.average.load_state_dict(checkpoint["average"])

    def _resume_state(self) -> Dict[str, Any]:
        path = self.output / "checkpoint.ckpt"
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        state = load_checkpoint(path)
        self.log(f"resuming from {path} after epoch {state['epoch']}")
        return state

    # ---- epochs ----
    def evaluate(self, name: str, model: Optional[BPNNModel] = None) -> Dict[str, float]:
        """Monitored loss and metrics of one split ('train', 'validation', 'test'), over all processes."""
        model = model or self.model
        batches = self.batches[name]
        if len(batches) == 0:
            return {}
        store: Dict[str, List[torch.Tensor]] = {}
        dtype = next(iter(self.model.parameters())).dtype
        sums, counts = torch.zeros(3, dtype=dtype), torch.zeros(3, dtype=dtype)
        model.eval()
        for first in range(0, len(batches), 16):
            part = [b for b in batches[first:first + 16] if b is not None]
            if not part:
                continue
            batch = concatenate(part)
            prediction = predict(model, batch, create_graph=False)
            part_sums, part_counts = self.monitor.terms(batch, prediction)
            sums, counts = sums + part_sums.detach().cpu(), counts + part_counts.cpu()
            accumulate(batch, prediction, store)
        model.train()
        if self.group.parallel:
            parts = self.group.gather(({k: [t.cpu() for t in v] for k, v in store.items()}, sums, counts))
            store = {k: [t for part in parts for t in part[0].get(k, [])] for k in parts[0][0]}
            sums, counts = torch.stack([p[1] for p in parts]).sum(0), torch.stack([p[2] for p in parts]).sum(0)
        metrics = summarize(store, self.config.model.elements)
        metrics["loss"] = float(self.monitor.combine(sums, counts))
        self._last_store = store
        return metrics

    def _state(self) -> Dict[str, Any]:
        stepper = {"optimizer": None, "scheduler": None, "kalman": None}
        stepper.update(copy.deepcopy(self.stepper.state_dict()))
        return {"epoch": self.epoch, "model_spec": self.model.model_spec(),
                "model_state": copy.deepcopy(self.model.state_dict()), **stepper,
                "best_loss": self.best_loss, "best_state": copy.deepcopy(self.best_state),
                "stale_epochs": self.stale_epochs, "history": list(self.history),
                "average": copy.deepcopy(self.average.state_dict()),
                "config": self.config.raw}

    @property
    def has_validation(self) -> bool:
        return len(self.batches["validation"]) > 0

    def _monitored(self) -> tuple:
        """The metrics early stopping, the schedule and the best model follow (validation set,
        else training set) and the same under their metrics.csv names (`val_*`, `train_set_*`)."""
        if self.has_validation:
            metrics = self.evaluate("validation")
            return metrics, {f"val_{k}": v for k, v in metrics.items()}
        metrics = self.evaluate("train")
        return metrics, {f"train_set_{k}": v for k, v in metrics.items()}

    def _log_epoch(self, train_loss: float, metrics: Dict[str, float]) -> None:
        monitored = f"val loss {metrics['loss']:.3e}" if self.has_validation else \
            f"training set: loss {metrics['loss']:.3e}"
        steps = "  ".join(f"{k.replace('kalman_', '')} {v:.1e}" for k, v in self.stepper.step_sizes().items())
        self.log(f"epoch {self.epoch:4d}  loss {train_loss:.3e}  {monitored}  "
                 f"E {metrics['energy_rmse_mev_atom']:.2f} meV/atom  "
                 f"F {metrics.get('force_rmse', float('nan')):.4f} eV/Å  {steps}")

    def _start_output(self) -> None:
        if not self.group.is_main:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        if self._clear_before_run:
            removed = clear_outputs(self.output)
            if removed:
                self.log(f"overwrite: removed {', '.join(p.name for p in removed)} of the earlier run in {self.output}")
            self._clear_before_run = False

    def _save(self, state: Dict[str, Any], name: str) -> None:
        if self.group.is_main:
            save_checkpoint(state, self.output / name)

    def run(self) -> Dict[str, float]:
        o = self.options
        self._start_output()
        snapshot = self._state()
        stopped_early = False
        try:
            while self.epoch < o.epochs:
                started = time.perf_counter()
                train_loss = self.stepper.run(self.epoch)
                self.epoch += 1
                metrics, columns = self._monitored()
                monitored = metrics["loss"]
                self.stepper.after_epoch(monitored)
                if monitored < self.best_loss:
                    self.best_loss, self.stale_epochs = monitored, 0
                    self.best_state = copy.deepcopy(self.model.state_dict())
                else:
                    self.stale_epochs += 1
                self.average.add(self.epoch, self.model)
                row = {"epoch": self.epoch, "train_loss": train_loss, **self.stepper.step_sizes(),
                       "seconds": time.perf_counter() - started}
                row.update(columns)
                self.history.append(row)
                if self.group.is_main:
                    self._write_csv()
                if self.epoch % max(1, o.epochs // 30) == 0 or self.epoch in (1, o.epochs):
                    self._log_epoch(train_loss, metrics)
                snapshot = self._state()
                if self.epoch % o.checkpoint_every == 0 or self.epoch == o.epochs:
                    self._save(snapshot, "checkpoint.ckpt")
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self.epoch, row)
                if o.early_stopping > 0 and self.stale_epochs >= o.early_stopping:
                    what = "validation" if self.has_validation else "training-set"
                    self.log(f"early stopping: no {what} loss improvement for {o.early_stopping} epochs")
                    stopped_early = True
                    break
        except KeyboardInterrupt:
            self._save(snapshot, "checkpoint.ckpt")
            self.log(f"interrupted: state after epoch {snapshot['epoch']} saved to {self.output / 'checkpoint.ckpt'}; "
                     "continue with --resume")
            raise
        self._save(snapshot, "checkpoint.ckpt")
        return self._finish(stopped_early)

    def _finish(self, stopped_early: bool) -> Dict[str, float]:
        kept = {"kept": f"the weights of the best epoch (monitored loss {self.best_loss:.4g})"}
        if self.average.count > 0:
            mean = self.average.applied_to(self.best_state)
            self.model.load_state_dict(mean)
            mean_loss = self._monitored()[0]["loss"]
            if keeps_mean(mean_loss, self.best_loss):
                self.best_state = mean
                kept["kept"] = (f"the mean of the weights after epochs {self.average.epochs()} (monitored loss "
                                f"{mean_loss:.4g}; best single epoch {self.best_loss:.4g})")
            else:
                kept["kept"] += (f"; the mean of the weights after epochs {self.average.epochs()} was "
                                 f"{mean_loss / self.best_loss:.3g}x worse ({mean_loss:.4g})")
        self.model.load_state_dict(self.best_state)
        self.model.weights_origin = "trained"
        self.log(f"model kept: {kept['kept']}")
        best = dict(self._state(), finished=True)
        if best.get("kalman") is not None:  # P is for resuming, which reads checkpoint.ckpt: written once
            best["kalman"] = {key: value for key, value in best["kalman"].items() if key != "filter"}
        self._save(best, "best.ckpt")
        if self.group.is_main and self.options.model_file:
            model = copy.deepcopy(self.model).cpu().eval()
            best_key = "best_validation_loss" if self.has_validation else "best_training_set_loss"
            export(model, self.output / "model.pt", description="trained by bpnn-ts train",
                   provenance={"epochs": self.epoch, best_key: self.best_loss, **kept,
                               "training_structures": len(self.splits["train"])})
        results: Dict[str, float] = {}
        for name in ("train", "validation", "test"):
            metrics = self.evaluate(name)
            if metrics:
                results.update({f"{name}_{k}": v for k, v in metrics.items()})
                if self.group.is_main and self.options.plots:
                    self._plot_parity(name)
        if self.group.is_main and self.options.plots:
            self._plot_learning_curve()
        self.group.barrier()
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
        unit = ("mean squared errors in units of the training data's spreads" if isinstance(self.stepper, KalmanEpochs)
                else "weighted sum of squared errors: eV²/atom², (eV/Å)², (eV/Å³)²")
        learning_curve(self.history, self.output / "learning_curve.png", unit)
