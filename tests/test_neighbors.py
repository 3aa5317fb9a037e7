"""Neighbour list against ase.neighborlist.neighbor_list."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from bpnn_ts.model.neighbors import neighbor_list

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
