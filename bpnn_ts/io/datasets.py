"""Labelled structures (energy, forces, stress) from the files DFT users have.

Formats: extended XYZ (`.xyz`, `.extxyz`), ASE database (`.db`), ASE
trajectory (`.traj`) and n2p2 `input.data` (`input.data` or `.data`), or named
explicitly. Every structure comes back as an ase.Atoms in eV and Å with a
SinglePointCalculator holding energy (eV), forces (eV/Å) and, where the file
has it, stress (eV/Å^3, Voigt). A file that cannot be read raises DataError
naming the file; nothing is returned half-read.

n2p2 files are read by our reader (`n2p2_data.read_input_data`) in the units
given here (default Å and eV). `ase.io.read("input.data")` would pick ASE's
RuNNer reader instead, which always converts from Bohr and Hartree.
"""

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..elements import symbol
from ..units import energy_factor, length_factor
from .n2p2_data import read_input_data

FORMATS = ("extxyz", "db", "traj", "n2p2")
_SUFFIXES = {".xyz": "extxyz", ".extxyz": "extxyz", ".db": "db", ".traj": "traj", ".data": "n2p2"}


class DataError(ValueError):
    """A data file or structure that cannot be used (names the file and structure)."""


def detect_format(path: Union[str, Path]) -> str:
    """The format of `path` from its name (see module docstring)."""
    path = Path(path)
    if path.name == "input.data":
        return "n2p2"
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    raise DataError(f"{path}: cannot tell the format from the name; give one of {list(FORMATS)}")


def checked_format(path: Path, format: Optional[str]) -> str:
    """The format of an existing data file (given or from its name); DataError naming the file."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    format = format or detect_format(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown data format {format!r}; use one of {list(FORMATS)}")
    return format


def read_structures(path: Union[str, Path], format: Optional[str] = None, length_unit: str = "angstrom",
                    energy_unit: str = "eV") -> List[Atoms]:
    """All structures of one file, converted to eV and Å (see module docstring)."""
    path = Path(path)
    format = checked_format(path, format)
    to_a, to_ev = length_factor(length_unit), energy_factor(energy_unit)
    if format == "n2p2":
        try:
            structures = read_input_data(path, length_unit, energy_unit)
        except ValueError as error:
            raise DataError(str(error)) from error
        if not structures:
            raise DataError(f"{path}: no structures in the file (n2p2 input.data: begin ... end blocks)")
        return structures
    import ase.io
    try:
        raw = ase.io.read(path, index=":", format={"extxyz": "extxyz", "db": "db", "traj": "traj"}[format])
    except Exception as error:  # ASE raises many types for damaged files
        raise DataError(f"{path}: cannot read as {format} ({type(error).__name__}: {error})") from error
    if isinstance(raw, Atoms):
        raw = [raw]
    if not raw:
        raise DataError(f"{path}: no structures in the file")
    return [_labelled(atoms, to_a, to_ev, f"{path} structure {index}") for index, atoms in enumerate(raw)]


def _labelled(atoms: Atoms, to_a: float, to_ev: float, where: str) -> Atoms:
    """A copy in eV/Å with energy, forces and stress (where present) as calculator results."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    for key in ("energy", "free_energy", "forces", "stress"):
        if key not in results:
            source = atoms.info if key in atoms.info else atoms.arrays
            if key in source:
                results[key] = np.array(source[key], dtype=float)
    energy = results.get("energy", results.get("free_energy"))
    if energy is None:
        raise DataError(f"{where}: no energy (need `energy` in the file's properties or info)")
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions * to_a, cell=atoms.cell.array * to_a,
                pbc=atoms.pbc)
    labels: Dict[str, Union[float, np.ndarray]] = {"energy": float(energy) * to_ev}
    if "forces" in results:
        labels["forces"] = np.asarray(results["forces"], dtype=float).reshape(len(atoms), 3) * (to_ev / to_a)
    if "stress" in results:
        stress = np.asarray(results["stress"], dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        labels["stress"] = stress.reshape(6) * (to_ev / to_a ** 3)
    out.calc = SinglePointCalculator(out, **labels)
    return out


def read_many(paths: Union[str, Path, Sequence[Union[str, Path]]], format: Optional[str] = None,
              length_unit: str = "angstrom", energy_unit: str = "eV") -> List[Atoms]:
    """Structures of one file or several, in order."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    structures: List[Atoms] = []
    for path in paths:
        structures += read_structures(path, format, length_unit, energy_unit)
    return structures


def check_structures(structures: Iterable[Atoms], elements: Sequence[int], need_forces: bool,
                     source: str = "data", unknown: str = "add them to `elements`") -> None:
    """Refuse structures the training cannot use: unknown elements (`unknown`: what the message
    advises), no forces where forces are fitted, NaN/inf values, empty structures. Errors name
    the structure."""
    allowed = set(int(z) for z in elements)
    for index, atoms in enumerate(structures):
        where = f"{source} structure {index}"
        if len(atoms) == 0:
            raise DataError(f"{where}: has no atoms")
        extra = sorted(set(int(z) for z in atoms.numbers) - allowed)
        if extra:
            raise DataError(f"{where}: elements {[symbol(z) for z in extra]} are not in the model "
                            f"{[symbol(z) for z in sorted(allowed)]}; {unknown}")
        results = atoms.calc.results if atoms.calc is not None else {}
        if "energy" not in results:
            raise DataError(f"{where}: no energy")
        if need_forces and "forces" not in results:
            raise DataError(f"{where}: no forces, but the loss fits forces "
                            "(set `loss: {forces: 0}` to train on energies only)")
        arrays = [atoms.positions, atoms.cell.array, np.atleast_1d(results["energy"])]
        arrays += [np.asarray(results[k]) for k in ("forces", "stress") if k in results]
        if not all(np.isfinite(a).all() for a in arrays):
            raise DataError(f"{where}: NaN or inf in positions, cell or labels")
