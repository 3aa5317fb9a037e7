"""Many systems per call (BPNNModel.forward_batch, bpnn_ts.many_structures): a batch gives what one
forward call per system gives, eager, scripted and after save/load, with the torch path and the
fused kernels; bad batches are refused naming the argument; `bpnn-ts eval` is unchanged."""

import copy
import json
import warnings

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from bpnn_ts import build_committee, export, keys, load
from bpnn_ts.cli import main
from bpnn_ts.many_structures import batch_inputs, evaluate_many, plan_batches, split_results
from bpnn_ts.native import load_ops
from bpnn_ts.training.metrics import evaluate_structures

from helpers import TOL, evaluate, ranged_model, triclinic_water, water_dimer

PER_ATOM = (keys.ENERGIES, keys.FORCES, keys.ATOMIC_VIRIALS, keys.EXTRAPOLATION)
PER_SYSTEM = (keys.ENERGY, keys.VIRIAL, keys.MIN_DISTANCE)
FLAGS = {"compute_virial": True, "count_extrapolation": True}


def mixed_batch():
    """A periodic triclinic box, an empty system, a non-periodic dimer, one atom among its own
    periodic images, one lone atom (B = 5)."""
    lone_periodic = Atoms("O", positions=[[0.3, 0.2, 0.1]], cell=np.eye(3) * 3.1, pbc=True)
    lone = Atoms("H", positions=[[1.0, 2.0, 3.0]])
    return [triclinic_water(), Atoms(), water_dimer(), lone_periodic, lone]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    """Equal to TOL["exact"] relative to the largest entry of `expected` (exact for integers)."""
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    if not expected.is_floating_point():
        assert torch.equal(actual, expected), name
        return
    finite = torch.isfinite(expected)  # (min_distance is inf for a system without pairs)
    scale = float(expected[finite].abs().max()) if bool(finite.any()) else 0.0
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=TOL["exact"] * scale, msg=name)


@pytest.fixture(scope="module")
def model():
    return ranged_model()


def variant(model, name: str, tmp_path_factory):
    """`model` eager on the torch path or the fused kernels, scripted, or exported and loaded."""
    if name == "native" and not load_ops():
        pytest.skip("the fused C++ kernels cannot be built here")
    eager = copy.deepcopy(model)
    eager.use_native_kernels(name == "native")
    if name == "scripted":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(eager)
    if name == "loaded":
        return load(export(eager, tmp_path_factory.mktemp("batch") / "model.pt"))
    return eager


@pytest.mark.parametrize("name", ["torch", "native", "scripted", "loaded"])
def test_batch_equals_one_call_per_system(model, name, tmp_path_factory):
    evaluated = variant(model, name, tmp_path_factory)
    structures = mixed_batch()
    result = evaluated.forward_batch(*batch_inputs(structures, torch.float64), **FLAGS)
    assert result[keys.ENERGY].shape == (5,) and result[keys.FORCES].shape == (sum(map(len, structures)), 3)
    assert set(result) == set(PER_ATOM + PER_SYSTEM)
    for k, (atoms, batched) in enumerate(zip(structures, split_results(result, [len(a) for a in structures]))):
        single = evaluate(evaluated, atoms, **FLAGS)
        for key in PER_ATOM + PER_SYSTEM:
            assert_close(batched[key], single[key], f"system {k}: {key}")
    assert float(result[keys.ENERGY][1]) == 0.0 and bool(result[keys.EXTRAPOLATION].sum() >= 0)


