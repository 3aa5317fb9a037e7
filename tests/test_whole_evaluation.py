"""The whole evaluation in one op (bpnn::evaluate, bpnn_ts/model/whole_evaluation.py) against the
general path it stands in for: every output, every cutoff function and activation, committees,
float32, open, periodic, triclinic and small cells, extrapolation counts; bad input still gets the
general path's messages; forces against finite differences of its energy."""

from typing import Dict

import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import export, load
from bpnn_ts.committee_merge import build_committee
from bpnn_ts.model import BPNNModel
from bpnn_ts.model.descriptors.params import RadialSF, auto_symmetry_functions
from bpnn_ts.model.kernels import NativeKernel
from bpnn_ts.model.nn import ACTIVATIONS
from bpnn_ts.native import load_ops

from helpers import (
    TOL,
    evaluate,
    h2o_spec,
    mixed_model,
    randomized,
    ranged_model,
    squeezed_box,
    triclinic_water,
    water_box,
    water_dimer,
)

pytestmark = pytest.mark.skipif(not load_ops(), reason="the fused C++ kernels do not build here")

OUTPUTS = ("energy", "energies", "forces", "virial", "atomic_virials", "extrapolation", "closest_pair", "min_distance")


def small_cell() -> Atoms:
    """Three atoms in a 3 Å cell: the 4 Å cutoff reaches periodic images of every atom, itself too."""
    return Atoms("OH2", positions=[[0.1, 0.2, 0.3], [1.0, 0.2, 0.3], [0.0, 1.1, 0.4]], cell=np.eye(3) * 3.0, pbc=True)


def slab() -> Atoms:
    """A water box periodic along x and y only."""
    atoms = water_box(6, seed=2)
    atoms.pbc = [True, True, False]
    return atoms


SYSTEMS = {"dimer": water_dimer, "box": lambda: water_box(8, seed=1), "triclinic": triclinic_water,
           "squeezed": squeezed_box, "small cell": small_cell, "slab": slab,
           "one atom": lambda: Atoms("O", positions=[[0.0, 0.0, 0.0]])}


def run(model, atoms: Atoms, whole: bool, **kwargs) -> Dict[str, torch.Tensor]:
    """`model`'s outputs for `atoms` through the one op (`whole`) or the general path."""
    kept = model.whole_evaluation_atoms
    model.whole_evaluation_atoms = kept if whole else 0
    try:
        return evaluate(model, atoms, **kwargs)
    finally:
        model.whole_evaluation_atoms = kept


def assert_same(whole: Dict[str, torch.Tensor], general: Dict[str, torch.Tensor], tolerance: float) -> None:
    assert set(whole) == set(general)
    for name, value in general.items():
        other = whole[name]
        assert other.shape == value.shape and other.dtype == value.dtype, name
        if value.is_floating_point() and value.numel() and not torch.equal(other, value):
            scale = max(float(value.abs().max()), 1.0)
            assert float((other.double() - value.double()).abs().max()) <= tolerance * scale, name
        else:
            assert torch.equal(other, value), name


def kernels_on(model):
    model.use_native_kernels(True)
    return model.eval()


def test_the_op_runs_and_the_per_element_kernels_do_not(monkeypatch):
    model = kernels_on(mixed_model())
    atoms = water_box(8, seed=1)
    calls = []
    original = NativeKernel.forward
    monkeypatch.setattr(NativeKernel, "forward", lambda *args: calls.append(1) or original(*args))
    evaluate(model, atoms)
    assert not calls
    run(model, atoms, whole=False)
    assert calls


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_output_equals_the_general_path(system):
    model = kernels_on(ranged_model())
    atoms = SYSTEMS[system]()
    virial = bool(atoms.pbc.all())
    kwargs = dict(compute_forces=True, compute_virial=virial, count_extrapolation=True)
    whole, general = run(model, atoms, True, **kwargs), run(model, atoms, False, **kwargs)
    assert_same(whole, general, TOL["exact"])
    assert set(OUTPUTS) - ({"virial", "atomic_virials"} if not virial else set()) == set(whole)
    if system == "squeezed":
        assert int(whole["extrapolation"].sum()) > 0


