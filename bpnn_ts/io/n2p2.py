"""n2p2 potentials (input.nn + scaling.data + weights.ZZZ.data) -> BPNNModel, exactly.

Conventions: ../shared/reference/n2p2/FORMAT.md. The built model works in eV and
Å; `length_unit` / `energy_unit` say what the n2p2 files use. Keywords that
change predictions and that bpnn_ts cannot reproduce are refused with the line
that holds them; training-only keywords are ignored.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from ..elements import sorted_atomic_numbers, symbol, to_atomic_number
from ..model.cutoffs import cutoff_type_id
from ..model.descriptors.params import AngularSF, RadialSF, SymmetryFunction, n2p2_sorted
from ..model.engine import BPNNModel
from ..model.nn import N2P2_ACTIVATIONS
from ..model.spec import ModelSpec
from ..units import energy_factor, length_factor
from .n2p2_units import check_units as check_plausible_units
from .n2p2_units import closest_atoms

_TRAINING_PREFIXES = ("gradient_", "kalman_", "write_", "short_energy_", "short_force_",
                      "task_batch_size_", "weights_m", "rmse_", "force_energy_")
_TRAINING_KEYWORDS = {
    "use_short_forces", "random_seed", "epochs", "updater_type", "parallel_mode",
    "jacobian_mode", "update_strategy", "selection_mode", "memorize_symfunc_results",
    "test_fraction", "force_weight", "main_error_metric", "nguyen_widrow_weights_short",
    "precondition_weights", "repeated_energy_update", "use_old_weights_short",
    "normalize_data_set", "decoupling_type", "energy_force_update", "debug_mode",
    "symfunction_cache", "weights_min", "weights_max", "number_of_elements",
}
_REFUSED = {
    "normalize_nodes": "node normalisation",
    "element_nodes_short": "per-element network sizes",
    "element_activation_short": "per-element activations",
    "element_hidden_layers_short": "per-element network depth",
    "electrostatic_type": "4G electrostatics",
    "nnp_type": "non-2G potential types",
    "nnp_generation": "non-2G potential types",
}


class N2P2FormatError(ValueError):
    """An n2p2 file bpnn_ts cannot read exactly (names the file and line)."""


@dataclass
class N2P2Settings:
    """What input.nn says, in the files' own units."""

    elements: List[int] = field(default_factory=list)
    functions: List[SymmetryFunction] = field(default_factory=list)
    cutoff_type: int = 1
    cutoff_alpha: float = 0.0
    scaling: str = "none"
    scale_min: float = 0.0
    scale_max: float = 1.0
    hidden_layers: List[int] = field(default_factory=list)
    activations: List[str] = field(default_factory=list)
    mean_energy: float = 0.0
    conv_energy: float = 1.0
    conv_length: float = 1.0
    atom_energy: Dict[int, float] = field(default_factory=dict)


def _parse_function(words: List[str], where: str) -> SymmetryFunction:
    """One `symfunction_short` line (type 2, 3 or 9)."""
    try:
        center = to_atomic_number(words[1])
        kind = int(words[2])
        if kind == 2:
            neighbor = to_atomic_number(words[3])
            eta, r_s, r_c = (float(w) for w in words[4:7])
            return RadialSF(center, neighbor, eta, r_s, r_c)
        if kind in (3, 9):
            pair = (to_atomic_number(words[3]), to_atomic_number(words[4]))
            eta, lambda_, zeta, r_c = (float(w) for w in words[5:9])
            r_s = float(words[9]) if len(words) > 9 else 0.0
            return AngularSF(center, pair, eta, zeta, lambda_, r_s, r_c, narrow=kind == 3)
    except (ValueError, IndexError) as error:
        raise N2P2FormatError(f"{where}: cannot read symmetry function: {error}") from None
    raise N2P2FormatError(f"{where}: symmetry function type {words[2]} is not supported "
                          "(bpnn_ts reads n2p2 types 2, 3 and 9)")


