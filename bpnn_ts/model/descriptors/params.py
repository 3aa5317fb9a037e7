"""Symmetry-function parameters (Behler 2011, n2p2's numbering), validated on construction.

Units: eta in Å^-2, r_s and r_c in Å. Elements are atomic numbers.
  radial   (n2p2 type 2): G_i = sum_j exp(-eta (r_ij - r_s)^2) f_c(r_ij)
  angular  (n2p2 type 3, "narrow", Behler's G4; type 9, "wide", Behler's G5):
    G_i = 2^(1-zeta) sum_{j<k} (1 + lambda cos theta_ijk)^zeta
          exp(-eta [(r_ij - r_s)^2 + (r_ik - r_s)^2 (+ (r_jk - r_s)^2 if narrow)])
          f_c(r_ij) f_c(r_ik) (f_c(r_jk) if narrow)
  with each unordered neighbour pair {j, k} counted once, as n2p2 does.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence, Tuple, Union

from ...elements import symbol, to_atomic_number

RADIAL = 2
ANGULAR_NARROW = 3
ANGULAR_WIDE = 9
_TYPE_NAMES = {"radial": RADIAL, "g2": RADIAL, "2": RADIAL,
               "angular_narrow": ANGULAR_NARROW, "narrow": ANGULAR_NARROW, "g4": ANGULAR_NARROW,
               "g3": ANGULAR_NARROW, "3": ANGULAR_NARROW,
               "angular_wide": ANGULAR_WIDE, "wide": ANGULAR_WIDE, "g5": ANGULAR_WIDE,
               "g9": ANGULAR_WIDE, "9": ANGULAR_WIDE}


def _check_common(eta: float, r_s: float, r_c: float) -> None:
    for name, value in (("eta", eta), ("r_s", r_s), ("r_c", r_c)):
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be finite, got {value}")
    if eta < 0:
        raise ValueError(f"`eta` must be >= 0 (Å^-2), got {eta}")
    if r_c <= 0:
        raise ValueError(f"`r_c` must be > 0 (Å), got {r_c}")
    if r_s < 0 or r_s >= r_c:
        raise ValueError(f"`r_s` must be in [0, r_c={r_c}) Å, got {r_s}")


@dataclass(frozen=True)
class RadialSF:
    """Radial function G2 of a `center` atom over neighbours of element `neighbor`."""

    center: int
    neighbor: int
    eta: float
    r_s: float
    r_c: float

    def __post_init__(self) -> None:
        _check_common(self.eta, self.r_s, self.r_c)

    @property
    def kind(self) -> int:
        return RADIAL

    def n2p2_key(self) -> Tuple:
        """n2p2's sort key after the centre element (FORMAT.md, "SF ordering")."""
        return (RADIAL, self.r_c, self.eta, self.r_s, 0.0, 0.0, self.neighbor, 0)

    def scaled(self, length: float) -> "RadialSF":
        """The same function with lengths multiplied by `length` (unit conversion)."""
        return RadialSF(self.center, self.neighbor, self.eta / length**2, self.r_s * length,
                        self.r_c * length)


@dataclass(frozen=True)
class AngularSF:
    """Angular function (narrow G4 / wide G5) of `center` over neighbour pairs {e1, e2}."""

    center: int
    neighbors: Tuple[int, int]
    eta: float
    zeta: float
    lambda_: float
    r_s: float
    r_c: float
    narrow: bool = True

    def __post_init__(self) -> None:
        _check_common(self.eta, self.r_s, self.r_c)
        if not (math.isfinite(self.zeta) and self.zeta >= 1.0):
            raise ValueError(f"`zeta` must be >= 1, got {self.zeta}")
        if self.lambda_ not in (-1.0, 1.0):
            raise ValueError(f"`lambda` must be -1 or +1, got {self.lambda_}")
        if len(self.neighbors) != 2:
            raise ValueError(f"`neighbors` must name two elements, got {self.neighbors}")
        object.__setattr__(self, "neighbors", tuple(sorted(self.neighbors)))

    @property
    def kind(self) -> int:
        return ANGULAR_NARROW if self.narrow else ANGULAR_WIDE

    def n2p2_key(self) -> Tuple:
        return (self.kind, self.r_c, self.eta, self.r_s, self.zeta, self.lambda_,
                self.neighbors[0], self.neighbors[1])

    def scaled(self, length: float) -> "AngularSF":
        return AngularSF(self.center, self.neighbors, self.eta / length**2, self.zeta,
                         self.lambda_, self.r_s * length, self.r_c * length, self.narrow)


SymmetryFunction = Union[RadialSF, AngularSF]


def n2p2_sorted(functions: Iterable[SymmetryFunction]) -> List[SymmetryFunction]:
    """Functions in n2p2's network-input order (per centre element; FORMAT.md)."""
    return sorted(functions, key=lambda f: (f.center,) + f.n2p2_key())


