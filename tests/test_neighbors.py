"""Neighbour list against ase.neighborlist.neighbor_list; the C++ op torch.ops.bpnn.neighbor_list
against the torch one."""

import re

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from bpnn_ts.model.neighbors import NativePairSearch, _periodic_images, native_neighbor_list, native_pair_search, neighbor_list
from bpnn_ts.native import load_error, load_ops

scripted_neighbor_list = torch.jit.script(neighbor_list)


def canonical(i, j, shifts):
    return sorted(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(shifts).tolist())))


def cases():
    rng = np.random.default_rng(0)
    triclinic = np.array([[5.0, 0, 0], [1.5, 4.0, 0], [0.7, 1.1, 3.5]])
    random_atoms = Atoms("H7", positions=rng.uniform(-3, 8, (7, 3)), cell=triclinic, pbc=True)
    yield "fcc primitive, cutoff >> cell", bulk("Cu", "fcc", a=3.6), 6.0
    rattled = bulk("Cu", "fcc", a=3.6).repeat((3, 2, 4))
    rattled.rattle(0.1, seed=1)
    yield "rattled supercell", rattled, 5.0
    yield "triclinic, atoms outside the cell", random_atoms, 7.3
    for pbc in ([True, False, True], [False, False, True], [False, False, False]):
        partial = random_atoms.copy()
        partial.pbc = pbc
        yield f"pbc {pbc}", partial, 4.0
    yield "molecule, no cell", molecule("C6H6"), 3.0
    yield "single atom, periodic", Atoms("Cu", cell=np.eye(3) * 2.5, pbc=True), 5.5
    slab = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    slab.cell[2, 2] = 0.0
    slab.pbc = [True, True, False]
    yield "slab with zero third cell vector", slab, 4.0
    big = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((7, 7, 7))
    big.rattle(0.05, seed=3)
    yield "1372 atoms", big, 5.0


@pytest.mark.parametrize("function", [neighbor_list, scripted_neighbor_list], ids=["eager", "scripted"])
@pytest.mark.parametrize("name,atoms,cutoff", list(cases()), ids=[c[0] for c in cases()])
def test_matches_ase(function, name, atoms, cutoff):
    i, j, shifts = ase_neighbor_list("ijS", atoms, cutoff)
    pairs, ours = function(torch.tensor(atoms.positions), torch.tensor(atoms.cell.array),
                           torch.tensor(atoms.pbc), cutoff)
    assert len(i) == pairs.shape[1]
    assert canonical(pairs[0], pairs[1], ours) == canonical(i, j, shifts)


def test_small_candidate_budget_gives_same_pairs():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    args = (torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc), 4.5)
    full = neighbor_list(*args)
    chunked = neighbor_list(*args, max_candidates=500)
    assert canonical(full[0][0], full[0][1], full[1]) == canonical(chunked[0][0], chunked[0][1], chunked[1])


def test_far_apart_atoms_do_not_build_a_huge_grid():
    positions = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [1e5, 1e5, 1e5]], dtype=torch.float64)
    pairs, _ = neighbor_list(positions, torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool), 2.0)
    assert pairs.shape[1] == 2


def test_zero_volume_periodic_cell_is_refused():
    cell = torch.tensor([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="zero volume"):
        neighbor_list(torch.zeros(2, 3, dtype=torch.float64), cell, torch.ones(3, dtype=torch.bool), 2.0)
    with pytest.raises(ValueError, match="row 1 is zero"):
        neighbor_list(torch.zeros(2, 3, dtype=torch.float64), torch.diag(torch.tensor([3.0, 0.0, 3.0], dtype=torch.float64)),
                      torch.ones(3, dtype=torch.bool), 2.0)


def test_bad_cutoff():
    with pytest.raises(ValueError, match="`cutoff` must be positive"):
        neighbor_list(torch.zeros(2, 3), torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool), 0.0)


