"""Committees: several networks per element in one model; the mean as energy and forces, the
members' spread as uncertainty, in every evaluation path and in the ASE calculator."""

import warnings

import numpy as np
import pytest
import torch

from bpnn_ts import BPNNModel, export, keys, load
from bpnn_ts.calculator import BPNNCalculator
from bpnn_ts.cli import main
from bpnn_ts.committee_merge import build_committee, committee_member
from bpnn_ts.input_scaling import fit_scaling
from bpnn_ts.native import load_ops

from helpers import (
    TOL,
    evaluate,
    h2o_spec,
    mixed_functions,
    mixed_model,
    randomized,
    squeezed_box,
    training_boxes,
    water_box,
)

UNCERTAINTY_KEYS = (keys.COMMITTEE_ENERGY, keys.COMMITTEE_ENERGIES, keys.COMMITTEE_FORCES, keys.COMMITTEE_VIRIAL,
                    keys.ENERGY_UNCERTAINTY,
                    keys.ENERGIES_UNCERTAINTY, keys.FORCES_UNCERTAINTY)


def scaled_model(seed: int, boxes, energy_scale: float = 1.0, shifts=(-1.5, -4.0), scaling: str = "scale"):
    """An H/O model with its own seed, scaling statistics, energy scale and reference energies."""
    model = BPNNModel.from_spec(h2o_spec(scaling=scaling, scale_min=-1.0, scale_max=1.0, energy_scale=energy_scale,
                     atomic_energy_shift={1: shifts[0], 8: shifts[1]}))
    model = randomized(model, seed)
    fit_scaling(model, boxes)
    return model


@pytest.fixture(scope="module")
def members():
    """Three models trained "apart": different weights, scalings, energy scales and shifts."""
    boxes = training_boxes()
    return [scaled_model(1, boxes[:2]),
            scaled_model(2, boxes[1:], energy_scale=0.7, shifts=(-1.2, -4.3), scaling="sigma"),
            scaled_model(3, boxes, energy_scale=1.3, scaling="center")]


@pytest.fixture(scope="module")
def committee(members):
    return build_committee(members)


def member_results(members, atoms):
    return [evaluate(m, atoms, compute_virial=True) for m in members]


def test_committee_is_the_mean_of_its_members(members, committee):
    """Folding each member's scaling, energy scale and shifts into its layers is exact."""
    atoms = water_box(8, seed=11)
    expected = member_results(members, atoms)
    result = evaluate(committee, atoms, compute_virial=True)
    for key in (keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL, keys.ATOMIC_VIRIALS):
        mean = torch.stack([r[key] for r in expected]).mean(dim=0)
        torch.testing.assert_close(result[key], mean, rtol=0, atol=TOL["runtime"])
    assert committee.committee_size() == 3
    assert committee.training_range_known()
    for s, element in enumerate(committee.potential.elements):  # the union of the members' ranges
        low = torch.stack([m.potential.elements[s].scaling.g_min for m in members]).min(dim=0).values
        torch.testing.assert_close(element.scaling.g_min, low)


@pytest.mark.parametrize("path", ["torch", "native", "scripted"])
def test_uncertainty_outputs(members, committee, path):
    if path == "native" and not load_ops():
        pytest.skip("the C++ kernels cannot be built here")
    model = committee
    if path == "native":
        model = build_committee(members)
        assert model.use_native_kernels(True)
    if path == "scripted":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.jit.script(committee)
    atoms = water_box(8, seed=12)
    expected = member_results(members, atoms)
    result = evaluate(model, atoms, compute_virial=True, compute_uncertainty=True)
    energies = torch.stack([r[keys.ENERGY] for r in expected])
    forces = torch.stack([r[keys.FORCES] for r in expected])
    atom_energies = torch.stack([r[keys.ENERGIES] for r in expected])
    close = dict(rtol=0, atol=TOL["runtime"])
    torch.testing.assert_close(result[keys.COMMITTEE_ENERGY], energies, **close)
    torch.testing.assert_close(result[keys.COMMITTEE_FORCES], forces, **close)
    torch.testing.assert_close(result[keys.COMMITTEE_ENERGIES], atom_energies, **close)
    torch.testing.assert_close(result[keys.COMMITTEE_VIRIAL], torch.stack([r[keys.VIRIAL] for r in expected]), **close)
    torch.testing.assert_close(result[keys.ENERGY], energies.mean(), **close)
    torch.testing.assert_close(result[keys.FORCES], forces.mean(dim=0), **close)
    np.testing.assert_allclose(float(result[keys.ENERGY_UNCERTAINTY]), np.std(energies.numpy()), rtol=TOL["extensive"])
    np.testing.assert_allclose(result[keys.ENERGIES_UNCERTAINTY].numpy(), np.std(atom_energies.numpy(), axis=0),
                               rtol=TOL["extensive"], atol=TOL["exact"])
    deviation = forces.numpy() - forces.numpy().mean(axis=0)
    np.testing.assert_allclose(result[keys.FORCES_UNCERTAINTY].numpy(),
                               np.sqrt((deviation ** 2).sum(axis=2).mean(axis=0)), rtol=TOL["extensive"], atol=TOL["exact"])
    assert float(result[keys.ENERGY_UNCERTAINTY]) > 1e-3  # different members disagree
    plain = evaluate(model, atoms, compute_virial=True)
    assert not set(UNCERTAINTY_KEYS) & set(plain)
    torch.testing.assert_close(plain[keys.FORCES], result[keys.FORCES], **close)


