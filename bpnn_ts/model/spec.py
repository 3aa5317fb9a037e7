"""ModelSpec: a model's architecture, written once. Everything that builds, rebuilds, folds or
describes a model (config files, n2p2 import, committees, checkpoints, provenance, the model
file's `model_spec()`) goes through it (`BPNNModel.from_spec(spec)` builds one); its JSON form
is the provenance record "model"."""

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Sequence, Tuple

from ..elements import symbol
from .cutoffs import CUTOFF_NAMES
from .descriptors.params import RadialSF, SymmetryFunction, function_from_dict, function_to_dict
from .descriptors.scaling import SCALING_TYPES
from .nn import activation_code


@dataclass(frozen=True)
class ModelSpec:
    """The architecture of a BPNN: E = sum_i [energy_scale * NN_{Z_i}(scaled G_i) + shift_{Z_i}].

    atomic_numbers: the elements, ascending. functions: symmetry functions of every element (each
    knows its centre; a centre element's functions in this order are its network's inputs).
    hidden_layers, activations: one activation per hidden layer and one for the output layer.
    cutoff_type (n2p2's 0-8), cutoff_alpha: the cutoff function. scaling, scale_min, scale_max:
    n2p2's input scaling. energy_scale: network output -> eV. atomic_energy_shift: eV per atom of
    each element (reference energies; missing elements: 0). committee_size: networks per element.
    """

    atomic_numbers: Tuple[int, ...]
    functions: Tuple[SymmetryFunction, ...]
    hidden_layers: Tuple[int, ...]
    activations: Tuple[str, ...]
    cutoff_type: int = 1
    cutoff_alpha: float = 0.0
    scaling: str = "none"
    scale_min: float = 0.0
    scale_max: float = 1.0
    energy_scale: float = 1.0
    atomic_energy_shift: Mapping[int, float] = field(default_factory=dict)
    committee_size: int = 1

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("atomic_numbers", tuple(int(z) for z in self.atomic_numbers))
        set_("functions", tuple(self.functions))
        set_("hidden_layers", tuple(int(h) for h in self.hidden_layers))
        set_("activations", tuple(str(a) for a in self.activations))
        shifts = {int(z): float(e) for z, e in dict(self.atomic_energy_shift).items()}
        numbers = list(self.atomic_numbers)
        if not numbers or numbers != sorted(set(numbers)):
            raise ValueError(f"`atomic_numbers` must be distinct, ascending and not empty, got {numbers}")
        names = [symbol(z) for z in numbers]
        unknown = sorted({z for f in self.functions for z in elements_of(f)} - set(numbers))
        if unknown:
            raise ValueError(f"symmetry functions use elements {[symbol(z) for z in unknown]} "
                             f"that are not in the model's elements {names}")
        for z in numbers:
            if not any(f.center == z for f in self.functions):
                raise ValueError(f"element {symbol(z)} has no symmetry functions (every element needs at least one)")
        extra = sorted(set(shifts) - set(numbers))
        if extra:
            raise ValueError(f"atomic energies given for elements {[symbol(z) for z in extra]} not in the model {names}")
        set_("atomic_energy_shift", {z: shifts.get(z, 0.0) for z in numbers})  # every element, so JSON round-trips
        if any(h < 1 for h in self.hidden_layers):
            raise ValueError(f"`hidden_layers` must be positive, got {list(self.hidden_layers)}")
        if len(self.activations) != len(self.hidden_layers) + 1:
            raise ValueError(f"need {len(self.hidden_layers) + 1} activations (hidden layers + output), "
                             f"got {list(self.activations)}")
        for name in self.activations:
            activation_code(name)
        if self.cutoff_type not in CUTOFF_NAMES:
            raise ValueError(f"`cutoff_type` must be one of {sorted(CUTOFF_NAMES)} (n2p2's numbers), got {self.cutoff_type}")
        if not 0.0 <= self.cutoff_alpha < 1.0:
            raise ValueError(f"`cutoff_alpha` must be in [0, 1), got {self.cutoff_alpha}")
        if self.scaling not in SCALING_TYPES:
            raise ValueError(f"`scaling` must be one of {sorted(SCALING_TYPES)}, got {self.scaling!r}")
        if not (math.isfinite(self.energy_scale) and self.energy_scale != 0.0):
            raise ValueError(f"`energy_scale` must be finite and non-zero, got {self.energy_scale}")
        if self.committee_size < 1:
            raise ValueError(f"`committee_size` must be >= 1, got {self.committee_size}")

    @property
    def cutoff(self) -> float:
        """The largest symmetry-function cutoff, Å."""
        return float(max(f.r_c for f in self.functions))

    def functions_of(self, center: int) -> Tuple[SymmetryFunction, ...]:
        """The functions of centre element `center`, in input order."""
        return tuple(f for f in self.functions if f.center == center)

    def replace(self, **changes: Any) -> "ModelSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready form (the provenance record "model")."""
        return {"atomic_numbers": list(self.atomic_numbers), "functions": [function_to_dict(f) for f in self.functions],
                "hidden_layers": list(self.hidden_layers), "activations": list(self.activations),
                "cutoff_type": self.cutoff_type, "cutoff_alpha": self.cutoff_alpha, "scaling": self.scaling,
                "scale_min": self.scale_min, "scale_max": self.scale_max, "energy_scale": self.energy_scale,
                "atomic_energy_shift": {str(z): e for z, e in self.atomic_energy_shift.items()},
                "committee_size": self.committee_size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        """Inverse of `to_dict` (also reads the "model" records of format-1 files)."""
        try:
            return cls(tuple(data["atomic_numbers"]), tuple(function_from_dict(f, 0.0) for f in data["functions"]),
                       tuple(data["hidden_layers"]), tuple(data["activations"]), int(data["cutoff_type"]),
                       float(data["cutoff_alpha"]), str(data["scaling"]), float(data["scale_min"]),
                       float(data["scale_max"]), float(data["energy_scale"]),
                       {int(z): float(e) for z, e in data.get("atomic_energy_shift", {}).items()},
                       int(data.get("committee_size", 1)))
        except KeyError as missing:
            raise ValueError(f"model spec lacks the entry {missing}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls.from_dict(json.loads(text))


def elements_of(function: SymmetryFunction) -> Sequence[int]:
    """The elements a function involves: its centre and neighbour(s)."""
    if isinstance(function, RadialSF):
        return [function.center, function.neighbor]
    return [function.center, *function.neighbors]