def function_from_dict(spec: Dict[str, Any], default_r_c: float) -> SymmetryFunction:
    """One function from a config mapping, e.g.
    {type: radial, center: O, neighbor: H, eta: 0.5, r_s: 1.0} or
    {type: narrow, center: O, neighbors: [H, H], eta: 0.01, zeta: 4, lambda: -1}."""
    if not isinstance(spec, dict):
        raise ValueError(f"a symmetry function must be a mapping, got {spec!r}")
    allowed = {"type", "center", "neighbor", "neighbors", "eta", "r_s", "r_c", "zeta", "lambda"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"symmetry function {spec}: unknown keys {sorted(unknown)}; "
                         f"allowed: {sorted(allowed)}")
    kind_name = str(spec.get("type", "")).lower()
    if kind_name not in _TYPE_NAMES:
        raise ValueError(f"symmetry function {spec}: `type` must be one of "
                         f"radial, narrow, wide (or g2/g4/g5, 2/3/9), got {spec.get('type')!r}")
    kind = _TYPE_NAMES[kind_name]
    try:
        center = to_atomic_number(spec["center"])
        eta = float(spec["eta"])
        r_s = float(spec.get("r_s", 0.0))
        r_c = float(spec.get("r_c", default_r_c))
        if kind == RADIAL:
            neighbor = spec.get("neighbor", spec.get("neighbors"))
            if isinstance(neighbor, (list, tuple)):
                (neighbor,) = neighbor
            return RadialSF(center, to_atomic_number(neighbor), eta, r_s, r_c)
        pair = spec["neighbors"]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"`neighbors` must list two elements, got {pair!r}")
        return AngularSF(center, (to_atomic_number(pair[0]), to_atomic_number(pair[1])), eta,
                         float(spec["zeta"]), float(spec["lambda"]), r_s, r_c,
                         narrow=kind == ANGULAR_NARROW)
    except KeyError as missing:
        raise ValueError(f"symmetry function {spec}: missing key {missing}") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"symmetry function {spec}: {error}") from None


def function_to_dict(function: SymmetryFunction) -> Dict[str, Any]:
    """Inverse of `function_from_dict` (symbols, floats)."""
    if isinstance(function, RadialSF):
        return {"type": "radial", "center": symbol(function.center),
                "neighbor": symbol(function.neighbor), "eta": function.eta,
                "r_s": function.r_s, "r_c": function.r_c}
    return {"type": "narrow" if function.narrow else "wide", "center": symbol(function.center),
            "neighbors": [symbol(z) for z in function.neighbors], "eta": function.eta,
            "zeta": function.zeta, "lambda": function.lambda_, "r_s": function.r_s,
            "r_c": function.r_c}


def radial_grid(cutoff: float, count: int, style: str = "shifted",
                r_lower: float = 0.5) -> List[Tuple[float, float]]:
    """(eta, r_s) pairs of a radial grid, in the two styles of n2p2's parameter
    generator: "shifted" (Gaussians of equal width centred on r_lower..cutoff) or
    "centred" (r_s = 0, widths spread over r_lower..cutoff)."""
    if count < 1:
        raise ValueError(f"radial function count must be >= 1, got {count}")
    if not 0 <= r_lower < cutoff:
        raise ValueError(f"`r_lower` must be in [0, cutoff={cutoff}), got {r_lower}")
    if style == "shifted":
        step = (cutoff - r_lower) / count
        return [(1.0 / (2.0 * step * step), r_lower + k * step) for k in range(count)]
    if style in ("centred", "centered"):
        widths = [r_lower + (cutoff - r_lower) * (k + 1) / count for k in range(count)]
        return [(1.0 / (2.0 * w * w), 0.0) for w in widths]
    raise ValueError(f"radial grid style must be 'shifted' or 'centred', got {style!r}")


def auto_symmetry_functions(
    elements: Sequence[int], cutoff: float, n_radial: int = 0, style: str = "shifted",
    angular_eta: Sequence[float] = (), zetas: Sequence[float] = (1.0, 4.0),
    lambdas: Sequence[float] = (-1.0, 1.0), narrow: bool = False, r_lower: float = 0.5,
) -> List[SymmetryFunction]:
    """A default set for every centre element: `n_radial` radial functions per
    neighbour element and len(angular_eta)*len(zetas)*len(lambdas) angular
    functions per neighbour-element pair. With n_radial = 0 / angular_eta empty,
    sizes are chosen to give about 30 functions per element."""
    elements = sorted(elements)
    n_pairs = len(elements) * (len(elements) + 1) // 2
    if n_radial <= 0:
        n_radial = max(4, min(10, 16 // len(elements)))
    if not angular_eta:
        n_angular_total = max(4, 30 - n_radial * len(elements))
        n_eta = max(1, round(n_angular_total / (n_pairs * len(zetas) * len(lambdas))))
        # Gaussians of width ~cutoff/2 .. cutoff, in Å^-2
        angular_eta = [1.0 / (2.0 * (cutoff * (0.5 + 0.5 * k / max(1, n_eta - 1))) ** 2)
                       for k in range(n_eta)] if n_eta > 1 else [1.0 / (2.0 * (0.5 * cutoff) ** 2)]
    functions: List[SymmetryFunction] = []
    for center in elements:
        for neighbor in elements:
            for eta, r_s in radial_grid(cutoff, n_radial, style, r_lower):
                functions.append(RadialSF(center, neighbor, eta, r_s, cutoff))
        for a, first in enumerate(elements):
            for second in elements[a:]:
                for eta in angular_eta:
                    for zeta in zetas:
                        for lambda_ in lambdas:
                            functions.append(AngularSF(center, (first, second), float(eta),
                                                       float(zeta), float(lambda_), 0.0, cutoff,
                                                       narrow))
    return functions
