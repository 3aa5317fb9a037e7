"""Symmetry functions chosen from the training data: `symmetry_functions: {select: ...}`.

    symmetry_functions: {select: 57}                      # total, split over the elements
    symmetry_functions:
      select: {H: 27, O: 30}                              # or per element
      method: fps                                         # fps (default) | cur
      features: gradients                                 # gradients (default) | values | both
      pool: {n_shifted: 0, n_centred: 16, n_angular_eta: 4, zetas: [1, 2, 4, 16]}
      max_structures: 200                                 # evenly spaced subsample of the data

For every centre element, the candidates of bpnn_ts.function_pool are evaluated on the training
structures. Each candidate is a column, divided by its range (max - min of its values: what the
network's input scaling does; standardising by the standard deviation instead made spiky,
mostly-zero columns look the most independent, and the functions so chosen fitted forces 9x
worse on n2p2's water sample). Constant columns are dropped. The columns are compared through
a Gram matrix C of

  values     the centred values over the training environments, X^T X / n;
  gradients  their derivatives along PROBES random displacements of all atoms per structure
             (central differences), D^T D / n: how each function responds to moving atoms,
             which is what forces are fitted through (on n2p2's water sample, from the default
             pool: forces 0.97-1.09x the hand-made set's RMSE; with `values` and the 0.3 pool
             1.84x; docs/performance.md);
  both       the two, each normalised to trace 1, summed.

  fps  farthest-point sampling of the columns: start with CUR's first pick, then repeatedly the
       column farthest (Euclidean, d^2 = C_ii + C_jj - 2 C_ij) from those picked.
  cur  iterative CUR (Imbalzano et al., J. Chem. Phys. 148, 241730 (2018)): pick the column with
       the largest leverage score (squared component on the top right singular vector), make
       every column orthogonal to it (C <- C - C[:, c] C[c, :] / C[c, c]), repeat.

Both are deterministic and stop early, with fewer functions, where the data leave no new
direction (linearly dependent columns for CUR, duplicates for FPS). Every element keeps at least
one radial function per neighbour element: once the slots left equal the neighbour elements
still without one, only their radial functions may be picked. A total budget is split over the
elements in proportion to their pool sizes (largest remainders).
"""

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from ase import Atoms

from . import keys
from .config import parse_model_config
from .elements import symbol
from .errors import ConfigError
from .function_pool import candidate_pool, closest_pair_start
from .input_scaling import NEGLIGIBLE
from .model.cutoffs import CUTOFF_NAMES, cutoff_type_id
from .model.descriptors.params import RadialSF, SymmetryFunction, function_to_dict, n2p2_sorted
from .model.engine import BPNNModel
from .model.spec import ModelSpec
from .potential_sources import resolve_source
from .selection_config import parse_selection

PROBES = 4  # random displacement directions per structure for the gradient features
PROBE_STEP = 1e-5  # Å, central finite difference along each direction
TOLERANCE = 1e-10  # a residual (CUR) or distance (FPS) below this, relative to the largest, is no new direction


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# ---- the two selections, on the Gram matrix G = X^T X of the columns ----
def _candidates(n_columns: int, picked: List[int], n: int,
                required: Sequence[Sequence[int]]) -> Tuple[np.ndarray, List[Sequence[int]]]:
    """(columns that may be picked next, required groups still without a pick): any column not
    yet picked, or only those of the waiting groups once the slots left are no more than them."""
    missing = [group for group in required if not set(group) & set(picked)]
    allowed = np.zeros(n_columns, dtype=bool)
    if n - len(picked) <= len(missing):
        for group in missing:
            allowed[list(group)] = True
    else:
        allowed[:] = True
    allowed[picked] = False
    return allowed, missing


def _waiting(missing: List[Sequence[int]], picked: List[int]) -> Optional[int]:
    """The first column of the first group still waiting for its pick (None: no group waits)."""
    return next((int(c) for group in missing for c in group if c not in picked), None)


def _leverage(gram: np.ndarray, k: int) -> np.ndarray:
    """Leverage score of each column: squared components on the top k right singular vectors."""
    _, vectors = np.linalg.eigh(gram)  # ascending eigenvalues
    return (vectors[:, -k:] ** 2).sum(axis=1)


