"""The `symmetry_functions: {select: ...}` part of a model config, validated (the selection itself
is bpnn_ts/function_selection.py). Read by the model config (its mistakes first) and by the
selection."""

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence

from .elements import symbol, to_atomic_number
from .errors import ConfigError
from .function_pool import PoolOptions, pool_options

METHODS = ("cur", "fps")
FEATURES = ("values", "gradients", "both")
SELECT_KEYS = {"select", "method", "pool", "max_structures", "features"}


@dataclass(frozen=True)
class Selection:
    """A validated `{select: ...}`: functions per element, method, pool, data subsample."""

    budget: Dict[int, int]
    method: str = "fps"
    pool: PoolOptions = PoolOptions()
    max_structures: int = 200
    features: str = "gradients"


def parse_selection(spec: Mapping[str, Any], elements: Sequence[int], cutoff: float) -> Selection:
    """Validate a `symmetry_functions: {select: ...}` mapping (ConfigError naming the key)."""
    unknown = sorted(set(spec) - SELECT_KEYS)
    _require(not unknown, f"`symmetry_functions`: unknown keys {unknown} beside `select`; allowed: {sorted(SELECT_KEYS)}")
    method = spec.get("method", "fps")
    _require(method in METHODS, f"`symmetry_functions.method` must be one of {list(METHODS)}, got {method!r}")
    try:
        options = pool_options(spec.get("pool"))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"`symmetry_functions.pool`: {error}") from None
    features = spec.get("features", "gradients")
    _require(features in FEATURES, f"`symmetry_functions.features` must be one of {list(FEATURES)}, got {features!r}")
    most = spec.get("max_structures", 200)
    _require(isinstance(most, int) and not isinstance(most, bool) and most >= 1,
             f"`symmetry_functions.max_structures` must be an integer >= 1, got {most!r}")
    elements = sorted(elements)
    size, least = options.size(len(elements)), len(elements)  # one radial function per neighbour element
    budget = spec["select"]
    if isinstance(budget, Mapping):
        try:
            counts = {to_atomic_number(k): v for k, v in budget.items()}
        except (TypeError, ValueError) as error:
            raise ConfigError(f"`symmetry_functions.select`: {error}") from None
        stray = [symbol(z) for z in counts if z not in elements]
        _require(not stray, f"`symmetry_functions.select` names elements not in `elements`: {stray}")
        missing = [symbol(z) for z in elements if z not in counts]
        _require(not missing, f"`symmetry_functions.select` must give a count for every element; missing {missing}")
        for z, n in counts.items():
            _require(isinstance(n, int) and not isinstance(n, bool) and least <= n <= size,
                     f"`symmetry_functions.select.{symbol(z)}` must be an integer in [{least}, {size}] (at least one "
                     f"radial function per neighbour element, at most the pool's {size} candidates), got {n!r}")
        return Selection({z: counts[z] for z in elements}, method, options, most, features)
    _require(isinstance(budget, int) and not isinstance(budget, bool),
             f"`symmetry_functions.select` must be a number of functions or a mapping {{element: number}}, got {budget!r}")
    _require(budget >= least * len(elements),
             f"`symmetry_functions.select` must be at least {least * len(elements)} (one radial function per centre "
             f"and neighbour element), got {budget}")
    _require(budget <= size * len(elements),
             f"`symmetry_functions.select` {budget} exceeds the candidate pool ({size} per element); select fewer "
             "or enlarge `symmetry_functions.pool`")
    return Selection(split_budget(budget, {z: size for z in elements}, least), method, options, most, features)


def split_budget(total: int, sizes: Mapping[int, int], least: int) -> Dict[int, int]:
    """`total` functions over elements in proportion to `sizes` (largest remainders), each in [least, size]."""
    ideal = {z: total * n / sum(sizes.values()) for z, n in sizes.items()}
    counts = {z: min(sizes[z], max(least, int(ideal[z]))) for z in sizes}
    while sum(counts.values()) < total:
        z = max((z for z in sizes if counts[z] < sizes[z]), key=lambda z: ideal[z] - counts[z])
        counts[z] += 1
    while sum(counts.values()) > total:
        z = min((z for z in sizes if counts[z] > least), key=lambda z: ideal[z] - counts[z])
        counts[z] -= 1
    return counts


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