@pytest.mark.parametrize("name", ["native", "loaded"])
def test_open_systems_share_one_search_and_never_see_each_other(model, name, tmp_path_factory):
    """Molecules on top of each other, far apart (1e4 Å) and between periodic systems: each gets
    what its own call gives (the open ones are searched side by side in one search)."""
    evaluated = variant(model, name, tmp_path_factory)
    structures = []
    for k in range(12):
        molecule = water_dimer()
        molecule.rattle(0.05, seed=k)
        if k % 3 == 1:
            molecule.positions += 1e4
        structures.append(molecule)
        if k == 5:
            structures.append(triclinic_water(seed=2))
    structures[3] = structures[2].copy()  # the same coordinates in two systems
    result = evaluated.forward_batch(*batch_inputs(structures, torch.float64), **FLAGS)
    for k, (atoms, batched) in enumerate(zip(structures, split_results(result, [len(a) for a in structures]))):
        single = evaluate(evaluated, atoms, **FLAGS)
        for key in PER_ATOM + PER_SYSTEM:
            assert_close(batched[key], single[key], f"system {k}: {key}")


def test_single_system_and_empty_batch(model):
    atoms = triclinic_water(seed=1)
    one = model.forward_batch(*batch_inputs([atoms], torch.float64), compute_virial=True)
    single = evaluate(model, atoms, compute_virial=True)
    for key in (keys.ENERGY, keys.VIRIAL):
        assert_close(one[key][0], single[key], key)
    assert_close(one[keys.FORCES], single[keys.FORCES], keys.FORCES)
    empty = model.forward_batch(*batch_inputs([], torch.float64), compute_virial=True)
    assert empty[keys.ENERGY].shape == (0,) and empty[keys.VIRIAL].shape == (0, 3, 3)
    assert empty[keys.FORCES].shape == (0, 3) and empty[keys.ENERGIES].shape == (0,)


def test_committee_spreads_per_system():
    committee = build_committee([ranged_model(seed) for seed in (1, 2)]).eval()
    structures = [triclinic_water(), water_dimer(), Atoms()]
    flags = {"compute_virial": True, "compute_uncertainty": True}
    result = committee.forward_batch(*batch_inputs(structures, torch.float64), **flags)
    assert result[keys.COMMITTEE_ENERGY].shape == (2, 3) and keys.COMMITTEE_VIRIAL not in result
    for k, (atoms, batched) in enumerate(zip(structures, split_results(result, [len(a) for a in structures]))):
        single = evaluate(committee, atoms, **flags)
        for key in (keys.ENERGY, keys.VIRIAL, keys.ENERGIES, keys.FORCES, keys.COMMITTEE_ENERGY,
                    keys.COMMITTEE_ENERGIES, keys.COMMITTEE_FORCES, keys.ENERGY_UNCERTAINTY,
                    keys.ENERGIES_UNCERTAINTY, keys.FORCES_UNCERTAINTY):
            assert_close(batched[key], single[key], f"system {k}: {key}")


def bad_batches():
    """(what to change in a good batch of [box, dimer], the message expected)."""
    def change(**replace):
        return replace
    return [
        (change(system_index=torch.tensor([1] * 18 + [0] * 6)), r"`system_index` must be non-decreasing"),
        (change(system_index=torch.tensor([0] * 18 + [2] * 6)),
         r"`system_index` must hold system numbers in \[0, n_systems=2\) \(n_systems from `cells`\), got values from 0 to 2"),
        (change(system_index=torch.zeros(23, dtype=torch.long)),
         r"`system_index` must have shape \(n_atoms,\) = \(24,\), got .*23"),
        (change(system_index=torch.zeros(24)), r"`system_index` must be an integer tensor, got float32"),
        (change(cells=torch.zeros(2, 3)), r"`cells` must have shape \(n_systems, 3, 3\)"),
        (change(pbc=torch.ones(3, dtype=torch.bool)),
         r"`pbc` must be a bool tensor of shape \(n_systems, 3\) = \(2, 3\)"),
        (change(cells=torch.zeros(2, 3, 3, dtype=torch.float64)), r"`cells\[0\]` row 0 is zero"),
        (change(positions="overlap"), r"atoms 18 and 19 overlap"),
        (change(positions="nan"), r"`positions` contain NaN or inf"),
        (change(atomic_numbers=torch.tensor([8, 1, 1] * 6 + [29] * 6)), r"element Cu .* supported elements: H, O"),
    ]