def cur_order(gram: np.ndarray, n: int, required: Sequence[Sequence[int]] = (), k: int = 1) -> List[int]:
    """Up to `n` columns by iterative CUR, given the Gram matrix `gram` (columns x columns) of X;
    `required`: groups of columns each of which must contribute one pick (n >= len(required))."""
    residual = np.array(gram, dtype=np.float64)
    scale = max(float(np.max(np.diag(residual), initial=0.0)), np.finfo(np.float64).tiny)
    picked: List[int] = []
    while len(picked) < min(n, len(residual)):
        allowed, missing = _candidates(len(residual), picked, n, required)
        live = allowed & (np.diag(residual) > TOLERANCE * scale)
        if not live.any():  # no new direction left: only a waiting group still gets its pick
            waiting = _waiting(missing, picked)
            if waiting is None:
                break
            picked.append(waiting)
            continue
        c = int(np.argmax(np.where(live, _leverage(residual, k), -1.0)))
        picked.append(c)
        residual = residual - np.outer(residual[:, c], residual[c, :]) / residual[c, c]
        residual = 0.5 * (residual + residual.T)
    return picked


def fps_order(gram: np.ndarray, n: int, required: Sequence[Sequence[int]] = ()) -> List[int]:
    """Up to `n` columns by farthest-point sampling (Euclidean distances between the columns of X,
    from its Gram matrix), starting from CUR's first pick; `required` as in `cur_order`."""
    gram = np.asarray(gram, dtype=np.float64)
    diagonal = np.diag(gram)
    scale = max(float(np.max(diagonal, initial=0.0)), np.finfo(np.float64).tiny)
    picked: List[int] = []
    nearest = np.where(diagonal > TOLERANCE * scale, np.inf, 0.0)  # squared distance to the closest pick
    while len(picked) < min(n, len(gram)):
        allowed, missing = _candidates(len(gram), picked, n, required)
        live = allowed & (nearest > TOLERANCE * scale)
        if not live.any():  # every column left duplicates a pick (or is zero)
            waiting = _waiting(missing, picked)
            if waiting is None:
                break
            picked.append(waiting)
            continue
        scores = _leverage(gram, 1) if not picked else nearest
        c = int(np.argmax(np.where(live, scores, -1.0)))
        picked.append(c)
        nearest = np.minimum(nearest, np.maximum(diagonal + diagonal[c] - 2.0 * gram[:, c], 0.0))
    return picked


def cur_select(matrix: np.ndarray, n: int, required: Sequence[Sequence[int]] = (), k: int = 1) -> List[int]:
    """Columns of `matrix` (rows: samples) picked by iterative CUR, in pick order."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return cur_order(matrix.T @ matrix, n, required, k)


def fps_select(matrix: np.ndarray, n: int, required: Sequence[Sequence[int]] = ()) -> List[int]:
    """Columns of `matrix` (rows: samples) picked by farthest-point sampling, in pick order."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return fps_order(matrix.T @ matrix, n, required)