def read_input_nn(path) -> N2P2Settings:
    """Parse an n2p2 input.nn file."""
    path = Path(path)
    settings = N2P2Settings()
    flags = set()
    n_hidden: Optional[int] = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        key, where = words[0], f"{path}:{number}"
        try:
            if key == "symfunction_short":
                settings.functions.append(_parse_function(words, where))
            elif key == "elements":
                settings.elements = sorted_atomic_numbers(words[1:])
            elif key == "cutoff_type":
                settings.cutoff_type = cutoff_type_id(int(words[1]))
                settings.cutoff_alpha = float(words[2]) if len(words) > 2 else 0.0
            elif key in ("scale_symmetry_functions", "center_symmetry_functions",
                         "scale_symmetry_functions_sigma"):
                flags.add(key)
            elif key == "scale_min_short":
                settings.scale_min = float(words[1])
            elif key == "scale_max_short":
                settings.scale_max = float(words[1])
            elif key == "global_hidden_layers_short":
                n_hidden = int(words[1])
            elif key == "global_nodes_short":
                settings.hidden_layers = [int(w) for w in words[1:]]
            elif key == "global_activation_short":
                for letter in words[1:]:
                    if letter not in N2P2_ACTIVATIONS:
                        raise N2P2FormatError(f"{where}: activation {letter!r} is not one of "
                                              f"n2p2's {sorted(N2P2_ACTIVATIONS)}")
                settings.activations = [N2P2_ACTIVATIONS[w] for w in words[1:]]
            elif key in ("mean_energy", "conv_energy", "conv_length"):
                setattr(settings, key, float(words[1]))
            elif key == "atom_energy":
                settings.atom_energy[to_atomic_number(words[1])] = float(words[2])
            elif key in _REFUSED:
                raise N2P2FormatError(f"{where}: `{key}` ({_REFUSED[key]}) is not supported by "
                                      "bpnn_ts; the model would differ from n2p2's")
            elif key in _TRAINING_KEYWORDS or key.startswith(_TRAINING_PREFIXES):
                continue
            else:
                raise N2P2FormatError(f"{where}: unknown keyword `{key}`; refusing to guess "
                                      "whether it changes the potential")
        except N2P2FormatError:
            raise
        except (ValueError, IndexError) as error:
            raise N2P2FormatError(f"{where}: cannot read `{raw.strip()}`: {error}") from None
    if "scale_symmetry_functions_sigma" in flags:
        settings.scaling = "sigma"
    elif {"scale_symmetry_functions", "center_symmetry_functions"} <= flags:
        settings.scaling = "scalecenter"
    elif "scale_symmetry_functions" in flags:
        settings.scaling = "scale"
    elif "center_symmetry_functions" in flags:
        settings.scaling = "center"
    if not settings.elements:
        raise N2P2FormatError(f"{path}: no `elements` line")
    if n_hidden is not None and n_hidden != len(settings.hidden_layers):
        raise N2P2FormatError(f"{path}: global_hidden_layers_short {n_hidden} but "
                              f"global_nodes_short lists {settings.hidden_layers}")
    if len(settings.activations) != len(settings.hidden_layers) + 1:
        raise N2P2FormatError(f"{path}: global_activation_short needs one letter per hidden layer "
                              f"and one for the output ({len(settings.hidden_layers) + 1}), "
                              f"got {len(settings.activations)}")
    missing = [symbol(z) for z in settings.elements
               if not any(f.center == z for f in settings.functions)]
    if missing:
        raise N2P2FormatError(f"{path}: no symmetry functions for elements {missing}")
    settings.functions = n2p2_sorted(settings.functions)
    return settings


def _numeric_rows(path: Path) -> List[List[str]]:
    rows = []
    for line in path.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            rows.append(words)
    return rows


