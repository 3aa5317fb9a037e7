"""Candidate symmetry functions for data-driven selection (bpnn_ts.function_selection), in the
styles of n2p2's symmetry-function parameter generator (sfparamgen). For every centre element:

  radial, per neighbour element:
    shifted grid  `n_shifted` Gaussians of one width centred on r_lower .. r_c
                  (r_s = r_lower + k dr, dr = (r_c - r_lower) / n, eta = 1 / (2 dr^2))
    centred grid  `n_centred` Gaussians at r_s = 0 (eta = 1 / (2 w_k^2)) of widths w_k
                  geometric (`centred_widths: geometric`, the default) from 0.75 r_lower to 2 r_c,
                  w_k = w_0 q^k, as hand-made sets space them (n2p2's water: 0.3 to 12 Å); or
                  linear (sfparamgen's centred style) w_k = r_lower + (k + 1) dr
  angular, per neighbour-element pair: every kind in `angular` (narrow: n2p2 type 3, wide:
    type 9), r_s = 0, eta from a centred grid of `n_angular_eta` widths, every zeta in `zetas`,
    every lambda in `lambdas`.

Defaults: 16 centred radial functions (no shifted ones) per neighbour element and 4 eta x 4 zeta
x 2 lambda x 2 kinds = 64 angular functions per neighbour pair: 224 candidates per element with
two elements (80 with one, 432 with three). On n2p2's water sample, selections from this pool fit
forces about as well as n2p2's hand-made set; with 16 shifted + 16 linearly spaced centred
Gaussians (the 0.3 default) they fitted 1.2-1.5x worse: farthest-point sampling favours the
narrow shifted Gaussians, whose derivatives differ most, over the smooth centred ones that the
networks fit forces through (docs/performance.md). Lengths in Å, eta in Å^-2.
"""

import math
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ase import Atoms

from .model.descriptors.params import AngularSF, RadialSF, SymmetryFunction, radial_grid

ANGULAR_KINDS = ("narrow", "wide")
WIDTH_SPACINGS = ("geometric", "linear")
NARROWEST = 0.75  # the narrowest centred width, in units of r_lower (half the closest pair distance)
WIDEST = 2.0  # the widest centred width, in units of the cutoff (flat over the cutoff sphere)


@dataclass(frozen=True)
class PoolOptions:
    """How many candidates of each kind (see the module docstring); `r_lower` (Å) None: half
    the closest pair distance of the data; `cutoff` (Å) None: the model's cutoff."""

    n_shifted: int = 0
    n_centred: int = 16
    centred_widths: str = "geometric"
    n_angular_eta: int = 4
    zetas: Tuple[float, ...] = (1.0, 2.0, 4.0, 16.0)
    lambdas: Tuple[float, ...] = (-1.0, 1.0)
    angular: Tuple[str, ...] = ANGULAR_KINDS
    r_lower: Optional[float] = None
    cutoff: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("n_shifted", "n_centred", "n_angular_eta"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")
        if self.n_shifted + self.n_centred < 1:
            raise ValueError("`n_shifted` + `n_centred` must be >= 1: every element needs radial candidates")
        if self.centred_widths not in WIDTH_SPACINGS:
            raise ValueError(f"`centred_widths` must be one of {list(WIDTH_SPACINGS)}, got {self.centred_widths!r}")
        object.__setattr__(self, "zetas", _numbers(self.zetas, "zetas"))
        object.__setattr__(self, "lambdas", _numbers(self.lambdas, "lambdas"))
        if any(z < 1.0 for z in self.zetas):
            raise ValueError(f"`zetas` must all be >= 1, got {list(self.zetas)}")
        if any(v not in (-1.0, 1.0) for v in self.lambdas):
            raise ValueError(f"`lambdas` must be -1 and/or +1, got {list(self.lambdas)}")
        angular = (self.angular,) if isinstance(self.angular, str) else tuple(self.angular)
        if any(kind not in ANGULAR_KINDS for kind in angular):
            raise ValueError(f"`angular` must list kinds out of {list(ANGULAR_KINDS)}, got {list(angular)}")
        object.__setattr__(self, "angular", angular)
        for name in ("r_lower", "cutoff"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and math.isfinite(value) and value >= (0.0 if name == "r_lower" else 1e-9)):
                raise ValueError(f"`{name}` must be a {'number >= 0' if name == 'r_lower' else 'positive number'} "
                                 f"(Å), got {value!r}")

    @property
    def n_angular(self) -> int:
        """Angular candidates per neighbour-element pair."""
        return self.n_angular_eta * len(self.zetas) * len(self.lambdas) * len(self.angular)

    def size(self, n_elements: int) -> int:
        """Candidates per centre element in a model of `n_elements` elements."""
        n_pairs = n_elements * (n_elements + 1) // 2
        return n_elements * (self.n_shifted + self.n_centred) + n_pairs * self.n_angular


def _numbers(values: Any, name: str) -> Tuple[float, ...]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"`{name}` must be a list of numbers, got {values!r}")
    return tuple(float(v) for v in values)


