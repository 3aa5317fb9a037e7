"""Symmetry-function statistics from data (`descriptor_statistics`), and the model's input
scaling set from them (`fit_scaling`)."""

import copy
from typing import Any, Dict, Iterable, List, Optional

import torch
from ase import Atoms

from . import keys
from .elements import symbol
from .model.descriptors.params import function_to_dict
from .model.engine import BPNNModel
from .model.spec import ModelSpec
from .precision import input_dtype


def descriptor_statistics(model: Any, structures: Iterable[Atoms]) -> Dict[int, torch.Tensor]:
    """{Z: (n_functions, 4) [Gmin, Gmax, Gmean, sigma]} over every atom of `structures`
    (`model`: a BPNNModel, eager or a loaded TorchScript file). One pass; memory independent of
    the number of structures (the structures' statistics are merged as they come: Chan et al.'s
    pairwise update of mean and sum of squared deviations). An eager model without the fused
    kernels is evaluated through a copy with them where they build (16x faster on mlearn's Ge)."""
    model = with_kernels(model)
    dtype = input_dtype(model)
    numbers_of = [int(z) for z in model.atomic_numbers()]
    widths = n_functions(model)
    running: Dict[int, List[torch.Tensor]] = {}  # Z -> [count, min, max, mean, M2]
    for atoms in structures:
        out = model.compute_descriptors(
            torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
            torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc))
        g = out[keys.DESCRIPTORS].to(torch.float64)
        numbers = torch.tensor(atoms.numbers)
        for k, z in enumerate(numbers_of):
            rows = g[numbers == z, : widths[k]]
            if rows.shape[0] > 0:
                running[z] = _merged(running.get(z), rows)
    statistics: Dict[int, torch.Tensor] = {}
    for z in numbers_of:
        if z not in running:
            raise ValueError(f"no atoms of element Z={z} in the data: cannot compute its scaling statistics")
        count, g_min, g_max, mean, m2 = running[z]
        statistics[z] = torch.stack([g_min, g_max, mean, (m2 / count).sqrt()], dim=1)
    return statistics


def with_kernels(model: Any) -> Any:
    """`model`, or, for an eager BPNNModel without the fused kernels, an eval-mode copy with them
    (where they build): what passes over whole data sets run through."""
    if isinstance(model, BPNNModel) and not model.uses_native_kernels():
        fast = copy.deepcopy(model).eval()
        if fast.use_native_kernels(True):
            return fast
    return model


def n_functions(model: Any) -> List[int]:
    """Symmetry functions per element of `model`, from its architecture."""
    spec = ModelSpec.from_json(model.model_spec())
    return [len(spec.functions_of(int(z))) for z in spec.atomic_numbers]


def _merged(state: Optional[List[torch.Tensor]], rows: torch.Tensor) -> List[torch.Tensor]:
    """[count, min, max, mean, M2] of the rows seen so far (`state`) and `rows` (n, F)."""
    n = torch.tensor(float(rows.shape[0]), dtype=torch.float64)
    mean = rows.mean(0)
    m2 = ((rows - mean) ** 2).sum(0)
    if state is None:
        return [n, rows.min(0).values, rows.max(0).values, mean, m2]
    count, g_min, g_max, old_mean, old_m2 = state
    total = count + n
    delta = mean - old_mean
    return [total, torch.minimum(g_min, rows.min(0).values), torch.maximum(g_max, rows.max(0).values),
            old_mean + delta * n / total, old_m2 + m2 + delta ** 2 * count * n / total]


NEGLIGIBLE = 1e-8  # a function whose range is below this x its element's widest carries no information


def fit_scaling(model: BPNNModel, structures: Iterable[Atoms],
                negligible: Optional[float] = None) -> Dict[int, torch.Tensor]:
    """Set every element's scaling statistics (and so its training range) from `structures`;
    returns them. Functions whose range over the data is below `negligible` x the widest of
    their element's (wide angular functions can stay at 1e-140 over a whole data set) are held
    constant: scaled to a spread of ~1, such values follow round-off and the closest triplet
    alone, and their steep derivatives made forces and training unstable (mlearn's Ge set).
    `negligible` None: NEGLIGIBLE; 0: every function is scaled, as n2p2 does (`held_constant`
    lists the functions held)."""
    statistics = descriptor_statistics(model, structures)
    model.set_scaling_statistics(statistics, NEGLIGIBLE if negligible is None else negligible)
    return statistics


EXTREME = 1e3  # scaled |G| per unit of relative change above which an input is reported (mlearn, water: <= 40)


def held_constant(model: BPNNModel) -> Dict[int, List[int]]:
    """{Z: [function index, ...]} of the functions whose input scaling holds them constant though
    their training range is not empty (negligible functions; see fit_scaling)."""
    statistics, factors = model.scaling_statistics(), model.scaling_factors()
    return {z: [k for k in range(len(factors[z])) if factors[z][k] == 0 and statistics[z][k, 1] > statistics[z][k, 0]]
            for z in factors}


def amplifications(model: BPNNModel) -> Dict[int, torch.Tensor]:
    """{Z: (n_functions,)} factor x max(|Gmin|, |Gmax|): how far the network's input moves for a
    relative change of 1 in the function's value. Near-constant functions (values c +- 1e-7 c)
    get huge ones: a structure slightly outside the data then feeds the network an input of
    thousands of spreads. Up to ~40 on mlearn's Ge and Li and on n2p2's water."""
    statistics, factors = model.scaling_statistics(), model.scaling_factors()
    return {z: factors[z].abs() * statistics[z][:, :2].abs().max(dim=1).values for z in factors}


def scaling_report(model: BPNNModel) -> List[str]:
    """Lines for the training log: the functions held constant (negligible range) and those whose
    amplification exceeds EXTREME, each named by element, index among the element's functions
    (its network's input order) and parameters."""
    spec = ModelSpec.from_json(model.model_spec())
    lines = []
    held, amplified, factors = held_constant(model), amplifications(model), model.scaling_factors()
    divides = spec.scaling in ("scale", "scalecenter", "sigma")  # (none and center never amplify)
    for z in held:
        functions = spec.functions_of(z)
        if held[z]:
            lines.append(f"input scaling: {len(held[z])} of {len(functions)} {symbol(z)} functions vary by less than "
                         f"{NEGLIGIBLE:g} x the widest over the training data and are held constant (network input 0): "
                         f"{', '.join(str(k) for k in held[z])}")
        extreme = torch.nonzero(amplified[z] > EXTREME).flatten().tolist() if divides else []
        for k in extreme:
            described = ", ".join(f"{key} {value}" for key, value in function_to_dict(functions[k]).items())
            lines.append(f"warning: input scaling multiplies {symbol(z)} function {k} ({described}) by "
                         f"{float(factors[z][k]):.3g}: a 1 % change of its value moves the network's "
                         f"input by {0.01 * float(amplified[z][k]):.3g} (near-constant over the training data; "
                         "consider `scaling: true` with an imported potential, other functions, or more varied data)")
    return lines