@pytest.mark.parametrize("cutoff_type,alpha", [(0, 0.0), (1, 0.0), (1, 0.3), (2, 0.0), (3, 0.0), (4, 0.2),
                                               (5, 0.0), (6, 0.1), (7, 0.0), (8, 0.4)])
def test_every_cutoff_function(cutoff_type, alpha):
    model = kernels_on(mixed_model(cutoff_type, alpha))
    atoms = triclinic_water()
    kwargs = dict(compute_virial=True)
    assert_same(run(model, atoms, True, **kwargs), run(model, atoms, False, **kwargs), TOL["exact"])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation(activation):
    model = kernels_on(randomized(BPNNModel.from_spec(h2o_spec(activations=(activation, "tanh", "identity")))))
    atoms = water_box(8, seed=3)
    assert_same(run(model, atoms, True), run(model, atoms, False), TOL["exact"])


def test_a_committee_gives_its_mean():
    committee = kernels_on(build_committee([ranged_model(seed) for seed in (1, 2, 3)]))
    atoms = triclinic_water()
    kwargs = dict(compute_virial=True, count_extrapolation=True)
    assert_same(run(committee, atoms, True, **kwargs), run(committee, atoms, False, **kwargs), TOL["exact"])
    spreads = evaluate(committee, atoms, compute_uncertainty=True)  # (the general path: spreads need members)
    assert "forces_uncertainty" in spreads


def test_float32():
    model = kernels_on(ranged_model().to(torch.float32))
    atoms = triclinic_water()
    kwargs = dict(compute_virial=True, count_extrapolation=True)
    whole, general = run(model, atoms, True, **kwargs), run(model, atoms, False, **kwargs)
    assert whole["forces"].dtype == torch.float32
    assert_same(whole, general, 10 * TOL["float32_rel"])


def test_the_model_file_takes_it_too(tmp_path):
    model = kernels_on(ranged_model())
    loaded = load(export(model, tmp_path / "model.pt"))
    atoms = triclinic_water()
    kwargs = dict(compute_virial=True, count_extrapolation=True)
    assert_same(run(loaded, atoms, True, **kwargs), run(model, atoms, False, **kwargs), TOL["exact"])


def test_forces_are_minus_the_energy_gradient():
    model = kernels_on(mixed_model())
    atoms = triclinic_water()
    forces = evaluate(model, atoms)["forces"]
    step = 1e-5
    for atom, axis in ((0, 0), (4, 2), (9, 1)):
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * step
            energies.append(float(evaluate(model, moved)["energy"]))
        assert abs(-(energies[0] - energies[1]) / (2 * step) - float(forces[atom, axis])) < 1e-7


@pytest.mark.parametrize("case,message", [("nan", "`positions` contain NaN or inf"),
                                          ("carbon", "element C \\(atomic number 6\\) is not in this model"),
                                          ("overlap", "atoms 0 and 3 overlap")])
def test_bad_input_gets_the_general_paths_message(case, message):
    model = kernels_on(mixed_model())
    atoms = water_dimer()
    if case == "nan":
        atoms.positions[1, 0] = np.nan
    elif case == "carbon":
        atoms.numbers[2] = 6
    else:
        atoms.positions[3] = atoms.positions[0]
    args = [torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.zeros(3, 3, dtype=torch.float64),
            torch.zeros(3, dtype=torch.bool)]
    assert model.potential.evaluate_whole(*args, None, model.species_of_z, False, False) == []
    with pytest.raises(ValueError, match=message):
        evaluate(model, atoms)


