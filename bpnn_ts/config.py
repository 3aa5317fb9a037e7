"""The model part of a config file (YAML), validated up front, and the model it builds
(`{from: ...}` sources: bpnn_ts/potential_sources.py; `{select: ...}`: selection_config.py).

    elements: [H, O]
    cutoff: 6.0                      # Å, default r_c of every function
    cutoff_function: cos             # or {type: poly2, alpha: 0.0}; n2p2 names/numbers
    symmetry_functions: auto         # or {auto: {n_radial: 8, style: shifted, ...}}
                                     # or a list of {type, center, neighbor(s), eta, ...}
                                     # or {from: n2p2 input.nn / its folder / model.pt, ...}
                                     # or {select: 57} (chosen from training data, by bpnn-ts train)
    hidden_layers: [25, 25]
    activation: tanh                 # hidden layers; output is identity
    scaling: none                    # none | scale | center | scalecenter | sigma
    atomic_energies: {H: -13.6, O: -2041.8}   # eV per atom, optional
    dtype: float64
    seed: 0
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import torch
import yaml

from .elements import sorted_atomic_numbers, to_atomic_number
from .errors import ConfigError
from .model.cutoffs import cutoff_type_id
from .model.descriptors.params import SymmetryFunction, auto_symmetry_functions, function_from_dict
from .model.descriptors.scaling import SCALING_TYPES
from .model.engine import BPNNModel
from .model.nn import activation_code
from .model.spec import ModelSpec, elements_of
from .potential_sources import resolve_source
from .selection_config import parse_selection

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_KEYS = {"elements", "cutoff", "cutoff_function", "symmetry_functions", "hidden_layers",
         "activation", "scaling", "scale_min", "scale_max", "atomic_energies", "dtype", "seed",
         "description"}
_AUTO_KEYS = {"n_radial", "style", "angular_eta", "zetas", "lambdas", "narrow", "r_lower"}


@dataclass(frozen=True)
class ModelConfig:
    """Validated model description; `build()` gives a seeded, untrained model."""

    elements: Tuple[int, ...]
    cutoff: float
    functions: Tuple[SymmetryFunction, ...]
    hidden_layers: Tuple[int, ...] = (25, 25)
    activation: str = "tanh"
    cutoff_type: int = 1
    cutoff_alpha: float = 0.0
    scaling: str = "none"
    scale_min: float = 0.0
    scale_max: float = 1.0
    atomic_energies: Dict[int, float] = field(default_factory=dict)
    dtype: str = "float64"
    seed: int = 0
    description: str = ""

    def spec(self) -> ModelSpec:
        """The architecture this config describes."""
        return ModelSpec(self.elements, self.functions, self.hidden_layers,
                         (self.activation,) * len(self.hidden_layers) + ("identity",), self.cutoff_type,
                         self.cutoff_alpha, self.scaling, self.scale_min, self.scale_max, 1.0, self.atomic_energies)

    def build(self) -> BPNNModel:
        """The model with weights drawn from `seed` (training mode, as torch modules start).
        The weights are drawn into float32 layers, then converted to `dtype`, as bpnn_ts 0.1 did:
        a seed gives the same model in every version."""
        model = BPNNModel(self.spec())  # torch's default float32 layers, float64 buffers
        model.reset_parameters(torch.Generator().manual_seed(self.seed))
        return model.to(DTYPES[self.dtype])


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def parse_model_config(data: Dict[str, Any], base: Union[str, Path] = ".") -> ModelConfig:
    """Validate a config mapping; every problem names the key and the allowed values. A
    `symmetry_functions: {from: path}` is read (relative to `base`); a `{select: ...}` needs the
    training data (bpnn_ts.function_selection.resolve_symmetry_functions) first."""
    _require(isinstance(data, dict), f"the model config must be a mapping, got {type(data).__name__}")
    if isinstance(data.get("symmetry_functions"), dict) and "from" in data["symmetry_functions"]:
        data = resolve_source(data, base)
    unknown = sorted(set(data) - _KEYS)
    _require(not unknown, f"unknown config keys {unknown}; allowed: {sorted(_KEYS)}")
    _require("elements" in data, "`elements` is required, e.g. elements: [H, O]")
    _require("cutoff" in data, "`cutoff` (Å) is required, e.g. cutoff: 6.0")
    try:
        elements = sorted_atomic_numbers(data["elements"])
    except (ValueError, TypeError) as error:
        raise ConfigError(f"`elements`: {error}") from None
    cutoff = data["cutoff"]
    _require(isinstance(cutoff, (int, float)) and not isinstance(cutoff, bool) and cutoff > 0,
             f"`cutoff` must be a positive number (Å), got {cutoff!r}")
    cutoff = float(cutoff)
    spec = data.get("cutoff_function", "cos")
    if isinstance(spec, (str, int)):
        spec = {"type": spec}
    _require(isinstance(spec, dict) and set(spec) <= {"type", "alpha"},
             f"`cutoff_function` must be a name or {{type, alpha}}, got {spec!r}")
    try:
        cutoff_type = cutoff_type_id(spec.get("type", "cos"))
    except ValueError as error:
        raise ConfigError(f"`cutoff_function`: {error}") from None
    alpha = float(spec.get("alpha", 0.0))
    _require(0.0 <= alpha < 1.0, f"`cutoff_function.alpha` must be in [0, 1), got {alpha}")

    functions = _parse_functions(data.get("symmetry_functions", "auto"), elements, cutoff)
    hidden = data.get("hidden_layers", [25, 25])
    _require(isinstance(hidden, list) and all(isinstance(h, int) and h > 0 for h in hidden),
             f"`hidden_layers` must be a list of positive integers, got {hidden!r}")
    activation = data.get("activation", "tanh")
    try:
        activation_code(activation)
    except ValueError as error:
        raise ConfigError(f"`activation`: {error}") from None
    scaling = data.get("scaling", "none")
    _require(scaling in SCALING_TYPES, f"`scaling` must be one of {sorted(SCALING_TYPES)}, got {scaling!r}")
    energies = data.get("atomic_energies", {}) or {}
    _require(isinstance(energies, dict), f"`atomic_energies` must map elements to eV, got {energies!r}")
    try:
        atomic_energies = {to_atomic_number(k): float(v) for k, v in energies.items()}
    except (ValueError, TypeError) as error:
        raise ConfigError(f"`atomic_energies`: {error}") from None
    stray = sorted(set(atomic_energies) - set(elements))
    _require(not stray, f"`atomic_energies` names elements not in `elements`: {stray}")
    dtype = data.get("dtype", "float64")
    _require(dtype in DTYPES, f"`dtype` must be one of {sorted(DTYPES)}, got {dtype!r}")
    seed = data.get("seed", 0)
    _require(isinstance(seed, int) and not isinstance(seed, bool), f"`seed` must be an integer, got {seed!r}")
    return ModelConfig(tuple(elements), cutoff, tuple(functions), tuple(hidden), activation,
                       cutoff_type, alpha, scaling, float(data.get("scale_min", 0.0)),
                       float(data.get("scale_max", 1.0)), atomic_energies, dtype, seed,
                       str(data.get("description", "")))


def _parse_functions(spec: Union[str, Dict, List], elements: List[int],
                     cutoff: float) -> List[SymmetryFunction]:
    if spec == "auto":
        spec = {"auto": {}}
    if isinstance(spec, dict) and "select" in spec:
        parse_selection(spec, elements, cutoff)  # its own mistakes first
        raise ConfigError("`symmetry_functions: {select: ...}` chooses the functions from training data: `bpnn-ts "
                          "train` resolves it (bpnn_ts.function_selection.resolve_symmetry_functions(model, "
                          "structures)); elsewhere give `auto`, {from: ...} or a list")
    if isinstance(spec, dict):
        _require(set(spec) == {"auto"}, f"`symmetry_functions` must be `auto`, {{auto: {{...}}}}, {{from: path}}, "
                                        f"{{select: N}} or a list, got keys {sorted(spec)}")
        options = spec["auto"] or {}
        unknown = sorted(set(options) - _AUTO_KEYS)
        _require(not unknown, f"`symmetry_functions.auto`: unknown keys {unknown}; allowed: {sorted(_AUTO_KEYS)}")
        try:
            return auto_symmetry_functions(elements, cutoff, **options)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"`symmetry_functions.auto`: {error}") from None
    _require(isinstance(spec, list) and bool(spec), "`symmetry_functions` must be `auto` or a non-empty list")
    functions = []
    for k, entry in enumerate(spec):
        try:
            functions.append(function_from_dict(entry, cutoff))
        except ValueError as error:
            raise ConfigError(f"`symmetry_functions[{k}]`: {error}") from None
    for f in functions:
        stray = [z for z in elements_of(f) if z not in elements]
        _require(not stray, f"symmetry function {f} uses elements {stray} not in `elements`")
    missing = [z for z in elements if not any(f.center == z for f in functions)]
    _require(not missing, f"elements {missing} have no symmetry functions")
    return functions


def read_yaml(path: Union[str, Path]) -> Any:
    """The parsed contents of a YAML config file; ConfigError if missing or not YAML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None


def load_model_config(path: Union[str, Path]) -> ModelConfig:
    """Read and validate a YAML model config (a top-level `model:` section is accepted too)."""
    data = read_yaml(path)
    if isinstance(data, dict) and "model" in data and isinstance(data["model"], dict):
        data = data["model"]
    try:
        return parse_model_config(data, Path(path).parent)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
