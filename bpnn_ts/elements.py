"""Chemical elements: symbol <-> atomic number, and the species lookup table (no dependencies:
the model package uses it too)."""

from typing import List, Sequence, Union

import torch

# SYMBOLS[z - 1] is the symbol of atomic number z (1..118)
SYMBOLS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh",
    "Fl", "Mc", "Lv", "Ts", "Og",
)
MAX_Z = len(SYMBOLS)
_SYMBOL_TO_Z = {s: z for z, s in enumerate(SYMBOLS, start=1)}


def to_atomic_number(element: Union[str, int]) -> int:
    """Atomic number of a symbol ("Cu") or of an int that already is one."""
    if isinstance(element, bool):
        raise ValueError(f"element must be a symbol or an atomic number, got {element!r}")
    if isinstance(element, int):
        if not 1 <= element <= MAX_Z:
            raise ValueError(f"atomic number must be in 1..{MAX_Z}, got {element}")
        return element
    if isinstance(element, str) and element in _SYMBOL_TO_Z:
        return _SYMBOL_TO_Z[element]
    raise ValueError(f"unknown chemical element {element!r}")


def symbol(atomic_number: int) -> str:
    """Chemical symbol of an atomic number."""
    if not 1 <= int(atomic_number) <= MAX_Z:
        raise ValueError(f"atomic number must be in 1..{MAX_Z}, got {atomic_number}")
    return SYMBOLS[int(atomic_number) - 1]


def sorted_atomic_numbers(elements: Sequence[Union[str, int]]) -> List[int]:
    """Atomic numbers of `elements`, sorted ascending (the model's species order)."""
    numbers = [to_atomic_number(e) for e in elements]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"`elements` must not repeat an element, got {list(elements)}")
    if not numbers:
        raise ValueError("`elements` must name at least one element")
    return sorted(numbers)


def species_table(atomic_numbers: Sequence[int]) -> torch.Tensor:
    """(MAX_Z + 1,) int64 table: Z -> species index (position in `atomic_numbers`), -1 if absent."""
    table = torch.full((MAX_Z + 1,), -1, dtype=torch.long)
    for index, z in enumerate(atomic_numbers):
        table[z] = index
    return table