# ---- torch.ops.bpnn.neighbor_list: the whole search (periodic images included) in C++ ----
SKEWED = [[5.0, 0.0, 0.0], [4.6, 3.1, 0.0], [-3.9, 2.8, 3.3]]  # strongly skewed triclinic cell
PBC_PATTERNS = [[bool(bits >> k & 1) for k in range(3)] for bits in range(8)]


@pytest.fixture(scope="module")
def op():
    if not load_ops():
        pytest.skip(f"C++ kernels cannot be built here: {load_error()}")
    return torch.ops.bpnn.neighbor_list


def rows(pairs, shifts):
    """The pairs as sorted rows (i, j, sx, sy, sz)."""
    return sorted(map(tuple, torch.cat([pairs.T, shifts], dim=1).tolist()))


def random_system(n_atoms, cell, low, high, seed):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(low, high, (n_atoms, 3))), torch.tensor(cell, dtype=torch.float64)


def assert_same_pairs(op, positions, cell, pbc, cutoff, min_pairs):
    """The op's pairs and shifts equal the torch neighbor_list's as a set, and (float64) in order."""
    pbc = torch.tensor(pbc)
    pairs, shifts = op(positions, cell, pbc, cutoff)
    expected_pairs, expected_shifts = neighbor_list(positions.double(), cell.double(), pbc, cutoff)
    assert rows(pairs, shifts) == rows(expected_pairs, expected_shifts)
    assert expected_pairs.shape[1] >= min_pairs  # the comparison is not empty against empty
    if positions.dtype == torch.float64:
        assert torch.equal(pairs, expected_pairs) and torch.equal(shifts, expected_shifts)


@pytest.mark.parametrize("name,atoms,cutoff", list(cases()), ids=[c[0] for c in cases()])
def test_op_matches_ase(op, name, atoms, cutoff):
    i, j, shifts = ase_neighbor_list("ijS", atoms, cutoff)
    pairs, ours = op(torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc), cutoff)
    assert canonical(pairs[0], pairs[1], ours) == canonical(i, j, shifts)


def test_op_molecule(op):
    atoms = molecule("C6H6")
    assert_same_pairs(op, torch.tensor(atoms.positions), torch.zeros(3, 3, dtype=torch.float64), [False] * 3, 3.0, 60)


def test_op_cubic(op):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.1, seed=2)
    assert_same_pairs(op, torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), [True] * 3, 5.0, 108 * 42)


@pytest.mark.parametrize("pbc", PBC_PATTERNS, ids=["".join("TF"[not p] for p in pbc) for pbc in PBC_PATTERNS])
def test_op_skewed_cell_every_pbc_pattern(op, pbc):
    positions, cell = random_system(30, SKEWED, -3.0, 8.0, seed=1)
    assert_same_pairs(op, positions, cell, pbc, 4.0, 30)


@pytest.mark.parametrize("pbc", PBC_PATTERNS[1:], ids=["".join("TF"[not p] for p in pbc) for pbc in PBC_PATTERNS[1:]])
def test_op_cell_smaller_than_cutoff(op, pbc):
    """Many images per atom (cutoff 7 Å, cell rows about 2.5 Å, skewed); zero rows along
    non-periodic axes."""
    positions, cell = random_system(5, [[2.5, 0.0, 0.0], [1.9, 2.2, 0.0], [-1.1, 0.8, 2.4]], 0.0, 2.5, seed=2)
    cell[~torch.tensor(pbc)] = 0.0
    assert_same_pairs(op, positions, cell, pbc, 7.0, 5 * 20)


@pytest.mark.parametrize("pbc", [[True] * 3, [True, False, True], [False, False, True]], ids=["TTT", "TFT", "FFT"])
def test_op_atoms_far_outside_the_cell(op, pbc):
    """Negative fractional coordinates, and atoms moved dozens to hundreds of cells away along the
    periodic axes: the pairs of the unmoved atoms, with the shifts that undo the moves."""
    positions, cell = random_system(12, SKEWED, -4.0, 3.0, seed=3)
    assert float((positions @ torch.linalg.inv(cell)).min()) < -0.5
    moves = torch.tensor([[-37, 12, -251], [0, -1, -2], [64, -7, 3]] * 4) * torch.tensor(pbc)  # (12, 3)
    far = positions + moves.double() @ cell
    assert_same_pairs(op, far, cell, pbc, 5.5, 12)
    near_pairs, near_shifts = op(positions, cell, torch.tensor(pbc), 5.5)
    far_pairs, far_shifts = op(far, cell, torch.tensor(pbc), 5.5)
    undone = far_shifts + moves[far_pairs[1]] - moves[far_pairs[0]]
    assert rows(far_pairs, undone) == rows(near_pairs, near_shifts)


