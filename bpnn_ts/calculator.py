"""ASE calculator for a bpnn_ts model: an exported file, a loaded script module or a live model."""

import sys
import warnings
import weakref
from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from . import graph_optimizer, keys
from .errors import error_message, user_stacklevel
from .export import load
from .extrapolation import ExtrapolationPolicy
from .formats.pt2 import Pt2Model
from .precision import check_precision, input_dtype, set_precision
from .threads import check_threads


class CloseAtomsWarning(UserWarning):
    """Two atoms closer than the calculator's `min_distance`: the structure is probably broken."""


UNCERTAINTY_PROPERTIES = ["energy_uncertainty", "energies_uncertainty", "forces_uncertainty"]


class BPNNCalculator(Calculator):
    """energy, free_energy (= energy), energies, forces (eV/Å), stress (eV/Å^3, ASE Voigt order);
    results["extrapolation"]: per atom, how many symmetry functions are outside the training range.
    Committee models (bpnn_ts.build_committee) also give energy_uncertainty (eV), energies_uncertainty
    (eV per atom) and forces_uncertainty (eV/Å per atom), the members' spreads, with
    results["committee_energy"] (K,) and ["committee_forces"] (K, N, 3): in every call with
    `uncertainty=True` (one force contraction per member: 4.6x a step's cost at K = 8), else
    when asked for (calc.get_property("forces_uncertainty", atoms)).

    model: path of an exported model file, or a BPNNModel (scripted or eager).
    extrapolation: "warn" (an ExtrapolationWarning naming the atoms, at most once every
    `extrapolation_every` extrapolating calls and whenever their number is a new high), "stop"
    (raise ExtrapolationError when more than `extrapolation_stop_above` atoms extrapolate, default
    0: any; fewer are warned about) or "ignore" (no counting, no cost). None: "warn" if the model
    knows its training range, else "ignore". If any call extrapolated, a one-line summary (calls,
    the worst call) goes to stderr when the calculator is released or the process ends.
    min_distance (Å): a CloseAtomsWarning naming the closest pair when it is closer (at most once
    every `extrapolation_every` such calls); atoms closer than 1e-6 Å are an error.
    device: "cpu", "cuda", ...; dtype: "float64", "float32" or "mixed" (bpnn_ts/precision.py)
    to convert the model to, else its own.
    threads: intra-op threads of each evaluation (default 1: never slow on a busy machine; more
    where the cores are yours; None: torch's process-wide setting), bpnn_ts/threads.py.
    TorchScript's graph optimiser is off for the calculator's calls (no seconds of warm-up; the
    environment variable BPNN_GRAPH_OPTIMIZER=on turns it on), bpnn_ts/graph_optimizer.py.
    """

    implemented_properties: List[str] = ["energy", "free_energy", "energies", "forces", "stress"] + UNCERTAINTY_PROPERTIES

    def __init__(self, model: Union[str, Path, torch.nn.Module], device: Union[str, torch.device] = "cpu",
                 dtype: Optional[str] = None, extrapolation: Optional[str] = None,
                 extrapolation_every: int = 100, min_distance: float = 0.5, uncertainty: bool = False,
                 threads: Optional[int] = 1, extrapolation_stop_above: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.threads = check_threads(threads)
        self.graph_optimizer = graph_optimizer.enabled()
        if dtype is not None:
            check_precision(dtype, "dtype")
        self.device = torch.device(device)
        if not isinstance(model, (str, Path, torch.nn.Module)):
            raise TypeError(f"`model` must be a model file path or a torch module, got {type(model).__name__}")
        module: Any = load(model, self.device) if isinstance(model, (str, Path)) else model
        module = module.to(self.device)
        if dtype is not None and isinstance(module, Pt2Model) and dtype != module.dtype_name():
            raise ValueError(f"`dtype`: {model} is a .pt2 file compiled for {module.dtype_name()}; export one for "
                             f"{dtype} (bpnn-ts export ... --dtype {dtype} --format pt2) or use the TorchScript file")
        if dtype is not None and not isinstance(module, Pt2Model):
            module = set_precision(module, dtype)
        self.model = module.eval()
        self.dtype = input_dtype(self.model)
        self.supported = [int(z) for z in self.model.atomic_numbers()]
        range_known = bool(self.model.training_range_known())
        if extrapolation is None:
            extrapolation = "warn" if range_known else "ignore"
        self.extrapolation = ExtrapolationPolicy(extrapolation, extrapolation_every, extrapolation_stop_above)
        weakref.finalize(self, _print_summary, self.extrapolation)  # when the calculator goes, or at exit
        self.min_distance = float(min_distance)
        self.committee_size = int(self.model.committee_size())
        if uncertainty and self.committee_size < 2:
            raise ValueError("uncertainty=True needs a committee model (several networks per element); this model has "
                             "one: build one with `bpnn-ts committee` or bpnn_ts.committee.build_committee")
        self.uncertainty = bool(uncertainty)
        self._close_calls = 0
        self._fixed: Optional[List[torch.Tensor]] = None  # numbers, cell, pbc of the kept atoms as tensors
        self._settings = CallSettings(self.threads, self.graph_optimizer)
        if self.extrapolation.active and not range_known:
            raise ValueError(f"extrapolation={extrapolation!r} needs a model that knows its training range "
                             "[Gmin, Gmax] (scaling statistics); this one does not: use extrapolation='ignore'")

    def check_state(self, atoms, tol: float = 1e-15) -> List[str]:
        """What changed since the last calculation among what the model reads: positions, numbers,
        cell, pbc (exact comparison of the bytes: ~2 µs against ASE's ~100 µs of np.isclose per
        property; charges and magnetic moments do not enter the model)."""
        previous = self.atoms
        if previous is None:
            return list(all_changes)
        if len(previous) != len(atoms):
            return ["positions", "numbers"]
        old, new = previous.arrays, atoms.arrays
        changes = []
        if previous.cell.array.tobytes() != atoms.cell.array.tobytes():
            changes.append("cell")
        if previous.pbc.tobytes() != atoms.pbc.tobytes():
            changes.append("pbc")
        if old["numbers"].tobytes() != new["numbers"].tobytes():
            changes.append("numbers")
        if old["positions"].tobytes() != new["positions"].tobytes():
            changes.append("positions")
        return changes

    def get_property(self, name, atoms=None, allow_calculation=True):
        """ASE's get_property, but the atoms of the last calculation are kept (not set to None and
        copied anew) when only their positions change: see `_remember`."""
        if atoms is None or name not in self.implemented_properties:
            return super().get_property(name, atoms, allow_calculation)
        system_changes = self.check_state(atoms)
        if system_changes:
            self.results = {}
        if name not in self.results:
            if not allow_calculation:
                return None
            self.calculate(atoms, [name], system_changes)
        if name not in self.results:
            raise PropertyNotImplementedError(f"{name} not present in this calculation")
        result = self.results[name]
        return result.copy() if isinstance(result, np.ndarray) else result

    def _remember(self, atoms, system_changes) -> None:
        """Keep the atoms of this calculation (`self.atoms`, what check_state compares with): a copy,
        or, where only positions moved, the new positions copied into the kept atoms (~1 µs
        against ~12 µs for Atoms.copy: a molecule's MD step is call-bound)."""
        kept = self.atoms
        if kept is not None and set(system_changes) <= {"positions"} and len(kept) == len(atoms) \
                and kept.arrays["positions"].dtype == atoms.arrays["positions"].dtype:
            np.copyto(kept.arrays["positions"], atoms.arrays["positions"])
        else:
            self.atoms = atoms.copy()

    def _inputs(self, atoms, system_changes) -> List[torch.Tensor]:
        """positions, atomic numbers, cell and pbc as the model's tensors; numbers, cell and pbc
        converted again only when they changed."""
        positions = torch.as_tensor(np.ascontiguousarray(atoms.positions), dtype=self.dtype, device=self.device)
        if self._fixed is None or set(system_changes) - {"positions"}:
            as_tensor = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=self.device)  # noqa: E731
            self._fixed = [as_tensor(atoms.numbers, torch.long), as_tensor(atoms.cell.array, self.dtype),
                           as_tensor(atoms.pbc, torch.bool)]
        return [positions] + self._fixed

    def _check_distance(self, out, atoms) -> None:
        distance = float(out[keys.MIN_DISTANCE]) if keys.MIN_DISTANCE in out else float("inf")
        if distance >= self.min_distance:
            return
        if self._close_calls % self.extrapolation.every == 0:
            i, j = (int(k) for k in out[keys.CLOSEST_PAIR])
            symbols = atoms.get_chemical_symbols()
            warnings.warn(f"atoms {i} ({symbols[i]}) and {j} ({symbols[j]}) are {distance:.3f} Å apart, closer than "
                          f"min_distance={self.min_distance} Å: is the structure (or its units) right?",
                          CloseAtomsWarning, stacklevel=user_stacklevel())
        self._close_calls += 1

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if atoms is not None:
            self._remember(atoms, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic along all three axes")
        want_uncertainty = self.uncertainty or any(p in UNCERTAINTY_PROPERTIES for p in properties)
        if want_uncertainty and self.committee_size < 2:
            raise PropertyNotImplementedError("uncertainties need a committee model (several networks per element); "
                                              "this model has one")
        positions, numbers, cell, pbc = self._inputs(atoms, system_changes)
        try:  # (the model refuses NaN or inf positions and cells, unknown elements, overlapping atoms)
            with self._settings:
                out = self.model.forward(positions, numbers, cell, pbc, compute_forces=True, compute_virial=want_stress,
                                 count_extrapolation=self.extrapolation.active, compute_uncertainty=want_uncertainty)
        except torch.jit.Error as error:
            raise ValueError(error_message(str(error))) from None
        counts = _array(out[keys.EXTRAPOLATION]) if self.extrapolation.active else None
        self.results["extrapolation"] = counts if counts is not None else np.zeros(len(atoms), dtype=np.int64)
        self.extrapolation.apply(counts, atoms.numbers)
        self._check_distance(out, atoms)
        energy = float(out[keys.ENERGY].item())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = _array(out[keys.ENERGIES])
        self.results["forces"] = _array(out[keys.FORCES])
        if want_uncertainty:
            self.results["energy_uncertainty"] = float(out[keys.ENERGY_UNCERTAINTY])
            for name in (keys.ENERGIES_UNCERTAINTY, keys.FORCES_UNCERTAINTY, keys.COMMITTEE_ENERGY,
                         keys.COMMITTEE_FORCES):
                self.results[name] = _array(out[name])
        if want_stress:
            virial = _array(out[keys.VIRIAL])
            stress = -0.5 * (virial + virial.T) / atoms.get_volume()
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()


class CallSettings:
    """The calculator's calls run with `threads` intra-op threads (None: torch's setting) and the
    graph optimiser `optimise` (graph_optimizer.py), each restored after where it was changed. A
    plain class: two generator context managers cost ~3 µs of a molecule's ~100 µs step."""

    def __init__(self, threads: Optional[int], optimise: bool):
        self.threads, self.optimise = threads, optimise
        self.threads_before, self.optimise_before = 0, optimise

    def __enter__(self) -> None:
        self.threads_before = torch.get_num_threads()
        if self.threads is not None and self.threads != self.threads_before:
            torch.set_num_threads(self.threads)
        self.optimise_before = torch._C._get_graph_executor_optimize()
        if self.optimise != self.optimise_before:
            torch._C._set_graph_executor_optimize(self.optimise)

    def __exit__(self, *exception: Any) -> None:
        if self.optimise != self.optimise_before:
            torch._C._set_graph_executor_optimize(self.optimise_before)
        if self.threads is not None and self.threads != self.threads_before:
            torch.set_num_threads(self.threads_before)


def _array(tensor: torch.Tensor) -> np.ndarray:
    """A model output as a float64 (or integer) NumPy array on the host (no copy where it is one)."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.is_floating_point() and tensor.dtype != torch.float64:
        tensor = tensor.double()
    return tensor.numpy()


def _print_summary(policy: ExtrapolationPolicy) -> None:
    """The end-of-run line of a calculator whose calls extrapolated."""
    if policy.events:
        print(f"bpnn_ts: {policy.summary()}", file=sys.stderr)