@pytest.mark.parametrize("scripted", [False, True])
def test_bad_batches_name_the_argument(model, scripted):
    evaluated = torch.jit.script(copy.deepcopy(model)) if scripted else model
    good = dict(zip(["positions", "atomic_numbers", "system_index", "cells", "pbc"],
                    batch_inputs([triclinic_water(), water_dimer()], torch.float64)))
    for replace, message in bad_batches():
        inputs = dict(good)
        inputs.update(replace)
        if isinstance(inputs["positions"], str):
            positions = good["positions"].clone()
            if inputs["positions"] == "nan":
                positions[3, 1] = float("nan")
            else:
                positions[19] = positions[18]
            inputs["positions"] = positions
        with pytest.raises((ValueError, torch.jit.Error), match=message):
            evaluated.forward_batch(**inputs)


def test_plan_batches_bounds_the_atoms():
    assert plan_batches([3, 3, 3, 10, 1, 1], 6) == [range(0, 2), range(2, 3), range(3, 4), range(4, 6)]
    assert plan_batches([], 6) == []
    with pytest.raises(ValueError, match="`max_atoms` must be >= 1, got 0"):
        plan_batches([1], 0)


def labelled(structures):
    """Copies of `structures` with made-up energies, forces and (periodic ones) stresses."""
    rng = np.random.default_rng(0)
    out = []
    for atoms in structures:
        atoms = atoms.copy()
        stress = rng.normal(size=6) * 0.01 if atoms.pbc.all() else None
        results = {"energy": -10.0 + rng.normal(), "forces": rng.normal(size=(len(atoms), 3))}
        if stress is not None:
            results["stress"] = stress
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
    return out


class PerSystemOnly:
    """A model without forward_batch (as an old file or a `.pt2` file)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def atomic_numbers(self):
        return self.model.atomic_numbers()

    def dtype_name(self):
        return self.model.dtype_name()


def test_eval_metrics_unchanged_by_batching(model, tmp_path, capsys):
    structures = labelled([triclinic_water(seed=s) for s in range(3)] + [water_dimer(), water_dimer()])
    path = export(model, tmp_path / "model.pt")
    loaded = load(path)
    before = evaluate_structures(loaded, structures, batch_atoms=0)
    assert before["structures"] == 5 and "stress_rmse_mev_a3" in before
    for evaluated, budget in ((loaded, 20), (loaded, 10_000), (PerSystemOnly(loaded), 10_000)):
        after = evaluate_structures(evaluated, structures, batch_atoms=budget)
        assert after.keys() == before.keys()
        for key, value in before.items():
            assert abs(after[key] - value) <= TOL["exact"] * abs(value), key
    data = tmp_path / "data.extxyz"
    ase.io.write(data, structures)
    printed = []
    for budget in ("0", "30"):
        assert main(["eval", str(path), str(data), "--json", "--batch-atoms", budget]) == 0
        printed.append(json.loads(capsys.readouterr().out))
    assert printed[1].keys() == printed[0].keys() == before.keys()
    for key, value in printed[0].items():
        assert abs(printed[1][key] - value) <= TOL["exact"] * abs(value), key
    assert main(["eval", str(path), str(data), "--batch-atoms", "-1"]) == 2
    assert "`max_atoms` must be >= 0 (0: one call per structure), got -1" in capsys.readouterr().err


def test_evaluate_many_falls_back_per_structure(model):
    structures = [water_dimer(), triclinic_water()]
    batched = list(evaluate_many(model, structures, compute_virial=True))
    single = list(evaluate_many(PerSystemOnly(model), structures, compute_virial=True))
    assert len(batched) == len(single) == 2
    for one, other in zip(batched, single):
        for key in (keys.ENERGY, keys.FORCES, keys.VIRIAL):
            assert_close(one[key], other[key], key)