def test_identical_members_have_no_spread(members):
    committee = build_committee([members[0], members[0]])
    result = evaluate(committee, water_box(8, seed=13), compute_uncertainty=True)
    assert float(result[keys.ENERGY_UNCERTAINTY]) == 0.0
    assert float(result[keys.FORCES_UNCERTAINTY].max()) == 0.0


def test_committee_forces_are_minus_the_gradient(committee):
    """Central differences of the committee's mean energy (float64)."""
    atoms = water_box(4, box=5.0, seed=14)
    forces = evaluate(committee, atoms)[keys.FORCES].numpy()
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (7, 2)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * h
            energies.append(float(evaluate(committee, moved)[keys.ENERGY]))
        assert abs(-(energies[0] - energies[1]) / (2 * h) - forces[atom, axis]) < TOL["fd_force"]


def test_members_round_trip(members, committee):
    atoms = water_box(8, seed=15)
    for k, member in enumerate(members):
        single = committee_member(committee, k)
        assert single.committee_size() == 1
        # the member's own scaling is folded away: same energies and forces, other inputs
        torch.testing.assert_close(evaluate(single, atoms)[keys.FORCES], evaluate(member, atoms)[keys.FORCES],
                                   rtol=0, atol=TOL["runtime"])
    nested = build_committee([committee, members[0]])  # committees contribute all their members
    assert nested.committee_size() == 4


def test_file_round_trip_and_cli(members, tmp_path, capsys):
    paths = []
    for k, member in enumerate(members):
        paths.append(tmp_path / f"member{k}.pt")
        export(member, paths[-1])
    out = tmp_path / "committee.pt"
    assert main(["committee", *map(str, paths), "-o", str(out)]) == 0
    assert "committee of 3 networks" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    assert "committee_size  3" in capsys.readouterr().out
    loaded = load(out)
    atoms = water_box(8, seed=16)
    result = evaluate(loaded, atoms, compute_uncertainty=True)
    expected = torch.stack([r[keys.ENERGY] for r in member_results(members, atoms)])
    torch.testing.assert_close(result[keys.COMMITTEE_ENERGY], expected, rtol=0, atol=TOL["runtime"])


def test_calculator_uncertainties(committee, members):
    atoms = squeezed_box()
    atoms.calc = BPNNCalculator(committee, extrapolation="ignore")
    forces = atoms.get_forces()
    assert "forces_uncertainty" not in atoms.calc.results  # not asked for: not computed
    spread = atoms.calc.get_property("forces_uncertainty", atoms)
    assert spread.shape == (len(atoms),) and (spread > 0).all()
    np.testing.assert_allclose(atoms.calc.results["forces"], forces, atol=TOL["runtime"])
    assert atoms.calc.results["committee_forces"].shape == (3, len(atoms), 3)
    every_call = BPNNCalculator(committee, extrapolation="ignore", uncertainty=True)
    atoms.calc = every_call
    atoms.get_potential_energy()
    assert atoms.calc.results["energy_uncertainty"] > 0
    np.testing.assert_allclose(atoms.calc.results["energies_uncertainty"].shape, (len(atoms),))
    single = BPNNCalculator(members[0], extrapolation="ignore")
    with pytest.raises(ValueError, match="needs a committee"):
        BPNNCalculator(members[0], uncertainty=True)
    atoms.calc = single
    from ase.calculators.calculator import PropertyNotImplementedError
    with pytest.raises(PropertyNotImplementedError, match="committee"):
        atoms.calc.get_property("forces_uncertainty", atoms)


def test_clear_errors(members):
    with pytest.raises(ValueError, match="at least 2"):
        build_committee(members[:1])
    other = BPNNModel.from_spec(h2o_spec(functions=tuple(mixed_functions(cutoff=3.5))))
    with pytest.raises(ValueError, match="functions"):
        build_committee([members[0], other])
    wider = BPNNModel.from_spec(h2o_spec(hidden_layers=(8, 9)))
    with pytest.raises(ValueError, match="hidden_layers"):
        build_committee([members[0], wider])
    bent = [BPNNModel.from_spec(h2o_spec(hidden_layers=(8,), activations=("tanh", "tanh"), energy_scale=e,
                                         atomic_energy_shift={})) for e in (1.0, 2.0)]
    with pytest.raises(ValueError, match="output activation"):
        build_committee(bent)
    with pytest.raises(ValueError, match="needs a committee"):
        evaluate(members[0], water_box(8, seed=17), compute_uncertainty=True)
    with pytest.raises(ValueError, match="no committees"):
        from bpnn_ts.io.n2p2_writer import write_n2p2
        write_n2p2(build_committee(members[:2]), "/nonexistent/never-written")


def test_member_without_range_leaves_the_committee_without_one(members):
    plain = mixed_model(seed=4)
    assert not build_committee([members[0], plain]).training_range_known()
