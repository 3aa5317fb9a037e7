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
    loss: {energy: 1.0, forces: 1.0, stress: 0.0}   # weights of the MSE terms (see Trainer)
    training:
      epochs: 100
      batch_size: 4               # structures per optimiser step
      optimizer: adam             # adam | adamw
      learning_rate: 1.0e-3
      weight_decay: 0.0
      schedule: plateau           # plateau | exponential | none
      schedule_factor: 0.5        # plateau: LR factor; exponential: gamma per epoch
      schedule_patience: 10
      min_learning_rate: 1.0e-6
      early_stopping: 30          # epochs without validation improvement (0: off)
      clip_grad_norm: 10.0        # 0: off
      seed: 0
      device: cpu                 # cpu | cuda
      cache_descriptors: true     # keep G and dG/dr of every structure (fast epochs, more memory)
      checkpoint_every: 10
      progress: true
    output: training_run          # folder for checkpoints, metrics.csv, plots, model.pt
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Literal, Optional, Tuple, Union, overload

from ..config import ConfigError, ModelConfig, parse_model_config, read_yaml
from ..io.datasets import FORMATS
from ..units import ENERGY_UNITS, LENGTH_UNITS

_TOP_KEYS = {"model", "data", "loss", "training", "output"}
_DATA_KEYS = {"train", "validation", "test", "split", "format", "length_unit", "energy_unit"}
_LOSS_KEYS = {"energy", "forces", "stress"}
OPTIMIZERS = ("adam", "adamw")
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


@dataclass(frozen=True)
class LossWeights:
    energy: float = 1.0
    forces: float = 1.0
    stress: float = 0.0


@dataclass(frozen=True)
class TrainingOptions:
    epochs: int = 100
    batch_size: int = 4
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"
    schedule_factor: float = 0.5
    schedule_patience: int = 10
    min_learning_rate: float = 1e-6
    early_stopping: int = 30
    clip_grad_norm: float = 10.0
    seed: int = 0
    device: str = "cpu"
    cache_descriptors: bool = True
    checkpoint_every: int = 10
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    data: DataConfig
    loss: LossWeights = LossWeights()
    training: TrainingOptions = TrainingOptions()
    output: str = "training_run"
    raw: Dict[str, Any] = field(default_factory=dict, compare=False)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _files(value: Any, key: str, base: Path) -> Tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, (str, Path)) else value
    _require(isinstance(values, list) and all(isinstance(v, (str, Path)) for v in values),
             f"`data.{key}` must be a file name or a list of file names, got {value!r}")
    return tuple(str((base / v) if not Path(v).is_absolute() else Path(v)) for v in values)


@overload
def _number(section: Dict[str, Any], key: str, default: float, where: str, minimum: float = ..., *,
            integer: Literal[True], strictly_positive: bool = ...) -> int: ...


@overload
def _number(section: Dict[str, Any], key: str, default: float, where: str, minimum: float = ...,
            integer: Literal[False] = ..., strictly_positive: bool = ...) -> float: ...


def _number(section: Dict[str, Any], key: str, default: float, where: str, minimum: float = 0.0,
            integer: bool = False, strictly_positive: bool = False) -> Union[int, float]:
    value = section.get(key, default)
    kind = int if integer else (int, float)
    _require(isinstance(value, kind) and not isinstance(value, bool),
             f"`{where}.{key}` must be {'an integer' if integer else 'a number'}, got {value!r}")
    _require(value > minimum if strictly_positive else value >= minimum,
             f"`{where}.{key}` must be {'>' if strictly_positive else '>='} {minimum}, got {value!r}")
    return int(value) if integer else float(value)


def parse_train_config(data: Dict[str, Any], base: Union[str, Path] = ".") -> TrainConfig:
    """Validate a training config mapping; relative file names are taken from `base`."""
    base = Path(base)
    _require(isinstance(data, dict), f"the training config must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    _require(not unknown, f"unknown config keys {unknown}; allowed: {sorted(_TOP_KEYS)}")
    _require("model" in data, "the config needs a `model` section (the schema `bpnn-ts export` takes)")
    _require("data" in data, "the config needs a `data` section with at least `train`")
    model = parse_model_config(data["model"])

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
    data_config = DataConfig(_files(d["train"], "train", base), _files(d.get("validation"), "validation", base),
                             _files(d.get("test"), "test", base), fractions[0], fractions[1], fmt,
                             length_unit, energy_unit)
    _require(len(data_config.train) > 0, "`data.train` names no files")

    loss = data.get("loss", {}) or {}
    _require(isinstance(loss, dict) and set(loss) <= _LOSS_KEYS,
             f"`loss` must be a mapping with keys from {sorted(_LOSS_KEYS)}, got {loss!r}")
    weights = LossWeights(*[_number(loss, k, default, "loss") for k, default in
                            (("energy", 1.0), ("forces", 1.0), ("stress", 0.0))])
    _require(weights.energy + weights.forces + weights.stress > 0, "`loss` weights are all zero: nothing to fit")

    t = data.get("training", {}) or {}
    _require(isinstance(t, dict), f"`training` must be a mapping, got {t!r}")
    defaults = TrainingOptions()
    allowed = set(defaults.__dataclass_fields__)
    unknown = sorted(set(t) - allowed)
    _require(not unknown, f"unknown keys in `training`: {unknown}; allowed: {sorted(allowed)}")
    _require(t.get("optimizer", "adam") in OPTIMIZERS,
             f"`training.optimizer` must be one of {list(OPTIMIZERS)}, got {t.get('optimizer')!r}")
    _require(t.get("schedule", "plateau") in SCHEDULES,
             f"`training.schedule` must be one of {list(SCHEDULES)}, got {t.get('schedule')!r}")
    _require(t.get("device", "cpu") in ("cpu", "cuda") or str(t.get("device")).startswith("cuda:"),
             f"`training.device` must be cpu or cuda[:N], got {t.get('device')!r}")
    for flag in ("cache_descriptors", "progress"):
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
        clip_grad_norm=_number(t, "clip_grad_norm", defaults.clip_grad_norm, "training"),
        seed=_number(t, "seed", defaults.seed, "training", integer=True),
        device=str(t.get("device", defaults.device)),
        cache_descriptors=t.get("cache_descriptors", defaults.cache_descriptors),
        checkpoint_every=_number(t, "checkpoint_every", defaults.checkpoint_every, "training", 1, integer=True),
        progress=t.get("progress", defaults.progress))
    _require(options.schedule_factor <= 1.0 or options.schedule == "none",
             f"`training.schedule_factor` must be <= 1, got {options.schedule_factor}")
    output = data.get("output", "training_run")
    _require(isinstance(output, (str, Path)), f"`output` must be a folder name, got {output!r}")
    output = str(base / output) if not Path(output).is_absolute() else str(output)
    return TrainConfig(model, data_config, weights, options, output, raw=data)


def load_train_config(path: Union[str, Path]) -> TrainConfig:
    """Read and validate a training YAML file; relative paths are relative to the file."""
    return parse_train_config(read_yaml(path), Path(path).parent)
