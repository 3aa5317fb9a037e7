"""`symmetry_functions: {from: ...}` of a model config: the functions (and, if asked, the
scaling and reference energies) of an existing potential, an n2p2 input.nn (through
bpnn_ts.io.n2p2.n2p2_spec, the one n2p2 -> ModelSpec mapping) or a bpnn_ts model file."""

import zipfile
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch

from .elements import sorted_atomic_numbers, symbol
from .errors import ConfigError
from .formats.eager import eager_copy
from .formats.loading import load
from .formats.records import ModelFileError, inspect
from .io.n2p2 import N2P2FormatError, n2p2_spec, read_input_nn, read_scaling_data
from .io.n2p2_units import N2P2UnitError
from .model.cutoffs import cutoff_type_id
from .model.descriptors.params import function_to_dict
from .model.spec import ModelSpec
from .units import energy_factor, length_factor

FROM_KEYS = {"from", "length_unit", "energy_unit", "scaling", "atomic_energies", "check_units"}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def resolve_source(data: Dict[str, Any], base: Union[str, Path] = ".") -> Dict[str, Any]:
    """`data`, a model config mapping with `symmetry_functions: {from: path, ...}`, with the
    functions of that n2p2 potential or model file listed, and `elements`, `cutoff` and
    `cutoff_function` taken from it where `data` does not give them; with `scaling: true` also its
    scaling kind and range (`scaling`, `scale_min`, `scale_max`; the statistics themselves:
    `imported_scaling_statistics`), with `atomic_energies: true` its reference energies (eV per
    atom; an n2p2 potential's mean_energy + atom_energy)."""
    spec = data["symmetry_functions"]
    unknown = sorted(set(spec) - FROM_KEYS)
    _require(not unknown, f"`symmetry_functions`: unknown keys {unknown} beside `from`; allowed: {sorted(FROM_KEYS)}")
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
    path = _source_path(spec, base)
    if zipfile.is_zipfile(path):
        units = sorted({"length_unit", "energy_unit"} & set(spec))
        _require(not units, f"`symmetry_functions`: {units} apply to n2p2 files; model files are in Å and eV")
        try:
            record = inspect(path)["provenance"].get("model")
            return (ModelSpec.from_dict(record) if record else ModelSpec.from_json(load(path).model_spec())), path
        except (ModelFileError, ValueError) as error:
            raise ConfigError(f"`symmetry_functions.from`: {error}") from None
    length_unit, energy_unit = spec.get("length_unit", "angstrom"), spec.get("energy_unit", "eV")
    try:
        length_factor(length_unit), energy_factor(energy_unit)
    except ValueError as error:
        raise ConfigError(f"`symmetry_functions`: {error}") from None
    try:
        check = bool(spec.get("check_units", True)) and path.name == "input.nn"
        return n2p2_spec(path, length_unit, energy_unit, check)[0], path
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
    if zipfile.is_zipfile(path):
        return eager_copy(load(path)).scaling_statistics()
    try:
        return read_scaling_data(path.parent / "scaling.data", read_input_nn(path))  # G is unitless
    except (N2P2FormatError, OSError) as error:
        raise ConfigError(f"`symmetry_functions.scaling`: {error}") from None
