"""Are the units a user states for an n2p2 potential plausible? n2p2 files carry no unit
keyword, so `bpnn-ts import-n2p2 --length-unit/--energy-unit` is taken on trust; a wrong choice
gives a model off by factors of 1.9 and 27. Three checks catch most mistakes before any number
is computed: unit comments in input.nn ("# Length unit : Bohr", as n2p2's examples and
bpnn-ts export-n2p2 write them), the largest cutoff in Å, and, where the directory holds the
training data (input.data), the closest atoms in Å."""

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..units import length_factor

# unit words in input.nn comments -> our unit names
_LENGTH_WORDS = {"bohr": "bohr", "au": "bohr", "a.u.": "bohr", "angstrom": "angstrom", "ang": "angstrom",
                 "a": "angstrom", "å": "angstrom"}
_ENERGY_WORDS = {"ha": "hartree", "hartree": "hartree", "eh": "hartree", "ev": "eV"}
_COMMENT = re.compile(r"#\s*(length|energy)\s+unit\s*[:=]\s*(\S+)", re.IGNORECASE)
CUTOFF_RANGE = (2.0, 20.0)  # Å: symmetry-function cutoffs of real potentials lie well inside
CLOSEST_ATOMS = 0.6  # Å: no two atoms of real training data are closer (H2: 0.74 Å)


class N2P2UnitError(ValueError):
    """Units stated for an n2p2 potential that its files contradict."""


def stated_units(input_nn: Path) -> Dict[str, str]:
    """{"length": ..., "energy": ...} from unit comments in input.nn (those present)."""
    units: Dict[str, str] = {}
    for raw in input_nn.read_text().splitlines():
        match = _COMMENT.search(raw)
        if match:
            kind, word = match.group(1).lower(), match.group(2).strip(".,;()").lower()
            unit = (_LENGTH_WORDS if kind == "length" else _ENERGY_WORDS).get(word)
            if unit:
                units[kind] = unit
    return units


def check_units(directory: Path, length_unit: str, energy_unit: str, cutoffs: Sequence[float],
                closest: Optional[float] = None) -> None:
    """Raise N2P2UnitError where the stated units contradict the potential: its unit comments,
    its largest cutoff (file units) in Å, or the closest atoms of its input.data (Å, computed by
    the caller with the stated units; None: no data)."""
    problems: List[str] = []
    stated = stated_units(directory / "input.nn")
    for kind, given in (("length", length_unit), ("energy", energy_unit)):
        if kind in stated and stated[kind] != given:
            problems.append(f"input.nn says its {kind} unit is {stated[kind]}, but {given} was given")
    cutoff = max(cutoffs) * length_factor(length_unit)
    if not CUTOFF_RANGE[0] <= cutoff <= CUTOFF_RANGE[1]:
        problems.append(f"its largest cutoff would be {cutoff:.3g} Å (expected {CUTOFF_RANGE[0]:g}-"
                        f"{CUTOFF_RANGE[1]:g} Å)")
    if closest is not None and closest < CLOSEST_ATOMS:
        problems.append(f"the closest atoms of its input.data would be {closest:.3g} Å apart "
                        f"(expected at least {CLOSEST_ATOMS} Å)")
    if problems:
        raise N2P2UnitError(
            f"{directory}: with --length-unit {length_unit} --energy-unit {energy_unit}, " + "; ".join(problems)
            + ". Are the units right? (n2p2 files carry no unit keyword; check the units of the data it was "
            "trained on; --no-unit-check skips these checks)")


def closest_atoms(input_data: Path, length_unit: str) -> Optional[float]:
    """Smallest interatomic distance (Å, periodic images included, below 3 Å) of the first
    structure of an n2p2 input.data file read in `length_unit`; None without a readable one."""
    from ase.neighborlist import neighbor_list

    from .n2p2_data import InputDataError, read_input_data
    try:
        first = read_input_data(input_data, length_unit, max_structures=1)
    except InputDataError:
        return None
    if not first:
        return None
    distances = neighbor_list("d", first[0], 3.0)
    return float(distances.min()) if len(distances) else None
