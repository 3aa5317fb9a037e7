"""ASE calculator: properties, MD (NVE energy conservation, Langevin), relaxation, errors."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from bpnn_ts import BPNNCalculator, export, fit_scaling, parse_model_config

from helpers import TOL, evaluate


@pytest.fixture(scope="module")
def copper_file(tmp_path_factory):
    config = parse_model_config({"elements": ["Cu"], "cutoff": 4.5, "scaling": "scalecenter", "seed": 2,
                                 "symmetry_functions": {"auto": {"n_radial": 5, "angular_eta": [0.02]}},
                                 "hidden_layers": [10, 10], "atomic_energies": {"Cu": -3.0}})
    model = config.build()
    rng = np.random.default_rng(0)
    structures = []
    for k in range(3):  # rattled and strained 32-atom cells: the scaling's data range
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.03, 0.03)), cubic=True).repeat(2)
        atoms.rattle(0.05 + 0.1 * k / 3, seed=int(rng.integers(1 << 30)))
        structures.append(atoms)
    fit_scaling(model, structures)
    return export(model.eval(), tmp_path_factory.mktemp("cu") / "cu.pt")


def test_properties_match_the_model(copper_file, water_model):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=1)
    atoms.calc = BPNNCalculator(copper_file)
    energies = atoms.get_potential_energies()
    assert abs(atoms.get_potential_energy() - energies.sum()) < TOL["runtime"]
    assert atoms.get_forces().shape == (len(atoms), 3)
    assert atoms.get_stress().shape == (6,)
    assert atoms.calc.get_property("free_energy") == atoms.get_potential_energy()
    # a live (eager) model works as well as a file
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    water.calc = BPNNCalculator(water_model)
    assert abs(water.get_potential_energy() - float(evaluate(water_model, water)["energy"])) < TOL["exact"]


def test_results_are_recomputed_exactly_when_what_the_model_reads_changes(copper_file):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=3)
    calc = BPNNCalculator(copper_file)
    atoms.calc = calc
    calls = []
    calculate = calc.calculate
    calc.calculate = lambda *args, **kwargs: (calls.append(1), calculate(*args, **kwargs))[1]
    energy = atoms.get_potential_energy()
    atoms.get_forces()
    assert len(calls) == 1 and calc.check_state(atoms) == []
    atoms.set_initial_magnetic_moments([1.0] * len(atoms))  # not read by the model: no new call
    atoms.get_potential_energy()
    assert len(calls) == 1
    changes = [("positions", lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 1e-12)),
               ("cell", lambda a: a.set_cell(a.cell.array * 1.001, scale_atoms=False)),
               ("pbc", lambda a: a.set_pbc([True, True, False])),
               ("numbers", lambda a: a.numbers.__setitem__(0, 29))]  # same number: no change
    expected_calls = 1
    for name, change in changes:
        change(atoms)
        expected = [] if name == "numbers" else [name]
        assert calc.check_state(atoms) == expected, name
        atoms.get_potential_energy()
        expected_calls += len(expected)
        assert len(calls) == expected_calls, name
    other = atoms.copy()
    other.pop()
    assert set(calc.check_state(other)) >= {"positions", "numbers"}
    fresh = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    fresh.rattle(0.05, seed=3)
    fresh.calc = BPNNCalculator(copper_file)
    assert fresh.get_potential_energy() == energy


def test_stress_voigt_order_matches_finite_strain(copper_file):
    atoms = bulk("Cu", "fcc", a=3.55).repeat((2, 2, 1))
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.02, 0.0], [0.01, 1.0, 0.03], [0.0, 0.0, 0.98]]), scale_atoms=True)
    atoms.rattle(0.03, seed=4)
    atoms.calc = BPNNCalculator(copper_file)
    stress = atoms.get_stress(voigt=False)
    h = 1e-6
    for a, b in [(0, 0), (1, 2), (0, 1)]:
        energies = []
        for sign in (1, -1):
            strained = atoms.copy()
            strain = np.eye(3)
            strain[a, b] += sign * h / 2
            strain[b, a] += sign * h / 2
            strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            strained.calc = atoms.calc
            energies.append(strained.get_potential_energy())
        assert abs((energies[0] - energies[1]) / (2 * h) / atoms.get_volume() - stress[a, b]) < TOL["fd_stress"]


def test_nve_conserves_energy(copper_file):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.calc = BPNNCalculator(copper_file, dtype="float64")
    MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    totals = []
    dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dynamics.run(200)
    assert len(totals) == 201
    assert (max(totals) - min(totals)) / len(atoms) < TOL["nve_drift"]
    assert atoms.get_kinetic_energy() > 0


def test_langevin_and_bfgs_run(copper_file):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.1, seed=3)
    atoms.calc = BPNNCalculator(copper_file, dtype="float32")
    Langevin(atoms, 2 * units.fs, temperature_K=300, friction=0.02, rng=np.random.default_rng(0)).run(10)
    start = atoms.get_potential_energy()
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=100)
    assert atoms.get_potential_energy() <= start
    assert np.abs(atoms.get_forces()).max() < 0.05


def test_clear_errors(copper_file):
    calc = BPNNCalculator(copper_file)
    wrong = Atoms("CuNi", positions=[[0, 0, 0], [2.5, 0, 0]])
    wrong.calc = calc
    with pytest.raises(ValueError, match="^element Ni \\(atomic number 28\\) is not in this model; supported elements: Cu$"):
        wrong.get_potential_energy()
    nan = Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]])
    nan.calc = calc
    with pytest.raises(ValueError, match="NaN"):
        nan.get_forces()
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    molecule.calc = calc
    with pytest.raises(Exception, match="stress needs a cell periodic"):
        molecule.get_stress()
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        BPNNCalculator(copper_file, dtype="float16")


def test_validation_at_the_calculator_boundary():
    """Empty systems, absurd cells and too-close atoms: clear answers, never a crash in torch."""
    import warnings

    from bpnn_ts.calculator import CloseAtomsWarning

    from helpers import mixed_model
    model = mixed_model()
    empty = Atoms("", cell=[5, 5, 5], pbc=True)
    empty.calc = BPNNCalculator(model)
    assert empty.get_potential_energy() == 0.0 and empty.get_forces().shape == (0, 3)
    tiny = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [0, 0.96, 0]], cell=np.eye(3) * 1e-3, pbc=True)
    tiny.calc = BPNNCalculator(model)
    with pytest.raises(ValueError, match="cell is far too small for the cutoff"):
        tiny.get_potential_energy()
    close = Atoms("OH2", positions=[[0, 0, 0], [0.3, 0, 0], [0, 0.96, 0]])
    close.calc = BPNNCalculator(model)
    with pytest.warns(CloseAtomsWarning, match=r"atoms 0 \(O\) and 1 \(H\) are 0.300 Å apart"):
        close.get_potential_energy()
    close.calc = BPNNCalculator(model, min_distance=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CloseAtomsWarning)
        close.get_potential_energy()


def error_cases():
    """(raw text, expected message) pairs of tests/fixtures/error_messages.txt."""
    from helpers import ROOT
    cases, expected, raw = [], None, []
    for line in (ROOT / "tests" / "fixtures" / "error_messages.txt").read_text().splitlines():
        if line.startswith("#") and expected is None:
            continue
        if line.startswith("=== "):
            if expected is not None:
                cases.append(("\n".join(raw), expected))
            expected, raw = line[4:], []
        else:
            raw.append(line)
    cases.append(("\n".join(raw), expected))
    return cases


@pytest.mark.parametrize("raw,expected", error_cases())
def test_one_message_rule_for_torch_errors(raw, expected):
    """The message users see of a torch/TorchScript error (the C++ loader applies the same rule to
    the same cases: cpp_loader/tests/error_message_test.cpp)."""
    from bpnn_ts.errors import error_message
    assert error_message(raw) == expected


def test_warnings_point_at_the_users_line(tmp_path):
    """ExtrapolationWarning and CloseAtomsWarning name this file, not ASE's or bpnn_ts's internals."""
    import warnings

    from bpnn_ts.calculator import CloseAtomsWarning
    from bpnn_ts.extrapolation import ExtrapolationWarning

    from helpers import ranged_model, squeezed_box
    atoms = squeezed_box()
    atoms.calc = BPNNCalculator(ranged_model(), min_distance=5.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        atoms.get_potential_energy()
    categories = {w.category: w for w in caught}
    for category in (ExtrapolationWarning, CloseAtomsWarning):
        assert categories[category].filename == __file__, (category, categories[category].filename)


def test_threads_are_set_for_each_evaluation_and_restored(water_model):
    """threads=1 by default (never slow on a busy machine); torch's setting is restored after."""
    import torch

    from helpers import water_box
    seen = []
    original = water_model.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    before = torch.get_num_threads()
    try:
        water_model.forward = spy
        for threads, expected in ((1, 1), (2, 2), (None, before)):
            atoms = water_box(2, seed=3)
            atoms.calc = BPNNCalculator(water_model, threads=threads, extrapolation="ignore")
            atoms.get_potential_energy()
            assert seen[-1] == expected and torch.get_num_threads() == before
        atoms.calc = BPNNCalculator(water_model, extrapolation="ignore")
        atoms.get_forces()
        assert seen[-1] == 1
    finally:
        del water_model.forward
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="`threads` must be a positive integer or None"):
            BPNNCalculator(water_model, threads=bad)


def test_cli_threads_option(model_file, tmp_path, capsys):
    """`bpnn-ts train/eval/demo --threads N` (default 1) set the command's intra-op threads."""
    import ase.io
    import torch

    from bpnn_ts.cli import main

    from helpers import water_box
    data = tmp_path / "water.xyz"
    atoms = water_box(2, seed=4)
    atoms.calc = BPNNCalculator(model_file, extrapolation="ignore")
    atoms.get_forces()
    ase.io.write(data, atoms)
    before = torch.get_num_threads()
    try:
        assert main(["eval", str(model_file), str(data), "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
        assert main(["eval", str(model_file), str(data)]) == 0
        assert torch.get_num_threads() == 1
        assert main(["eval", str(model_file), str(data), "--threads", "0"]) == 2
        assert "`threads` must be a positive integer" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
