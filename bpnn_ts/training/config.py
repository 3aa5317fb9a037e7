"""The training config file (YAML), validated up front with messages that name the key.

    model: {...}                  # the schema `bpnn-ts export` takes (symmetry_functions: auto works)
    data:
      train: data/train.xyz       # a file or a list of files
      validation: null            # files; if absent, taken from `train` by `split`
      test: null
      split: {validation: 0.1, test: 0.1}
      format: null                # extxyz | db | traj | n2p2; null: from the file names
      length_unit: angstrom       # the files' units (converted to Å and eV on reading)
      energy_unit: eV
      stream: false               # read structures on demand (bounded cache) instead of all at start
      cache_size: 256             # stream: parsed structures kept in memory
    loss: {energy: 1.0, forces: 1.0, stress: 0.0}   # adam: weights of the MSE terms (see Trainer);
                                  # kalman: observation weights (n2p2's force_weight; energy default 2, forces 10)
    training:
      epochs: 100
      optimizer: kalman           # kalman | adam | adamw
      kalman: {...}               # the filter and its update plan (KalmanSettings, KalmanPlan)
      batch_size: 4               # adam/adamw: structures per optimiser step
      learning_rate: 1.0e-3       # adam/adamw
      weight_decay: 0.0
      schedule: plateau           # plateau | exponential | none
      schedule_factor: 0.5        # plateau: LR factor; exponential: gamma per epoch
      schedule_patience: 10
      min_learning_rate: 1.0e-6
      early_stopping: 30          # epochs without validation improvement (0: off)
      average_from: 0.5           # keep the mean of the weights after each epoch past this fraction of the run (1: off)
      initial_weights: null       # a checkpoint (.ckpt) or model file with the same functions and layers: start
                                  # from its networks (re-expressed for this run's scaling and energies) instead
                                  # of random ones (fine-tuning; bpnn-ts learn's later rounds)
      clip_grad_norm: 10.0        # 0: off
      seed: 0
      device: cpu                 # cpu | cuda
      cache_descriptors: true     # keep G and dG/dr of every structure (fast epochs, more memory)
      kernels: true               # uncached: train through the fused C++ kernels where they build
      checkpoint_every: 10
      progress: true
      plots: true                 # parity and learning-curve PNGs at the end (needs matplotlib)
      model_file: true            # export the best model as model.pt at the end
    output: training_run          # folder for checkpoints, metrics.csv, plots, model.pt
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ..config import ModelConfig, parse_model_config, read_yaml
from ..config_checks import number as _number
from ..config_checks import require as _require
from ..function_selection import without_selection
from ..io.datasets import FORMATS
from ..units import ENERGY_UNITS, LENGTH_UNITS
from .kalman import KALMAN_BLOCKS, KALMAN_KINDS, KalmanSettings
from .kalman_epoch import KalmanPlan

_TOP_KEYS = {"model", "data", "loss", "training", "output"}
_DATA_KEYS = {"train", "validation", "test", "split", "format", "length_unit", "energy_unit", "stream", "cache_size"}
_LOSS_KEYS = {"energy", "forces", "stress"}
OPTIMIZERS = ("kalman", "adam", "adamw")
SCHEDULES = ("plateau", "exponential", "none")


@dataclass(frozen=True)
class DataConfig:
    train: Tuple[str, ...]
    validation: Tuple[str, ...] = ()
    test: Tuple[str, ...] = ()
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    format: Optional[str] = None
    length_unit: str = "angstrom"
    energy_unit: str = "eV"
    stream: bool = False
    cache_size: int = 256


@dataclass(frozen=True)
class LossWeights:
    energy: float = 1.0
    forces: float = 1.0
    stress: float = 0.0


@dataclass(frozen=True)
class TrainingOptions:
    epochs: int = 100
    batch_size: int = 4
    optimizer: str = "kalman"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"
    schedule_factor: float = 0.5
    schedule_patience: int = 10
    min_learning_rate: float = 1e-6
    early_stopping: int = 30
    average_from: float = 0.5
    clip_grad_norm: float = 10.0
    seed: int = 0
    device: str = "cpu"
    cache_descriptors: bool = True
    kernels: bool = True
    checkpoint_every: int = 10
    progress: bool = True
    plots: bool = True
    model_file: bool = True
    kalman: KalmanSettings = KalmanSettings()
    kalman_plan: KalmanPlan = KalmanPlan()
    initial_weights: Optional[str] = None


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    data: DataConfig
    loss: LossWeights = LossWeights()
    training: TrainingOptions = TrainingOptions()
    output: str = "training_run"
    raw: Dict[str, Any] = field(default_factory=dict, compare=False)
    base: str = "."  # the folder relative paths in `raw` start from (the config file's)


def _files(value: Any, key: str, base: Path) -> Tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, (str, Path)) else value
    _require(isinstance(values, list) and all(isinstance(v, (str, Path)) for v in values),
             f"`data.{key}` must be a file name or a list of file names, got {value!r}")
    return tuple(str((base / v) if not Path(v).is_absolute() else Path(v)) for v in values)


def parse_train_config(data: Dict[str, Any], base: Union[str, Path] = ".") -> TrainConfig:
    """Validate a training config mapping; relative file names are taken from `base`."""
    base = Path(base)
    _require(isinstance(data, dict), f"the training config must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    _require(not unknown, f"unknown config keys {unknown}; allowed: {sorted(_TOP_KEYS)}")
    _require("model" in data, "the config needs a `model` section (the schema `bpnn-ts export` takes)")
    _require("data" in data, "the config needs a `data` section with at least `train`")
    model = parse_model_config(without_selection(data["model"]), base)

    d = data["data"]
    _require(isinstance(d, dict), f"`data` must be a mapping, got {d!r}")
    unknown = sorted(set(d) - _DATA_KEYS)
    _require(not unknown, f"unknown keys in `data`: {unknown}; allowed: {sorted(_DATA_KEYS)}")
    _require("train" in d, "`data.train` is required: the training data file(s)")
    split = d.get("split", {}) or {}
    _require(isinstance(split, dict) and set(split) <= {"validation", "test"},
             f"`data.split` must be a mapping with `validation` and/or `test` fractions, got {split!r}")
    fractions = [_number(split, k, 0.1, "data.split") for k in ("validation", "test")]
    _require(sum(fractions) < 1.0, f"`data.split` fractions must sum to < 1, got {fractions}")
    fmt = d.get("format")
    _require(fmt is None or fmt in FORMATS, f"`data.format` must be one of {list(FORMATS)}, got {fmt!r}")
    length_unit = d.get("length_unit", "angstrom")
    energy_unit = d.get("energy_unit", "eV")
    _require(length_unit in LENGTH_UNITS, f"`data.length_unit` must be one of {sorted(LENGTH_UNITS)}, got {length_unit!r}")
    _require(energy_unit in ENERGY_UNITS, f"`data.energy_unit` must be one of {sorted(ENERGY_UNITS)}, got {energy_unit!r}")
    _require(isinstance(d.get("stream", False), bool), f"`data.stream` must be true or false, got {d.get('stream')!r}")
    data_config = DataConfig(_files(d["train"], "train", base), _files(d.get("validation"), "validation", base),
                             _files(d.get("test"), "test", base), fractions[0], fractions[1], fmt,
                             length_unit, energy_unit, d.get("stream", False),
                             _number(d, "cache_size", 256, "data", 0, integer=True))
    _require(len(data_config.train) > 0, "`data.train` names no files")

    t = data.get("training", {}) or {}
    _require(isinstance(t, dict), f"`training` must be a mapping, got {t!r}")
    loss = data.get("loss", {}) or {}
    _require(isinstance(loss, dict) and set(loss) <= _LOSS_KEYS,
             f"`loss` must be a mapping with keys from {sorted(_LOSS_KEYS)}, got {loss!r}")
    kalman = t.get("optimizer", TrainingOptions.optimizer) == "kalman"
    weights = LossWeights(*[_number(loss, k, default, "loss") for k, default in
                            (("energy", 2.0 if kalman else 1.0), ("forces", 10.0 if kalman else 1.0),
                             ("stress", 0.0))])
    _require(weights.energy + weights.forces + weights.stress > 0, "`loss` weights are all zero: nothing to fit")

    defaults = TrainingOptions()
    allowed = set(defaults.__dataclass_fields__)
    unknown = sorted(set(t) - allowed)
    _require(not unknown, f"unknown keys in `training`: {unknown}; allowed: {sorted(allowed)}")
    _require(t.get("optimizer", defaults.optimizer) in OPTIMIZERS,
             f"`training.optimizer` must be one of {list(OPTIMIZERS)}, got {t.get('optimizer')!r}")
    _require(t.get("schedule", "plateau") in SCHEDULES,
             f"`training.schedule` must be one of {list(SCHEDULES)}, got {t.get('schedule')!r}")
    _require(t.get("device", "cpu") in ("cpu", "cuda") or str(t.get("device")).startswith("cuda:"),
             f"`training.device` must be cpu or cuda[:N], got {t.get('device')!r}")
    for flag in ("cache_descriptors", "kernels", "progress", "plots", "model_file"):
        _require(isinstance(t.get(flag, True), bool), f"`training.{flag}` must be true or false, got {t.get(flag)!r}")
    options = TrainingOptions(
        epochs=_number(t, "epochs", defaults.epochs, "training", 1, integer=True),
        batch_size=_number(t, "batch_size", defaults.batch_size, "training", 1, integer=True),
        optimizer=t.get("optimizer", defaults.optimizer),
        learning_rate=_number(t, "learning_rate", defaults.learning_rate, "training", strictly_positive=True),
        weight_decay=_number(t, "weight_decay", defaults.weight_decay, "training"),
        schedule=t.get("schedule", defaults.schedule),
        schedule_factor=_number(t, "schedule_factor", defaults.schedule_factor, "training", strictly_positive=True),
        schedule_patience=_number(t, "schedule_patience", defaults.schedule_patience, "training", integer=True),
        min_learning_rate=_number(t, "min_learning_rate", defaults.min_learning_rate, "training"),
        early_stopping=_number(t, "early_stopping", defaults.early_stopping, "training", integer=True),
        average_from=_number(t, "average_from", defaults.average_from, "training"),
        clip_grad_norm=_number(t, "clip_grad_norm", defaults.clip_grad_norm, "training"),
        seed=_number(t, "seed", defaults.seed, "training", integer=True),
        device=str(t.get("device", defaults.device)),
        cache_descriptors=t.get("cache_descriptors", defaults.cache_descriptors),
        kernels=t.get("kernels", defaults.kernels),
        checkpoint_every=_number(t, "checkpoint_every", defaults.checkpoint_every, "training", 1, integer=True),
        progress=t.get("progress", defaults.progress),
        plots=t.get("plots", defaults.plots),
        model_file=t.get("model_file", defaults.model_file),
        kalman=_kalman_settings(t.get("kalman", {}) or {}),
        kalman_plan=_kalman_plan(t.get("kalman", {}) or {}, weights),
        initial_weights=_initial_weights(t.get("initial_weights"), base))
    _require(not (data_config.stream and options.cache_descriptors),
             "`data.stream: true` reads structures on demand, so descriptors cannot be cached for every structure: "
             "set `training.cache_descriptors: false`")
    _require(options.average_from <= 1.0, f"`training.average_from` must be in [0, 1] (a fraction of the epochs; "
                                          f"1: keep the best epoch's weights), got {options.average_from}")
    _require(options.schedule_factor <= 1.0 or options.schedule == "none",
             f"`training.schedule_factor` must be <= 1, got {options.schedule_factor}")
    output = data.get("output", "training_run")
    _require(isinstance(output, (str, Path)), f"`output` must be a folder name, got {output!r}")
    output = str(base / output) if not Path(output).is_absolute() else str(output)
    return TrainConfig(model, data_config, weights, options, output, raw=data, base=str(base))


def _initial_weights(value: Any, base: Path) -> Optional[str]:
    """`training.initial_weights`: an existing file (relative to the config's folder), or None."""
    if value is None:
        return None
    _require(isinstance(value, (str, Path)), f"`training.initial_weights` must be a file name, got {value!r}")
    path = Path(value) if Path(value).is_absolute() else base / value
    _require(path.is_file(), f"`training.initial_weights`: {path} does not exist")
    return str(path)


_PLAN_KEYS = ("energy_fraction", "force_fraction", "force_components", "force_threshold", "structures_per_update")


def _kalman_settings(section: Any) -> KalmanSettings:
    """`training.kalman`: the filter's parameters (KalmanSettings) and the update plan (KalmanPlan)."""
    _require(isinstance(section, dict), f"`training.kalman` must be a mapping, got {section!r}")
    defaults = KalmanSettings()
    allowed = set(defaults.__dataclass_fields__) | set(_PLAN_KEYS)
    unknown = sorted(set(section) - allowed)
    _require(not unknown, f"unknown keys in `training.kalman`: {unknown}; allowed: {sorted(allowed)}")
    kind = section.get("kind", defaults.kind)
    _require(kind in KALMAN_KINDS, f"`training.kalman.kind` must be one of {list(KALMAN_KINDS)}, got {kind!r}")
    blocks = section.get("blocks", defaults.blocks)
    _require(blocks in KALMAN_BLOCKS, f"`training.kalman.blocks` must be one of {list(KALMAN_BLOCKS)}, got {blocks!r}")
    where = "training.kalman"
    settings = KalmanSettings(
        kind=kind, blocks=blocks,
        epsilon=_number(section, "epsilon", defaults.epsilon, where, strictly_positive=True),
        q0=_number(section, "q0", defaults.q0, where),
        q_tau=_number(section, "q_tau", defaults.q_tau, where, strictly_positive=True),
        q_min=_number(section, "q_min", defaults.q_min, where),
        eta0=_number(section, "eta0", defaults.eta0, where, strictly_positive=True),
        eta_tau=_number(section, "eta_tau", defaults.eta_tau, where, strictly_positive=True),
        eta_max=_number(section, "eta_max", defaults.eta_max, where, strictly_positive=True),
        lambda0=_number(section, "lambda0", defaults.lambda0, where, strictly_positive=True),
        nu=_number(section, "nu", defaults.nu, where, strictly_positive=True))
    _require(settings.lambda0 <= 1.0 and settings.nu <= 1.0,
             f"`training.kalman.lambda0` and `nu` must be <= 1, got {settings.lambda0} and {settings.nu}")
    return settings


def _kalman_plan(section: Dict[str, Any], weights: LossWeights) -> KalmanPlan:
    defaults = KalmanPlan()
    where = "training.kalman"
    return KalmanPlan(
        energy_fraction=_number(section, "energy_fraction", defaults.energy_fraction, where),
        force_fraction=_number(section, "force_fraction", defaults.force_fraction, where),
        force_components=_number(section, "force_components", defaults.force_components, where, 1, integer=True),
        force_threshold=_number(section, "force_threshold", defaults.force_threshold, where),
        structures_per_update=_number(section, "structures_per_update", defaults.structures_per_update, where, 1,
                                      integer=True),
        energy_weight=weights.energy, force_weight=weights.forces, stress_weight=weights.stress)


def load_train_config(path: Union[str, Path]) -> TrainConfig:
    """Read and validate a training YAML file; relative paths are relative to the file."""
    return parse_train_config(read_yaml(path), Path(path).parent)