def engine_inputs(atoms: Atoms, cutoff: float, ghosts: bool):
    """An engine's inputs for `atoms`: its pairs within `cutoff` (the model's plus a skin) with
    integer shifts, or (`ghosts`) with ghost copies of the periodic images, zero shifts, and the
    ghosts' own pairs too (centres >= n_local, which the model must leave out)."""
    from ase.neighborlist import neighbor_list
    i, j, shifts = neighbor_list("ijS", atoms, cutoff)
    positions, numbers = atoms.positions, atoms.numbers
    if ghosts:
        index = {}
        extra = []
        for p, (jj, s) in enumerate(zip(j, map(tuple, shifts))):
            if s != (0, 0, 0):
                j[p] = index.setdefault((jj, s), len(atoms) + len(extra))
                if j[p] == len(atoms) + len(extra):
                    extra.append(atoms.positions[jj] + np.array(s) @ atoms.cell.array)
                    numbers = np.append(numbers, atoms.numbers[jj])
        positions = np.vstack([positions, np.array(extra).reshape(-1, 3)])
        ghost_pairs = np.array([[g, 0] for g in range(len(atoms), len(positions))]).T.reshape(2, -1)
        i, j = np.concatenate([i, ghost_pairs[0]]), np.concatenate([j, ghost_pairs[1]])
        shifts = np.zeros((len(i), 3), dtype=int)
    order = np.random.default_rng(0).permutation(len(i))  # engines need not group pairs by centre
    return (torch.tensor(positions), torch.tensor(numbers), torch.tensor(np.asarray(atoms.cell.array)),
            torch.ones(3, dtype=torch.bool), torch.tensor(np.stack([i[order], j[order]])),
            torch.tensor(shifts[order]), len(atoms))


@pytest.mark.parametrize("ghosts", [False, True], ids=["shifts", "ghosts"])
def test_an_engine_list_equals_the_general_path(ghosts):
    model = kernels_on(ranged_model())
    positions, numbers, cell, pbc, pairs, shifts, n_local = engine_inputs(triclinic_water(), model.cutoff() + 0.5,
                                                                          ghosts)
    results = []
    for whole in (True, False):
        model.whole_evaluation_atoms = 1 << 40 if whole else 0
        results.append(model(positions, numbers, cell, pbc, pairs, shifts, n_local, compute_virial=True,
                             count_extrapolation=True))
    model.whole_evaluation_atoms = 1 << 40
    assert len(model.potential.evaluate_whole(positions, numbers, cell, pbc, (pairs, shifts, n_local),
                                              model.species_of_z, True, True)) == 8  # (the op ran)
    assert_same(results[0], results[1], TOL["exact"])
    assert results[0]["energies"].shape == (n_local,) and results[0]["forces"].shape == (len(positions), 3)


def test_results_do_not_depend_on_the_thread_count():
    model = kernels_on(ranged_model())
    atoms = water_box(16, box=8.0, seed=4)  # 48 centres: chunks on both threads
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(evaluate(model, atoms, compute_virial=True, count_extrapolation=True))
    finally:
        torch.set_num_threads(before)
    for name, value in results[0].items():
        assert torch.equal(value, results[1][name]), name


def many_functions_in_one_group():
    """H/O functions where one group (eta, r_c) holds six wide and six narrow angular functions
    per element pair: the kernels sum a group's functions four at a time (acsf_sets.h)."""
    wide = auto_symmetry_functions([1, 8], 4.0, n_radial=2, angular_eta=[0.03], zetas=[1.0, 2.0, 4.0])
    narrow = auto_symmetry_functions([1, 8], 4.0, n_radial=1, angular_eta=[0.03], zetas=[1.0, 2.0, 4.0], narrow=True)
    spec = h2o_spec(functions=tuple(wide + [f for f in narrow if not isinstance(f, RadialSF)]))
    return kernels_on(randomized(BPNNModel.from_spec(spec)))


def outside_in_cluster() -> Atoms:
    """A water cluster ordered from its surface inwards: each centre has more neighbours than
    the last, so the kernels' per-thread storage grows between centres of one call."""
    atoms = water_box(24, box=9.0, seed=5)
    atoms.pbc = False
    order = np.argsort(-np.linalg.norm(atoms.positions - atoms.positions.mean(axis=0), axis=1))
    return atoms[order]


@pytest.mark.parametrize("system", ["cluster", "box"])
def test_groups_of_many_functions_equal_the_torch_path(system):
    model = many_functions_in_one_group()
    atoms = outside_in_cluster() if system == "cluster" else water_box(8, seed=6)
    kwargs = dict(compute_virial=system == "box")
    whole, general = run(model, atoms, True, **kwargs), run(model, atoms, False, **kwargs)
    assert_same(whole, general, TOL["exact"])
    model.use_native_kernels(False)
    reference = evaluate(model, atoms, **kwargs)
    assert_same(whole, {name: value for name, value in reference.items() if name in whole}, TOL["exact"])
