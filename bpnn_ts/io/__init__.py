"""Readers and writers of data sets and foreign potential formats.

Labelled structures (eV, Å): `read_structures` / `read_many` read extended XYZ, ASE .db/.traj
and n2p2 `input.data` (by name: `input.data`, `*.data`; or `format="n2p2"`), converting the
file's units (`length_unit`, `energy_unit`). For n2p2 files use these (or `read_input_data`),
not `ase.io.read("input.data")`: ASE takes such a file for RuNNer data and converts it from
Bohr and Hartree whatever its units. n2p2 potentials: `bpnn_ts.io.n2p2` (import) and
`bpnn_ts.io.n2p2_writer` (export).
"""

from .datasets import FORMATS, DataError, check_structures, detect_format, read_many, read_structures
from .n2p2_data import InputDataError, read_input_data, write_input_data

__all__ = ["FORMATS", "DataError", "InputDataError", "check_structures", "detect_format", "read_input_data",
           "read_many", "read_structures", "write_input_data"]
