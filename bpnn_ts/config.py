"""The model part of a config file (YAML), validated up front, and the model it builds.

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

from .elements import sorted_atomic_numbers, symbol, to_atomic_number
from .model.cutoffs import cutoff_type_id
from .model.descriptors.params import SymmetryFunction, auto_symmetry_functions, function_from_dict, function_to_dict
from .model.descriptors.scaling import SCALING_TYPES
from .model.engine import BPNNModel
from .model.nn import activation_code
from .model.spec import ModelSpec, elements_of
from .model_parts import element_models, element_net

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_KEYS = {"elements", "cutoff", "cutoff_function", "symmetry_functions", "hidden_layers",
         "activation", "scaling", "scale_min", "scale_max", "atomic_energies", "dtype", "seed",
         "description"}
_AUTO_KEYS = {"n_radial", "style", "angular_eta", "zetas", "lambdas", "narrow", "r_lower"}
_FROM_KEYS = {"from", "length_unit", "energy_unit", "scaling", "atomic_energies", "check_units"}


class ConfigError(ValueError):
    """A config file that does not describe a valid model."""


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
        generator = torch.Generator().manual_seed(self.seed)
        for element in element_models(model):
            element_net(element).reset_parameters(generator)
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
        from .function_selection import parse_selection
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


def resolve_source(data: Dict[str, Any], base: Union[str, Path] = ".") -> Dict[str, Any]:
    """`data`, a model config mapping with `symmetry_functions: {from: path, ...}`, with the
    functions of that n2p2 potential or model file listed, and `elements`, `cutoff` and
    `cutoff_function` taken from it where `data` does not give them; with `scaling: true` also its
    scaling kind and range (`scaling`, `scale_min`, `scale_max`; the statistics themselves:
    `imported_scaling_statistics`), with `atomic_energies: true` its reference energies (eV per
    atom; an n2p2 potential's mean_energy + atom_energy)."""
    spec = data["symmetry_functions"]
    unknown = sorted(set(spec) - _FROM_KEYS)
    _require(not unknown, f"`symmetry_functions`: unknown keys {unknown} beside `from`; allowed: {sorted(_FROM_KEYS)}")
    for key in ("scaling", "atomic_energies", "check_units"):
        _require(isinstance(spec.get(key, False), bool), f"`symmetry_functions.{key}` must be true or false, "
                                                         f"got {spec.get(key)!r}")
    source, path = _source_spec(spec, Path(base))
    names = [symbol(z) for z in source.atomic_numbers]
    result = dict(data, symmetry_functions=[function_to_dict(f) for f in source.functions])
    result.setdefault("elements", names)
    result.setdefault("cutoff", source.cutoff)
    result.setdefault("cutoff_function", {"type": source.cutoff_type, "alpha": source.cutoff_alpha})
    try:
        elements = sorted_atomic_numbers(result["elements"])
    except (ValueError, TypeError) as error:
        raise ConfigError(f"`elements`: {error}") from None
    _require(elements == list(source.atomic_numbers),
             f"`elements` {[symbol(z) for z in elements]} differ from those of {path} ({names}); "
             "leave `elements` out to take them from it")
    wanted = result["cutoff_function"]
    wanted = wanted if isinstance(wanted, dict) else {"type": wanted}
    try:
        same = (cutoff_type_id(wanted.get("type", "cos")) == source.cutoff_type
                and float(wanted.get("alpha", 0.0)) == source.cutoff_alpha)
    except (ValueError, TypeError, AttributeError):
        same = False
    _require(same, f"`cutoff_function` {result['cutoff_function']!r} differs from that of {path} (type "
                   f"{source.cutoff_type}, alpha {source.cutoff_alpha}), which its functions need; leave "
                   "`cutoff_function` out to take it from there")
    if spec.get("scaling", False):
        clash = sorted({"scaling", "scale_min", "scale_max"} & set(data))
        _require(not clash, f"`symmetry_functions.scaling: true` takes the scaling from {path}; remove {clash}")
        result.update(scaling=source.scaling, scale_min=source.scale_min, scale_max=source.scale_max)
    if spec.get("atomic_energies", False):
        _require("atomic_energies" not in data, "`symmetry_functions.atomic_energies: true` takes the atomic "
                                                f"energies from {path}; remove `atomic_energies`")
        result["atomic_energies"] = {symbol(z): e for z, e in source.atomic_energy_shift.items()}
    return result


def _source_path(spec: Dict[str, Any], base: Path) -> Path:
    value = spec["from"]
    _require(isinstance(value, (str, Path)) and str(value) != "",
             f"`symmetry_functions.from` must be a path (an n2p2 input.nn or its folder, or a bpnn_ts model "
             f"file), got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if path.is_dir():
        path = path / "input.nn"
    _require(path.is_file(), f"`symmetry_functions.from`: {path} does not exist (give an n2p2 input.nn or its "
                             "folder, or a bpnn_ts model file)")
    return path


def _source_spec(spec: Dict[str, Any], base: Path) -> Tuple[ModelSpec, Path]:
    """The model spec of the potential `spec["from"]` names (lengths in Å, energies in eV)."""
    import zipfile

    from .units import energy_factor, length_factor
    path = _source_path(spec, base)
    if zipfile.is_zipfile(path):
        from .export import ModelFileError, inspect, load
        units = sorted({"length_unit", "energy_unit"} & set(spec))
        _require(not units, f"`symmetry_functions`: {units} apply to n2p2 files; model files are in Å and eV")
        try:
            record = inspect(path)["provenance"].get("model")
            return (ModelSpec.from_dict(record) if record else ModelSpec.from_json(load(path).model_spec())), path
        except (ModelFileError, ValueError) as error:
            raise ConfigError(f"`symmetry_functions.from`: {error}") from None
    from .io.n2p2 import N2P2FormatError, read_input_nn
    from .io.n2p2_units import N2P2UnitError, check_units, closest_atoms
    length_unit, energy_unit = spec.get("length_unit", "angstrom"), spec.get("energy_unit", "eV")
    try:
        to_angstrom, to_ev = length_factor(length_unit), energy_factor(energy_unit)
    except ValueError as error:
        raise ConfigError(f"`symmetry_functions`: {error}") from None
    try:
        settings = read_input_nn(path)
        if spec.get("check_units", True) and path.name == "input.nn":
            data = path.parent / "input.data"
            closest = closest_atoms(data, length_unit) if data.is_file() else None
            check_units(path.parent, length_unit, energy_unit, [f.r_c for f in settings.functions], closest)
        shift = {z: (settings.mean_energy + settings.atom_energy.get(z, 0.0)) * to_ev for z in settings.elements}
        return ModelSpec(tuple(settings.elements), tuple(f.scaled(to_angstrom) for f in settings.functions),
                         tuple(settings.hidden_layers), tuple(settings.activations), settings.cutoff_type,
                         settings.cutoff_alpha, settings.scaling, settings.scale_min, settings.scale_max,
                         to_ev / settings.conv_energy, shift), path
    except N2P2UnitError as error:
        raise ConfigError(f"`symmetry_functions.from`: {error} Give the units as `symmetry_functions.length_unit` "
                          "and `energy_unit` (angstrom/bohr, eV/hartree).") from None
    except (N2P2FormatError, ValueError, OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"`symmetry_functions.from`: {path} is not an n2p2 input.nn bpnn_ts can read: {error}") from None


def imported_scaling_statistics(data: Dict[str, Any], base: Union[str, Path] = ".") -> Dict[int, torch.Tensor]:
    """{Z: (n_functions, 4) Gmin, Gmax, Gmean, sigma} of the potential that `data`'s
    `symmetry_functions: {from: ...}` names (its scaling.data, or the model file's statistics), in
    the order `resolve_source` lists the functions: for element.scaling.set_statistics."""
    spec = data["symmetry_functions"]
    path = _source_path(spec, Path(base))
    import zipfile
    if zipfile.is_zipfile(path):
        from .export import load
        model = load(path)
        state, elements = model.state_dict(), ModelSpec.from_json(model.model_spec()).atomic_numbers
        return {z: torch.stack([state[f"potential.elements.{k}.scaling.{name}"].to(torch.float64)
                                for name in ("g_min", "g_max", "g_mean", "g_sigma")], dim=1)
                for k, z in enumerate(elements)}
    from .io.n2p2 import N2P2FormatError, read_input_nn, read_scaling_data
    try:
        return read_scaling_data(path.parent / "scaling.data", read_input_nn(path))  # G is unitless
    except (N2P2FormatError, OSError) as error:
        raise ConfigError(f"`symmetry_functions.scaling`: {error}") from None


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
