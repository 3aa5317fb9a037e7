"""n2p2 input.data <-> list of ase.Atoms (energy, forces and charges as results).

Format (FORMAT.md): begin / comment / 3x lattice / atom x y z El q _ fx fy fz /
energy E / charge Q / end. The returned Atoms are in eV and Å; `length_unit`
and `energy_unit` say what the file uses. A damaged file raises an error
naming the line; nothing is returned half-read.
"""

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..elements import to_atomic_number
from ..units import energy_factor, length_factor


class InputDataError(ValueError):
    """A malformed n2p2 input.data file (names file and line)."""


def read_input_data(path: Union[str, Path], length_unit: str = "angstrom",
                    energy_unit: str = "eV", max_structures: Optional[int] = None) -> List[Atoms]:
    """The structures of an n2p2 input.data file (all, or the first `max_structures`), converted
    from `length_unit` and `energy_unit` (the file's units) to Å and eV; atoms of periodic
    structures are wrapped into the cell, as n2p2 does."""
    path = Path(path)
    to_a, to_ev = length_factor(length_unit), energy_factor(energy_unit)
    structures: List[Atoms] = []
    current: Optional[Dict[str, Any]] = None  # the structure being read
    with open(path) as lines:
        for number, raw in enumerate(lines, start=1):
            if max_structures is not None and len(structures) >= max_structures:
                return structures
            current = _read_line(raw, number, path, current, structures, to_a, to_ev)
    if current is not None:
        raise InputDataError(f"{path}: the last structure has no `end` (truncated file?)")
    return structures


def read_input_lines(lines: Iterable[str], path: Union[str, Path], first_line: int = 1,
                     length_unit: str = "angstrom", energy_unit: str = "eV") -> List[Atoms]:
    """The structures in `lines`, a part of input.data `path` whose first line is line `first_line`
    of the file, read as `read_input_data` reads the whole file (errors name the file's line).
    For reading one begin ... end block at a time (bpnn_ts.io.streaming)."""
    path = Path(path)
    to_a, to_ev = length_factor(length_unit), energy_factor(energy_unit)
    structures: List[Atoms] = []
    current: Optional[Dict[str, Any]] = None
    for number, raw in enumerate(lines, start=first_line):
        current = _read_line(raw, number, path, current, structures, to_a, to_ev)
    if current is not None:
        raise InputDataError(f"{path}: the last structure has no `end` (truncated file?)")
    return structures


def _read_line(raw: str, number: int, path: Path, current: Optional[Dict[str, Any]], structures: List[Atoms],
               to_a: float, to_ev: float) -> Optional[Dict[str, Any]]:
    """One line of input.data into `current` (the structure being read; `end` appends it to
    `structures`); returns the structure being read after the line."""
    words = raw.split()
    if not words:
        return current
    key, where = words[0], f"{path}:{number}"
    try:
        if key == "begin":
            if current is not None:
                raise InputDataError(f"{where}: `begin` inside a structure (missing `end`)")
            return {"lattice": [], "positions": [], "symbols": [], "charges": [],
                    "forces": [], "energy": None, "charge": 0.0, "comment": ""}
        if current is None:
            raise InputDataError(f"{where}: `{key}` outside begin/end")
        if key == "comment":
            current["comment"] = raw.split(None, 1)[1].rstrip("\r\n") if len(words) > 1 else ""
        elif key == "lattice":
            current["lattice"].append([float(w) for w in words[1:4]])
        elif key == "atom":
            if len(words) < 10:
                raise InputDataError(f"{where}: `atom` needs x y z element charge _ fx fy fz")
            current["positions"].append([float(w) for w in words[1:4]])
            current["symbols"].append(to_atomic_number(words[4]))
            current["charges"].append(float(words[5]))
            current["forces"].append([float(w) for w in words[7:10]])
        elif key == "energy":
            current["energy"] = float(words[1])
        elif key == "charge":
            current["charge"] = float(words[1])
        elif key == "end":
            structures.append(_to_atoms(current, to_a, to_ev, where))
            return None
        else:
            raise InputDataError(f"{where}: unknown keyword `{key}`")
    except InputDataError:
        raise
    except (ValueError, IndexError) as error:
        raise InputDataError(f"{where}: cannot read `{raw.strip()}`: {error}") from None
    return current


def _to_atoms(record: Dict[str, Any], to_a: float, to_ev: float, where: str) -> Atoms:
    if record["lattice"] and len(record["lattice"]) != 3:
        raise InputDataError(f"{where}: a structure needs 0 or 3 `lattice` lines, got {len(record['lattice'])}")
    periodic = bool(record["lattice"])
    atoms = Atoms(numbers=record["symbols"], positions=np.array(record["positions"]).reshape(-1, 3) * to_a,
                  cell=np.array(record["lattice"]) * to_a if periodic else None, pbc=periodic)
    if periodic:
        atoms.wrap()
    atoms.set_initial_charges(record["charges"])
    atoms.info["comment"] = record["comment"]
    atoms.info["charge"] = record["charge"]
    results = {"forces": np.array(record["forces"]).reshape(-1, 3) * (to_ev / to_a)}
    if record["energy"] is not None:
        results["energy"] = record["energy"] * to_ev
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def write_input_data(path: Union[str, Path], structures: Iterable[Atoms], length_unit: str = "angstrom",
                     energy_unit: str = "eV") -> None:
    """Write structures (with energy/forces results where present) as n2p2 input.data."""
    from_a, from_ev = 1.0 / length_factor(length_unit), 1.0 / energy_factor(energy_unit)
    lines = []
    for atoms in structures:
        results = atoms.calc.results if atoms.calc is not None else {}
        forces = results.get("forces", np.zeros((len(atoms), 3)))
        charges = atoms.get_initial_charges()
        lines += ["begin", f"comment {atoms.info.get('comment', '')}".rstrip()]
        if atoms.pbc.any():
            lines += ["lattice " + " ".join(f"{x * from_a:24.16E}" for x in row) for row in atoms.cell.array]
        for position, symbol, charge, force in zip(atoms.positions, atoms.get_chemical_symbols(), charges, forces):
            lines.append("atom " + " ".join(f"{x * from_a:24.16E}" for x in position)
                         + f" {symbol:2s} {charge:24.16E} {0.0:24.16E} "
                         + " ".join(f"{f * from_ev / from_a:24.16E}" for f in force))
        lines.append(f"energy {results.get('energy', 0.0) * from_ev:24.16E}")
        lines.append(f"charge {atoms.info.get('charge', 0.0):24.16E}")
        lines.append("end")
    Path(path).write_text("\n".join(lines) + "\n")
