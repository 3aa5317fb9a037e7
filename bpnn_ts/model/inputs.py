"""The engine contract's input checks, as free functions: BPNNModel (TorchScript files) and the
`.pt2` front ends (bpnn_ts/pt2.py) refuse the same bad inputs with the same messages."""

from typing import List, Optional, Tuple

import torch


def check_system(positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                 check_values: bool) -> None:
    """Shapes, dtypes and devices of the system's tensors; with `check_values`, finiteness."""
    check_atoms(positions, atomic_numbers, check_values)
    if cell.shape != (3, 3):
        raise ValueError("`cell` must have shape (3, 3) (rows = lattice vectors), got " + str(cell.shape))
    if not cell.is_floating_point():
        raise ValueError("`cell` must be a floating-point tensor, got " + dtype_name(cell))
    if pbc.shape != (3,) or pbc.dtype != torch.bool:
        raise ValueError("`pbc` must be a bool tensor of shape (3,), got " + dtype_name(pbc) + " " + str(pbc.shape))
    check_device("cell", cell, positions.device)
    check_device("pbc", pbc, positions.device)
    if check_values:
        check_cell_values(cell)


def check_cell_values(cell: torch.Tensor) -> None:
    """Refuse a cell with NaN or inf."""
    if not bool(torch.isfinite(cell).all()):
        raise ValueError("`cell` contains NaN or inf")


def check_atoms(positions: torch.Tensor, atomic_numbers: torch.Tensor, check_values: bool) -> None:
    """Shapes, dtypes and device of positions (N, 3) and atomic numbers (N,); with
    `check_values`, finite positions."""
    if positions.dim() != 2 or positions.shape[1] != 3:
        raise ValueError("`positions` must have shape (n_atoms, 3), got " + str(positions.shape))
    if not positions.is_floating_point():
        raise ValueError("`positions` must be a floating-point tensor, got " + dtype_name(positions))
    if atomic_numbers.shape != (positions.shape[0],):
        raise ValueError("`atomic_numbers` must have shape (n_atoms,) = (" + str(positions.shape[0])
                         + ",), got " + str(atomic_numbers.shape))
    if not is_integer(atomic_numbers):
        raise ValueError("`atomic_numbers` must be an integer tensor, got " + dtype_name(atomic_numbers))
    check_device("atomic_numbers", atomic_numbers, positions.device)
    if check_values and not bool(torch.isfinite(positions).all()):
        raise ValueError("`positions` contain NaN or inf")


def check_device(name: str, tensor: torch.Tensor, device: torch.device) -> None:
    """Refuse `tensor` (the argument `name`) on another device than `positions` (on `device`)."""
    if tensor.device != device:
        raise ValueError("`" + name + "` must be on the device of `positions` (" + str(device) + "), got "
                         + str(tensor.device))


def species_of(atomic_numbers: torch.Tensor, species_of_z: torch.Tensor, all_symbols: List[str],
               element_symbols: List[str]) -> torch.Tensor:
    """(N,) species index of each atom (species_of_z: atomic number -> index, -1 if absent; all_symbols:
    "X" then every element by atomic number); an error naming the first element the model lacks."""
    z = torch.clamp(atomic_numbers.long(), 0, len(all_symbols) - 1)
    species = species_of_z[z]
    unknown = (species < 0) | (atomic_numbers != z)
    if bool(unknown.any()):
        bad = int(atomic_numbers[unknown][0])
        name = all_symbols[bad] if 0 < bad < len(all_symbols) else "Z=" + str(bad)
        raise ValueError("element " + name + " (atomic number " + str(bad) + ") is not in this model; "
                         + "supported elements: " + ", ".join(element_symbols))
    return species


def check_engine_list(pairs: torch.Tensor, shifts: Optional[torch.Tensor], n_local: Optional[int],
                      n_atoms: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """An engine's pairs (2, P) and shifts (P, 3) checked (int64, in range, on `device`); shifts
    None: zeros; n_local None: every atom is local."""
    if pairs.dim() != 2 or pairs.shape[0] != 2:
        raise ValueError("`pairs` must have shape (2, n_pairs), got " + str(pairs.shape))
    if not is_integer(pairs):
        raise ValueError("`pairs` must be an integer tensor, got " + dtype_name(pairs))
    if pairs.device != device:
        raise ValueError("`pairs` must be on the device of `positions` (" + str(device) + "), got "
                         + str(pairs.device))
    if shifts is None:
        shifts = torch.zeros((pairs.shape[1], 3), dtype=torch.long, device=device)
    if shifts.shape != (pairs.shape[1], 3):
        raise ValueError("`shifts` must have shape (n_pairs, 3) = (" + str(pairs.shape[1])
                         + ", 3), got " + str(shifts.shape))
    if not is_integer(shifts):
        raise ValueError("`shifts` must be an integer tensor (multiples of the lattice vectors), got "
                         + dtype_name(shifts))
    if shifts.device != device:
        raise ValueError("`shifts` must be on the device of `positions` (" + str(device) + "), got "
                         + str(shifts.device))
    if n_local is None:
        n_local = n_atoms
    if n_local < 0 or n_local > n_atoms:
        raise ValueError("`n_local` must be in [0, n_atoms=" + str(n_atoms) + "], got " + str(n_local))
    pairs = pairs.long()
    if pairs.shape[1] > 0 and (int(pairs.min()) < 0 or int(pairs.max()) >= n_atoms):
        raise ValueError("`pairs` hold atom indices outside [0, " + str(n_atoms) + ")")
    return pairs, shifts.long(), n_local


def check_requests(compute_uncertainty: bool, committee_size: int, count_extrapolation: bool,
                   training_range_known: bool) -> None:
    """Refuse uncertainties of a single net and extrapolation counts without a training range."""
    if compute_uncertainty and committee_size < 2:
        raise ValueError("compute_uncertainty needs a committee model (committee_size() > 1); this one has "
                         + "one network per element (build one with bpnn_ts.build_committee)")
    if count_extrapolation and not training_range_known:
        raise ValueError("count_extrapolation: this model has no training range [Gmin, Gmax] of its symmetry "
                         + "functions (no scaling statistics): it cannot count extrapolation")


def check_overlap(closest_distance: torch.Tensor, closest_pair: torch.Tensor) -> None:
    """Refuse atoms closer than 1e-6 Å (from the closest pair an evaluation found)."""
    if float(closest_distance) < 1e-6:
        raise ValueError("atoms " + str(int(closest_pair[0])) + " and " + str(int(closest_pair[1]))
                         + " overlap (distance < 1e-6 Å)")


def is_integer(tensor: torch.Tensor) -> bool:
    """True for integer dtypes (not bool, floating or complex)."""
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def dtype_name(tensor: torch.Tensor) -> str:
    """The dtype of `tensor` as a word ("float64"), also in TorchScript (where str(dtype) is a number)."""
    names: List[Tuple[torch.dtype, str]] = [
        (torch.float64, "float64"), (torch.float32, "float32"), (torch.float16, "float16"), (torch.bfloat16, "bfloat16"),
        (torch.int64, "int64"), (torch.int32, "int32"), (torch.int16, "int16"), (torch.int8, "int8"),
        (torch.uint8, "uint8"), (torch.bool, "bool"), (torch.complex64, "complex64"), (torch.complex128, "complex128")]
    for dtype, name in names:
        if tensor.dtype == dtype:
            return name
    return "another dtype"