@pytest.mark.parametrize("pbc", [[True] * 3, [False] * 3], ids=["periodic", "molecule"])
def test_op_zero_and_one_atom(op, pbc):
    cell = torch.eye(3, dtype=torch.float64) * 2.5
    for positions in (torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, 3, dtype=torch.float32)):
        pairs, shifts = op(positions, cell, torch.tensor(pbc), 5.5)
        assert pairs.shape == (2, 0) and shifts.shape == (0, 3)
        assert pairs.dtype == shifts.dtype == torch.int64
    one = torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64)
    assert_same_pairs(op, one, cell, pbc, 5.5, 0)
    pairs, shifts = op(one, cell, torch.tensor(pbc), 5.5)
    lattice = [(a, b, c) for a in range(-3, 4) for b in range(-3, 4) for c in range(-3, 4)
               if 0 < 2.5**2 * (a * a + b * b + c * c) < 5.5**2]  # its images: 32 lattice points
    assert rows(pairs, shifts) == ([(0, 0) + s for s in sorted(lattice)] if pbc[0] else [])


def test_op_zero_atoms_skip_the_cell(op):
    """As in Python: nothing to search, so even a degenerate cell is not looked at."""
    pairs, shifts = op(torch.zeros(0, 3), torch.zeros(3, 3), torch.ones(3, dtype=torch.bool), 5.0)
    assert pairs.shape == (2, 0) and shifts.shape == (0, 3)


def test_op_float32_positions(op):
    """float32 input is searched in float64 (so it equals the float64 torch list on the same values)."""
    positions, cell = random_system(40, SKEWED, -2.0, 7.0, seed=4)
    positions, cell = positions.float(), cell.float()
    assert_same_pairs(op, positions, cell, [True, True, False], 4.5, 40 * 10)
    pairs, shifts = op(positions, cell, torch.tensor([True, True, False]), 4.5)
    assert pairs.dtype == shifts.dtype == torch.int64 and pairs.shape == (2, shifts.shape[0]) and shifts.shape[1] == 3


def test_op_refuses_a_cell_far_too_small(op):
    """The same refusal (and image count) as the torch list, not an allocation of 10^12 images."""
    positions = torch.tensor([[0.0, 0, 0], [0.96, 0, 0], [0, 0.96, 0]], dtype=torch.float64)
    cell = torch.eye(3, dtype=torch.float64) * 1e-3
    with pytest.raises(ValueError, match="far too small for the cutoff") as torch_error:
        neighbor_list(positions, cell, torch.ones(3, dtype=torch.bool), 4.0, check=False)
    with pytest.raises(ValueError, match=r"^bpnn: `cell`: the cell is far too small for the cutoff \(4 Å\)") as op_error:
        op(positions, cell, torch.ones(3, dtype=torch.bool), 4.0)
    count = re.compile(r"every atom would need (\d+) periodic images")
    assert count.search(str(op_error.value)).group(1) == count.search(str(torch_error.value)).group(1)