def pool_options(mapping: Optional[Mapping[str, Any]]) -> PoolOptions:
    """PoolOptions from a config mapping (ValueError naming unknown keys or bad values)."""
    mapping = mapping or {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"must be a mapping of pool options, got {mapping!r}")
    allowed = sorted(f.name for f in fields(PoolOptions))
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValueError(f"unknown keys {unknown}; allowed: {allowed}")
    return PoolOptions(**dict(mapping))


def closest_pair_start(structures: Sequence[Atoms], cutoff: float) -> float:
    """Half the shortest interatomic distance in `structures` (Å, rounded down to 0.05; 0.5 if no
    pair is within the cutoff): where the radial grids start (as automatic functions do)."""
    from ase.neighborlist import neighbor_list
    shortest = cutoff
    for atoms in structures:
        distances = neighbor_list("d", atoms, cutoff)
        if len(distances):
            shortest = min(shortest, float(distances.min()))
    return max(0.0, math.floor(0.5 * shortest / 0.05) * 0.05) if shortest < cutoff else 0.5


def geometric_centred_grid(cutoff: float, count: int, r_lower: float) -> List[Tuple[float, float]]:
    """(eta, 0) of `count` centred Gaussians with widths geometric from NARROWEST r_lower (or
    0.05 cutoff if r_lower is 0) to WIDEST cutoff (Å; eta = 1 / (2 w^2) in Å^-2)."""
    first = NARROWEST * r_lower if r_lower > 0 else 0.05 * cutoff
    last = WIDEST * cutoff
    widths = [first * (last / first) ** (k / max(count - 1, 1)) for k in range(count)]
    return [(1.0 / (2.0 * w * w), 0.0) for w in widths]


def candidate_pool(elements: Sequence[int], cutoff: float, options: Optional[PoolOptions] = None,
                   r_lower: float = 0.5) -> Dict[int, List[SymmetryFunction]]:
    """{centre Z: candidates}, radial (per neighbour: shifted grid, centred grid) then angular
    (per neighbour pair, kind, eta, zeta, lambda); `options.cutoff` / `options.r_lower`, where
    set, override `cutoff` / `r_lower`."""
    options = options or PoolOptions()
    elements = sorted(int(z) for z in elements)
    r_c = float(options.cutoff if options.cutoff is not None else cutoff)
    start = float(options.r_lower if options.r_lower is not None else r_lower)
    if not 0.0 <= start < r_c:
        raise ValueError(f"`r_lower` must be in [0, cutoff={r_c}) Å, got {start}")
    radial = radial_grid(r_c, options.n_shifted, "shifted", start) if options.n_shifted else []
    if options.n_centred:
        radial += (geometric_centred_grid(r_c, options.n_centred, start) if options.centred_widths == "geometric"
                   else radial_grid(r_c, options.n_centred, "centred", start))
    angular_eta = [eta for eta, _ in radial_grid(r_c, options.n_angular_eta, "centred", start)] \
        if options.n_angular_eta else []
    pool: Dict[int, List[SymmetryFunction]] = {}
    for center in elements:
        functions: List[SymmetryFunction] = [RadialSF(center, neighbor, eta, r_s, r_c)
                                             for neighbor in elements for eta, r_s in radial]
        for a, first in enumerate(elements):
            for second in elements[a:]:
                for kind in options.angular:
                    functions += [AngularSF(center, (first, second), eta, zeta, lambda_, 0.0, r_c, kind == "narrow")
                                  for eta in angular_eta for zeta in options.zetas for lambda_ in options.lambdas]
        pool[center] = list(dict.fromkeys(functions))  # drop coinciding grid points, keep the order
    return pool