def read_scaling_data(path, settings: N2P2Settings) -> Dict[int, torch.Tensor]:
    """scaling.data -> {Z: (n_functions, 4) Gmin, Gmax, Gmean, sigma} (sigma 0 if absent)."""
    path = Path(path)
    counts = {z: sum(1 for f in settings.functions if f.center == z) for z in settings.elements}
    table = {z: torch.full((n, 4), math.nan, dtype=torch.float64) for z, n in counts.items()}
    for words in _numeric_rows(path):
        try:
            element_index, function_index = int(words[0]) - 1, int(words[1]) - 1
            values = [float(w) for w in words[2:6]] + ([0.0] if len(words) < 6 else [])
            z = settings.elements[element_index]
            table[z][function_index] = torch.tensor(values[:4], dtype=torch.float64)
        except (ValueError, IndexError):
            raise N2P2FormatError(f"{path}: bad row {' '.join(words)!r}") from None
    for z, statistics in table.items():
        if torch.isnan(statistics).any():
            raise N2P2FormatError(f"{path}: missing statistics for {symbol(z)} "
                                  f"(expected {counts[z]} functions)")
    return table


def read_weights(path, layer_sizes: List[int]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """weights.ZZZ.data -> [(W_l (n_out, n_in) as torch Linear.weight, b_l (n_out,))]."""
    path = Path(path)
    try:
        values = [float(words[0]) for words in _numeric_rows(path)]
    except ValueError as error:
        raise N2P2FormatError(f"{path}: {error}") from None
    expected = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    if len(values) != expected:
        raise N2P2FormatError(f"{path}: {len(values)} values, but layers {layer_sizes} need {expected}")
    data = torch.tensor(values, dtype=torch.float64)
    layers, position = [], 0
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        weight = data[position: position + n_in * n_out].reshape(n_in, n_out).T.clone()
        position += n_in * n_out
        bias = data[position: position + n_out].clone()
        position += n_out
        layers.append((weight, bias))
    return layers


def n2p2_spec(input_nn: Path, length_unit: str = "angstrom", energy_unit: str = "eV",
              check_units: bool = True) -> Tuple[ModelSpec, N2P2Settings]:
    """The architecture (in eV and Å) of the n2p2 potential whose input.nn is `input_nn`, files in
    `length_unit` and `energy_unit`, with what input.nn says. With `check_units`, units that the
    files beside it contradict (unit comments, cutoffs, the closest atoms of an input.data) are
    refused (N2P2UnitError, bpnn_ts/io/n2p2_units.py). The one n2p2 -> ModelSpec mapping
    (`bpnn-ts import-n2p2`, `symmetry_functions: {from: input.nn}`)."""
    input_nn = Path(input_nn)
    to_angstrom, to_ev = length_factor(length_unit), energy_factor(energy_unit)
    settings = read_input_nn(input_nn)
    if check_units:
        data = input_nn.parent / "input.data"
        closest = closest_atoms(data, length_unit) if data.is_file() else None
        check_plausible_units(input_nn.parent, length_unit, energy_unit, [f.r_c for f in settings.functions], closest)
    shift = {z: (settings.mean_energy + settings.atom_energy.get(z, 0.0)) * to_ev for z in settings.elements}
    spec = ModelSpec(tuple(settings.elements), tuple(f.scaled(to_angstrom) for f in settings.functions),
                     tuple(settings.hidden_layers), tuple(settings.activations), settings.cutoff_type,
                     settings.cutoff_alpha, settings.scaling, settings.scale_min, settings.scale_max,
                     energy_scale=to_ev / settings.conv_energy, atomic_energy_shift=shift)
    return spec, settings


def load_n2p2(directory, length_unit: str = "angstrom", energy_unit: str = "eV",
              check_units: bool = True) -> BPNNModel:
    """Build the bpnn_ts model (float64, eval mode, eV and Å) of an n2p2 potential directory whose
    files use `length_unit` and `energy_unit` (`check_units`: as n2p2_spec)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"n2p2 potential directory {directory} does not exist")
    spec, settings = n2p2_spec(directory / "input.nn", length_unit, energy_unit, check_units)
    statistics = read_scaling_data(directory / "scaling.data", settings)
    model = BPNNModel.from_spec(spec)
    model.set_scaling_statistics(statistics)
    for z in settings.elements:
        weights_file = directory / f"weights.{z:03d}.data"
        if not weights_file.exists():
            raise N2P2FormatError(f"{weights_file} is missing (weights of {symbol(z)})")
        sizes = [len(statistics[z])] + settings.hidden_layers + [1]
        model.set_element_weights(z, read_weights(weights_file, sizes))
    return model.eval()
