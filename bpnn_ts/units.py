"""Units: the package works in eV and Å; conversions happen only at the boundaries."""

BOHR_IN_ANGSTROM = 0.529177210903  # CODATA 2018, as n2p2's README quotes
HARTREE_IN_EV = 27.211386245988
# CODATA 2018 (e * N_A / 1000), as OpenMM's own units; ASE's default (CODATA 2014) differs by 8e-9
EV_IN_KJ_PER_MOL = 96.48533212331
ANGSTROM_PER_NM = 10.0

LENGTH_UNITS = {"angstrom": 1.0, "bohr": BOHR_IN_ANGSTROM}  # unit -> Å per unit
ENERGY_UNITS = {"eV": 1.0, "hartree": HARTREE_IN_EV}  # unit -> eV per unit


def length_factor(unit: str) -> float:
    """Å per `unit` (`angstrom` or `bohr`)."""
    if unit not in LENGTH_UNITS:
        raise ValueError(f"length unit must be one of {sorted(LENGTH_UNITS)}, got {unit!r}")
    return LENGTH_UNITS[unit]


def energy_factor(unit: str) -> float:
    """eV per `unit` (`eV` or `hartree`)."""
    if unit not in ENERGY_UNITS:
        raise ValueError(f"energy unit must be one of {sorted(ENERGY_UNITS)}, got {unit!r}")
    return ENERGY_UNITS[unit]