def test_op_refuses_a_degenerate_cell(op):
    positions = torch.zeros(2, 3, dtype=torch.float64)
    flat = torch.tensor([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="`cell` has zero volume along its periodic axes"):
        op(positions, flat, torch.ones(3, dtype=torch.bool), 2.0)
    with pytest.raises(ValueError, match="`cell` has zero area along its periodic axes"):
        op(positions, flat, torch.tensor([True, True, False]), 2.0)
    with pytest.raises(ValueError, match="`cell` row 1 is zero"):
        op(positions, torch.diag(torch.tensor([3.0, 0.0, 3.0], dtype=torch.float64)), torch.ones(3, dtype=torch.bool), 2.0)
    with pytest.raises(ValueError, match="`cell` row 0 is zero"):
        op(positions, torch.full((3, 3), float("nan"), dtype=torch.float64), torch.ones(3, dtype=torch.bool), 2.0)
    pairs, _ = op(positions + torch.tensor([[0.0, 0, 0], [1.0, 0, 0]]), flat, torch.zeros(3, dtype=torch.bool), 2.0)
    assert pairs.shape[1] == 2  # without pbc the cell is not used


def test_op_checks_its_arguments(op):
    positions, cell, pbc = torch.zeros(2, 3), torch.eye(3) * 5.0, torch.ones(3, dtype=torch.bool)
    with pytest.raises(RuntimeError, match=r"`positions` must be a floating-point \(N, 3\) tensor, got Long"):
        op(positions.long(), cell, pbc, 2.0)
    with pytest.raises(RuntimeError, match=r"`cell` must be a floating-point \(3, 3\) tensor"):
        op(positions, cell[:2], pbc, 2.0)
    with pytest.raises(RuntimeError, match=r"`pbc` must be a bool \(3,\) tensor, got Long"):
        op(positions, cell, pbc.long(), 2.0)
    with pytest.raises(ValueError, match="`cutoff` must be positive and finite, got -1"):
        op(positions, cell, pbc, -1.0)
    with pytest.raises(ValueError, match=r"`positions` must be finite, got \[nan, 0, 0\] in row 1"):
        op(torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0]]), cell, pbc, 2.0)


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
def test_the_model_search_is_one_op_with_the_list_of_the_older_path(op, scripted):
    """TorchScript files search with the one op bpnn::neighbor_list (files of 0.3 need a 0.3
    library anyway: bpnn::cuda_kernels); it gives the list of the torch cell list and of the older
    path (images in torch, bpnn::cell_list), which earlier files still call."""
    search = torch.jit.script(NativePairSearch()) if scripted else NativePairSearch()
    if scripted:
        graph = str(search.inlined_graph)
        assert "bpnn::neighbor_list" in graph and "bpnn::cell_list" not in graph
    positions, cell = random_system(20, SKEWED, -1.0, 6.0, seed=5)
    pbc = torch.tensor([True, False, True])
    assert rows(*search(positions, cell, pbc, 4.0)) == rows(*neighbor_list(positions, cell, pbc, 4.0))
    assert rows(*native_neighbor_list(positions, cell, pbc, 4.0)) == rows(*neighbor_list(positions, cell, pbc, 4.0))
    assert rows(*native_pair_search(positions, cell, pbc, 4.0)) == rows(*neighbor_list(positions, cell, pbc, 4.0))


@pytest.mark.parametrize("pbc", [[True] * 3, [True, True, False], [False] * 3], ids=["TTT", "TTF", "FFF"])
def test_cell_list_op_still_serves_older_model_files(op, pbc):
    """Files exported before neighbor_list build the images in TorchScript and call bpnn::cell_list
    (the same C++ cell list): it still gives the torch list's pairs, in its order."""
    positions, cell = random_system(25, SKEWED, -2.0, 6.0, seed=6)
    points, point_atom, point_shift, wrap = _periodic_images(positions, cell, pbc, 5.0)
    i, j_point = torch.ops.bpnn.cell_list(points, positions.shape[0], 5.0)
    j = point_atom[j_point]
    expected_pairs, expected_shifts = neighbor_list(positions, cell, torch.tensor(pbc), 5.0)
    assert expected_pairs.shape[1] >= 25 * 5
    assert torch.equal(torch.stack([i, j]), expected_pairs)
    assert torch.equal(point_shift[j_point] - wrap[j] + wrap[i], expected_shifts)
    empty = torch.ops.bpnn.cell_list(torch.zeros(0, 3), 0, 5.0)
    assert [t.shape for t in empty] == [(0,), (0,)] and empty[0].dtype == torch.int64