# ---- descriptors of the candidates on the data ----
class _Moments:
    """Running mean and centred cross products of descriptor rows (Chan et al.'s pairwise update),
    their range, and the uncentred cross products of their directional derivatives (probe rows)."""

    def __init__(self, n_columns: int):
        self.count = 0
        self.mean = np.zeros(n_columns)
        self.cross = np.zeros((n_columns, n_columns))
        self.low = np.full(n_columns, np.inf)
        self.high = np.full(n_columns, -np.inf)
        self.probe_count = 0
        self.probe_cross = np.zeros((n_columns, n_columns))

    def add(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        self.low = np.minimum(self.low, rows.min(axis=0))
        self.high = np.maximum(self.high, rows.max(axis=0))
        mean = rows.mean(axis=0)
        centred = rows - mean
        delta, total = mean - self.mean, self.count + len(rows)
        self.cross += centred.T @ centred + np.outer(delta, delta) * self.count * len(rows) / total
        self.mean += delta * len(rows) / total
        self.count = total

    def add_probes(self, rows: np.ndarray) -> None:
        """Rows of dG/ds along random displacements s of all atoms (descriptor units per Å)."""
        self.probe_cross += rows.T @ rows
        self.probe_count += len(rows)

    def correlation(self, features: str = "values") -> Tuple[np.ndarray, np.ndarray]:
        """(Gram matrix of the informative columns, mask of informative columns). Each column is
        divided by its range max - min (as the network's scalecenter scaling sees it); a column is
        informative if its spread is more than rounding of its values and its range not negligible
        beside the widest column's (NEGLIGIBLE: values of ~1e-10 everywhere carry nothing, and
        fit_scaling would hold such a function constant). Scaling by the range, not
        the standard deviation, keeps spiky columns (rare large values over a near-constant
        background) from looking like the most independent ones. `features`: values (centred
        X^T X / n), gradients (the probe rows' D^T D / n: how the functions respond to moving
        atoms, which is what forces are fitted through) or both, each block with trace 1."""
        variance = np.diag(self.cross) / max(self.count, 1)
        std = np.sqrt(np.maximum(variance, 0.0))
        spread = self.high - self.low
        widest = float(spread.max()) if spread.size else 0.0
        informative = (std > 0) & (std > 1e-10 * np.sqrt(self.mean**2 + variance)) & (spread >= NEGLIGIBLE * widest)
        mask = np.ix_(informative, informative)
        scale = 1.0 / (self.high - self.low)[informative]
        blocks = []
        if features in ("values", "both"):
            blocks.append(self.cross[mask] * np.outer(scale, scale) / max(self.count, 1))
        if features in ("gradients", "both"):
            blocks.append(self.probe_cross[mask] * np.outer(scale, scale) / max(self.probe_count, 1))
        if len(blocks) == 1:
            return blocks[0], informative
        return sum(b / max(float(np.trace(b)), np.finfo(np.float64).tiny) for b in blocks), informative


def _moments(pool: Dict[int, List[SymmetryFunction]], structures: Sequence[Atoms], cutoff_type: int,
             cutoff_alpha: float, probes: int = 0) -> Dict[int, _Moments]:
    """The candidates' moments per centre element over `structures`, with `probes` random
    directional derivatives per structure (central differences, fixed seed) where asked."""
    elements = tuple(sorted(pool))
    functions = tuple(f for z in elements for f in pool[z])
    model = BPNNModel.from_spec(ModelSpec(elements, functions, (1,), ("tanh", "identity"), cutoff_type,
                                          cutoff_alpha)).eval()
    model.use_native_kernels(True)  # about 10x faster where the C++ kernels can be built; else the torch path
    moments = {z: _Moments(len(pool[z])) for z in elements}
    generator = np.random.default_rng(0)

    def descriptors(atoms: Atoms, positions: np.ndarray) -> np.ndarray:
        return model.compute_descriptors(torch.tensor(positions, dtype=torch.float64), torch.tensor(atoms.numbers),
                                         torch.tensor(np.asarray(atoms.cell.array)),
                                         torch.tensor(atoms.pbc))[keys.DESCRIPTORS].numpy()

    with torch.no_grad():
        for atoms in structures:
            g = descriptors(atoms, atoms.positions)
            slopes = [(descriptors(atoms, atoms.positions + PROBE_STEP * step)
                       - descriptors(atoms, atoms.positions - PROBE_STEP * step)) / (2 * PROBE_STEP)
                      for step in generator.standard_normal((probes, len(atoms), 3))]
            for z in elements:
                centres = atoms.numbers == z
                moments[z].add(g[centres, : len(pool[z])])
                for slope in slopes:
                    moments[z].add_probes(slope[centres, : len(pool[z])])
    return moments


def _radial_of(function: SymmetryFunction, neighbor: int) -> bool:
    return isinstance(function, RadialSF) and function.neighbor == neighbor


def _select_element(functions: List[SymmetryFunction], moments: _Moments, n: int, method: str,
                    neighbors: Sequence[int], features: str = "values") -> List[SymmetryFunction]:
    """`n` functions of one centre element (fewer where the data leave no new direction)."""
    correlation, informative = moments.correlation(features)
    columns = np.flatnonzero(informative)  # informative column -> pool index
    chosen: List[SymmetryFunction] = []
    groups = []
    for z in neighbors:
        radial = [k for k, c in enumerate(columns) if _radial_of(functions[c], z)]
        if radial:
            groups.append(radial)
        else:  # no neighbours z in the data's environments: keep its longest-ranged radial function
            chosen.append(min((f for f in functions if _radial_of(f, z)), key=lambda f: (f.eta, f.r_s)))
    order = (cur_order if method == "cur" else fps_order)(correlation, n - len(chosen), groups)
    return chosen + [functions[columns[k]] for k in order]


def _source_summary(source: Any, resolved: Dict[str, Any]) -> str:
    """A log line: how many functions per element came from `source`, with which cutoff."""
    functions = resolved["symmetry_functions"]
    centers = [f["center"] for f in functions]
    counts = ", ".join(f"{centers.count(name)} {name}" for name in dict.fromkeys(centers))
    kind = resolved["cutoff_function"]
    kind = kind if isinstance(kind, dict) else {"type": kind}
    type_id = cutoff_type_id(kind.get("type", "cos"))
    alpha = f", alpha {kind['alpha']:g}" if kind.get("alpha") else ""
    return (f"symmetry functions: {len(functions)} from {source} ({counts}); cutoff function "
            f"{CUTOFF_NAMES[type_id]} (n2p2 type {type_id}{alpha}), cutoff {float(resolved['cutoff']):.4g} Å")


def resolve_symmetry_functions(raw_model: Dict[str, Any], structures: Sequence[Atoms],
                               log: Callable[[str], None] = print, base: Union[str, Path] = ".") -> Dict[str, Any]:
    """The model config mapping `raw_model` with `symmetry_functions` made explicit: a
    `{select: ...}` chosen from `structures` (the training data), a `{from: ...}` read from its
    file (relative paths from `base`; with the source's scaling and atomic energies if asked).
    Other mappings are returned unchanged (as a copy). Then: parse_model_config(result)."""
    spec = raw_model.get("symmetry_functions", "auto") if isinstance(raw_model, dict) else None
    if isinstance(spec, dict) and "from" in spec:
        resolved = resolve_source(raw_model, base)
        log(_source_summary(spec["from"], resolved))
        return resolved
    if not (isinstance(spec, dict) and "select" in spec):
        return dict(raw_model) if isinstance(raw_model, dict) else raw_model  # parse_model_config explains
    config = parse_model_config(dict(raw_model, symmetry_functions="auto"))
    selection = parse_selection(spec, config.elements, config.cutoff)
    structures = list(structures)
    _require(bool(structures), "`symmetry_functions.select` chooses functions from training data, but none was given")
    if len(structures) > selection.max_structures:
        picks = np.unique(np.linspace(0, len(structures) - 1, selection.max_structures).round().astype(int))
        structures = [structures[k] for k in picks]
    started = time.perf_counter()
    pool_cutoff = selection.pool.cutoff or config.cutoff
    r_lower = closest_pair_start(structures, pool_cutoff) if selection.pool.r_lower is None else selection.pool.r_lower
    pool = candidate_pool(config.elements, config.cutoff, selection.pool, r_lower)
    moments = _moments(pool, structures, config.cutoff_type, config.cutoff_alpha,
                       0 if selection.features == "values" else PROBES)
    chosen: List[SymmetryFunction] = []
    for z in config.elements:
        _require(moments[z].count > 0, f"`symmetry_functions.select`: the training data has no {symbol(z)} atoms")
        picked = _select_element(pool[z], moments[z], min(selection.budget[z], len(pool[z])), selection.method,
                                 config.elements, selection.features)
        radial = sum(isinstance(f, RadialSF) for f in picked)
        log(f"symmetry functions of {symbol(z)}: {len(picked)} of {len(pool[z])} candidates by {selection.method} "
            f"on {selection.features} ({radial} radial, {len(picked) - radial} angular; {moments[z].count} environments)"
            + ("" if len(picked) == selection.budget[z] else
               f"; asked for {selection.budget[z]}, but the data support no more independent functions"))
        chosen += n2p2_sorted(picked)
    log(f"symmetry functions selected in {time.perf_counter() - started:.1f} s from {len(structures)} structures "
        f"(radial grids from r_lower = {r_lower:.2f} Å to {pool_cutoff:.4g} Å)")
    return dict(raw_model, symmetry_functions=[function_to_dict(f) for f in chosen])


def without_selection(raw_model: Dict[str, Any]) -> Dict[str, Any]:
    """`raw_model` with a `{select: ...}` replaced by `auto` once its options are checked: a
    provisional config to parse before the training data is read (resolve_symmetry_functions
    makes the real one)."""
    spec = raw_model.get("symmetry_functions") if isinstance(raw_model, dict) else None
    if not (isinstance(spec, dict) and "select" in spec):
        return raw_model
    config = parse_model_config(dict(raw_model, symmetry_functions="auto"))
    parse_selection(spec, config.elements, config.cutoff)
    return dict(raw_model, symmetry_functions="auto")
