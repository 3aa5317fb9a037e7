"""bpnn_ts model -> n2p2 potential files (input.nn, scaling.data, weights.ZZZ.data).

Works from a live model or a loaded model file (it reads `model_spec()` and the
state dict). n2p2 sorts each element's symmetry functions (FORMAT.md): the
first-layer weights and scaling rows are permuted into that order. Models
using features n2p2 lacks are refused.
"""

import json
from pathlib import Path
from typing import Any, List, Union

import torch

from ..elements import symbol
from ..model.cutoffs import CUTOFF_NAMES
from ..model.descriptors.params import RadialSF, function_from_dict, n2p2_sorted
from ..model.nn import N2P2_ACTIVATIONS
from ..units import energy_factor, length_factor

_LETTER = {name: letter for letter, name in N2P2_ACTIVATIONS.items()}
_SCALING_KEYWORDS = {"none": [], "scale": ["scale_symmetry_functions"], "center": ["center_symmetry_functions"],
                     "scalecenter": ["scale_symmetry_functions", "center_symmetry_functions"],
                     "sigma": ["scale_symmetry_functions_sigma"]}


UNIT_WORDS = {"angstrom": "Angstrom", "bohr": "Bohr", "eV": "eV", "hartree": "Ha"}  # as n2p2's examples write them


def _line(function, to_unit: float) -> str:
    f = function.scaled(to_unit)
    if isinstance(f, RadialSF):
        return f"symfunction_short {symbol(f.center)} 2 {symbol(f.neighbor)} {f.eta!r} {f.r_s!r} {f.r_c!r}"
    first, second = (symbol(z) for z in f.neighbors)
    kind = 3 if f.narrow else 9
    return (f"symfunction_short {symbol(f.center)} {kind} {first} {second} {f.eta!r} {f.lambda_!r} "
            f"{f.zeta!r} {f.r_c!r} {f.r_s!r}")


def write_n2p2(model: Any, directory: Union[str, Path], length_unit: str = "angstrom",
               energy_unit: str = "eV") -> Path:
    """Write `model` as an n2p2 potential in `directory` (created); lengths and
    energies in the given units. Returns the directory."""
    spec = json.loads(model.model_spec())
    if int(spec.get("committee_size", 1)) > 1:
        raise ValueError(f"n2p2 has no committees and this model has {spec['committee_size']} networks per element: "
                         "write one member (bpnn_ts.committee.committee_member(model, k))")
    unsupported = [a for a in spec["activations"] if a not in _LETTER]
    if unsupported:
        raise ValueError(f"n2p2 has no activation {unsupported}; it knows {sorted(_LETTER)}")
    to_unit = 1.0 / length_factor(length_unit)  # length in file units per Å
    per_ev = 1.0 / energy_factor(energy_unit)  # energy in file units per eV
    state = {k: v.detach().cpu().double() for k, v in model.state_dict().items()}
    numbers = spec["atomic_numbers"]
    functions = [function_from_dict(d, 0.0) for d in spec["functions"]]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    shifts = {z: float(v) * per_ev for z, v in zip(numbers, state["potential.atomic_energy_shift"])}
    lines = ["# n2p2 potential written by bpnn_ts", f"# Length unit     : {UNIT_WORDS[length_unit]}",
             f"# Energy unit     : {UNIT_WORDS[energy_unit]}", f"number_of_elements {len(numbers)}",
             "elements " + " ".join(symbol(z) for z in numbers)]
    energy_scale = spec["energy_scale"] * per_ev  # file energy per network output
    if energy_scale != 1.0:
        lines += ["mean_energy 0.0", f"conv_energy {1.0 / energy_scale!r}", "conv_length 1.0"]
    lines += [f"atom_energy {symbol(z)} {shifts[z]!r}" for z in numbers]
    lines += [f"cutoff_type {spec['cutoff_type']} {spec['cutoff_alpha']!r}"
              f"  # {CUTOFF_NAMES[spec['cutoff_type']]}"]
    lines += _SCALING_KEYWORDS[spec["scaling"]]
    lines += [f"scale_min_short {spec['scale_min']!r}", f"scale_max_short {spec['scale_max']!r}",
              f"global_hidden_layers_short {len(spec['hidden_layers'])}",
              "global_nodes_short " + " ".join(str(h) for h in spec["hidden_layers"]),
              "global_activation_short " + " ".join(_LETTER[a] for a in spec["activations"])]
    scaling_rows = []
    for k, z in enumerate(numbers):
        own = [f for f in functions if f.center == z]
        ordered = n2p2_sorted(own)
        order = [own.index(f) for f in ordered]  # n2p2 input position -> our column
        lines += [_line(f, to_unit) for f in ordered]
        prefix = f"potential.elements.{k}."
        stats = torch.stack([state[prefix + f"scaling.{name}"] for name in ("g_min", "g_max", "g_mean", "g_sigma")], 1)
        for position, column in enumerate(order):
            values = " ".join(f"{float(v):24.16E}" for v in stats[column])
            scaling_rows.append(f"{k + 1:10d} {position + 1:10d} {values}")
        weights: List[str] = []
        n_layers = len(spec["hidden_layers"]) + 1
        for layer in range(n_layers):
            weight = state[prefix + f"net.layers.{layer}.weight"]  # (n_out, n_in)
            bias = state[prefix + f"net.layers.{layer}.bias"]
            if layer == 0:
                weight = weight[:, order]
            for j in range(weight.shape[1]):
                for i in range(weight.shape[0]):
                    weights.append(f"{float(weight[i, j]):24.16E} a {len(weights) + 1:9d} {layer:5d} {j + 1:5d} "
                                   f"{layer + 1:5d} {i + 1:5d}")
            for i in range(bias.shape[0]):
                weights.append(f"{float(bias[i]):24.16E} b {len(weights) + 1:9d} {layer + 1:5d} {i + 1:5d}")
        (directory / f"weights.{z:03d}.data").write_text("\n".join(weights) + "\n")
    (directory / "input.nn").write_text("\n".join(lines) + "\n")
    (directory / "scaling.data").write_text("\n".join(scaling_rows) + "\n")
    return directory
