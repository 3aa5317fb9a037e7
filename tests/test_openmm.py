"""openmm-ml plugin (bpnn_ts/openmm_ml/): OpenMM's energies and forces equal the ASE calculator's
on the same file (periodic, triclinic with atoms outside the cell, molecules), ML/MM systems,
copies and serialization of the force, the entry point, bad inputs, and NVE energy conservation."""

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms

from bpnn_ts import BPNNCalculator, export
from bpnn_ts.units import ANGSTROM_PER_NM, EV_IN_KJ_PER_MOL

from helpers import ROOT, TOL, mixed_model, triclinic_water, water_box

openmm = pytest.importorskip("openmm", reason="needs OpenMM (pip install 'bpnn_ts[openmm]')")
openmmml = pytest.importorskip("openmmml", reason="needs openmm-ml (pip install 'bpnn_ts[openmm]')")
app, unit = openmm.app, openmm.unit
KJ_PER_MOL = unit.kilojoule_per_mole
NM = unit.nanometer


@pytest.fixture(scope="module", autouse=True)
def registered():
    """The factory, registered by hand where bpnn_ts is installed without this entry point
    (a source checkout; the entry point itself: test_the_entry_point_registers_the_potential)."""
    from bpnn_ts.openmm_ml import BPNNPotentialImplFactory, register
    if not isinstance(openmmml.MLPotential._implFactories.get("bpnn"), BPNNPotentialImplFactory):
        register()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A float64 H/O model file (random weights)."""
    return export(mixed_model(), tmp_path_factory.mktemp("openmm") / "water.pt")


def topology_of(atoms: Atoms, periodic: bool) -> "app.Topology":
    """Water molecules (O, H, H in turn) as an OpenMM topology; the cell as its box if `periodic`."""
    topology = app.Topology()
    chain = topology.addChain()
    assert list(atoms.numbers) == [8, 1, 1] * (len(atoms) // 3)
    for _ in range(len(atoms) // 3):
        residue = topology.addResidue("HOH", chain)
        oxygen = topology.addAtom("O", app.element.oxygen, residue)
        for name in ("H1", "H2"):
            topology.addBond(oxygen, topology.addAtom(name, app.element.hydrogen, residue))
    if periodic:
        topology.setPeriodicBoxVectors(atoms.cell.array / ANGSTROM_PER_NM * NM)
    return topology


def context(system: "openmm.System", atoms: Atoms, step_fs: float = 0.5, platform: str = "Reference") -> "openmm.Context":
    integrator = openmm.VerletIntegrator(step_fs * unit.femtoseconds)
    simulation = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    simulation.setPositions(atoms.positions / ANGSTROM_PER_NM * NM)
    return simulation


def energy_and_forces(simulation: "openmm.Context", groups: int = -1):
    """Energy (eV) and forces (eV/Å) of a context, converted back from kJ/mol and kJ/mol/nm."""
    state = simulation.getState(getEnergy=True, getForces=True, groups=groups)
    energy = state.getPotentialEnergy().value_in_unit(KJ_PER_MOL) / EV_IN_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(KJ_PER_MOL / NM) / (EV_IN_KJ_PER_MOL * ANGSTROM_PER_NM)
    return energy, forces


@pytest.fixture(scope="module")
def calculator(model_path):
    """The ASE calculator on the same file: the reference (one per module: the first calls of a
    loaded TorchScript model take seconds)."""
    return BPNNCalculator(model_path)


def calculator_energy_and_forces(calculator: BPNNCalculator, atoms: Atoms):
    atoms = atoms.copy()
    atoms.calc = calculator
    return atoms.get_potential_energy(), atoms.get_forces()


def relative_differences(ours, theirs):
    """(energy, forces) relative differences: |dE| / |E| and max |dF| / max |F|."""
    (energy, forces), (reference_energy, reference_forces) = ours, theirs
    return (abs(energy - reference_energy) / abs(reference_energy),
            np.abs(forces - reference_forces).max() / np.abs(reference_forces).max())


def molecules() -> Atoms:
    """Six water molecules, not periodic."""
    atoms = water_box(6, box=6.0, seed=3)
    atoms.set_pbc(False)
    atoms.set_cell(None)
    return atoms


SYSTEMS = {"cubic": lambda: water_box(8, seed=1), "triclinic_outside_cell": triclinic_water, "molecules": molecules}


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_energy_and_forces_equal_the_calculator(model_path, calculator, name):
    atoms = SYSTEMS[name]()
    periodic = bool(atoms.pbc.all())
    potential = openmmml.MLPotential("bpnn", modelPath=str(model_path))
    system = potential.createSystem(topology_of(atoms, periodic))
    assert system.usesPeriodicBoundaryConditions() == periodic
    ours = energy_and_forces(context(system, atoms))
    energy, forces = relative_differences(ours, calculator_energy_and_forces(calculator, atoms))
    print(f"{name}: relative difference to the ASE calculator: energy {energy:.1e}, forces {forces:.1e}")
    assert energy < TOL["runtime"] and forces < TOL["runtime"]


def test_cpu_platform_agrees_to_its_precision(model_path, calculator):
    """OpenMM's CPU platform keeps positions in single precision: 1e-6 relative."""
    atoms = water_box(8, seed=1)
    system = openmmml.MLPotential("bpnn", modelPath=str(model_path)).createSystem(topology_of(atoms, True))
    ours = energy_and_forces(context(system, atoms, platform="CPU"))
    energy, forces = relative_differences(ours, calculator_energy_and_forces(calculator, atoms))
    print(f"CPU platform: relative difference to the ASE calculator: energy {energy:.1e}, forces {forces:.1e}")
    assert energy < 1e-6 and forces < 1e-6


def test_positions_in_another_periodic_image_give_the_same_result(model_path):
    atoms = water_box(8, seed=1)
    simulation = context(openmmml.MLPotential("bpnn", modelPath=model_path).createSystem(topology_of(atoms, True)), atoms)
    before = energy_and_forces(simulation)
    moved = atoms.copy()
    moved.positions[3:6] += atoms.cell[0] - 2 * atoms.cell[2]  # one molecule, whole, into another image
    simulation.setPositions(moved.positions / ANGSTROM_PER_NM * NM)
    assert max(relative_differences(energy_and_forces(simulation), before)) < TOL["runtime"]


def mm_water_system(topology: "app.Topology") -> "openmm.System":
    """TIP3P, flexible (no constraints), PME."""
    forcefield = app.ForceField("tip3p.xml")
    return forcefield.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.45 * NM, constraints=None,
                                   rigidWater=False)


def test_ml_mm_gives_ml_forces_on_the_ml_atoms_only(model_path, calculator):
    atoms = water_box(10, box=10.0, seed=2)
    topology = topology_of(atoms, True)
    ml_atoms = [3, 4, 5, 6, 7, 8]  # molecules 1 and 2
    potential = openmmml.MLPotential("bpnn", modelPath=model_path)
    system = potential.createMixedSystem(topology, mm_water_system(topology), ml_atoms, forceGroup=1)
    energy, forces = energy_and_forces(context(system, atoms), groups={1})
    reference_energy, reference_forces = calculator_energy_and_forces(calculator, atoms[ml_atoms])
    others = np.setdiff1d(np.arange(len(atoms)), ml_atoms)
    assert np.all(forces[others] == 0.0)
    assert max(relative_differences((energy, forces[ml_atoms]), (reference_energy, reference_forces))) < TOL["runtime"]


def test_interpolated_ml_mm_system_copies_the_force(model_path):
    """interpolate=True deep-copies the force (pickling its computation): at lambda_interpolate = 1
    the energy is that of the plain mixed system."""
    atoms = water_box(10, box=10.0, seed=2)
    topology = topology_of(atoms, True)
    potential = openmmml.MLPotential("bpnn", modelPath=model_path)
    plain = potential.createMixedSystem(topology, mm_water_system(topology), [0, 1, 2])
    mixed = potential.createMixedSystem(topology, mm_water_system(topology), [0, 1, 2], interpolate=True)
    simulation = context(mixed, atoms)
    simulation.setParameter("lambda_interpolate", 1.0)
    at_one = energy_and_forces(simulation)[0]
    simulation.setParameter("lambda_interpolate", 0.0)
    assert abs(at_one - energy_and_forces(context(plain, atoms))[0]) < 1e-8 * abs(at_one)
    assert abs(energy_and_forces(simulation)[0] - at_one) > 1e-3  # lambda does something


def test_force_survives_copy_and_xml_serialization(model_path):
    from bpnn_ts.openmm_ml.compute import shared_model
    atoms = water_box(8, seed=1)
    system = openmmml.MLPotential("bpnn", modelPath=model_path).createSystem(topology_of(atoms, True))
    force = next(f for f in system.getForces() if f.getName() == "BPNNForce")
    assert isinstance(copy.deepcopy(force), openmm.PythonForce)
    assert len(openmm.XmlSerializer.serialize(force)) < 4000  # the file's path and the settings, not the model
    loaded = shared_model.cache_info().currsize
    restored = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    assert shared_model.cache_info().currsize == loaded  # the copy shares the loaded model
    expected = energy_and_forces(context(system, atoms))
    energy, forces = energy_and_forces(context(restored, atoms))
    assert energy == expected[0] and np.array_equal(forces, expected[1])


def test_a_copy_refuses_a_changed_or_missing_model_file(tmp_path):
    from bpnn_ts.openmm_ml.compute import BPNNForceComputation
    path = export(mixed_model(), tmp_path / "water.pt")
    computation = BPNNForceComputation(path, [8, 1, 1], periodic=False)
    pickled = pickle.dumps(computation)
    export(mixed_model(seed=1), path)
    copied = pickle.loads(pickled)  # never raises there: OpenMM 8.6.1 crashes if unpickling does
    with pytest.raises(ValueError, match="could not load its model again: the model file .* has changed since"):
        copied(None)
    path.unlink()
    with pytest.raises(ValueError, match="could not load its model again: .*water.pt"):
        pickle.loads(pickled)(None)


def test_the_entry_point_registers_the_potential():
    """In a fresh interpreter, with the entry point pyproject.toml declares (added to what
    importlib.metadata finds, since the test environment may have bpnn_ts installed from another
    checkout): importing bpnn_ts.openmm_ml imports no OpenMM, and importing the implementation
    first (which imports openmmml, which loads the entry point) still registers the factory."""
    tomllib = pytest.importorskip("tomllib", reason="needs Python >= 3.11 to read pyproject.toml")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["openmmml.potentials"]
    assert declared == {"bpnn": "bpnn_ts.openmm_ml:BPNNPotentialImplFactory"}
    script = f"""
import importlib.metadata as metadata, sys
import bpnn_ts.openmm_ml
assert "openmm" not in sys.modules and "openmmml" not in sys.modules, "importing the entry point imported OpenMM"
found = metadata.entry_points
def with_ours(**selection):
    points = found(**selection)
    if selection.get("group") == "openmmml.potentials" and "bpnn" not in points.names:
        points = metadata.EntryPoints([*points, metadata.EntryPoint("bpnn", {declared['bpnn']!r}, "openmmml.potentials")])
    return points
metadata.entry_points = with_ours
import bpnn_ts.openmm_ml.impl
from openmmml import MLPotential
assert type(MLPotential._implFactories["bpnn"]).__name__ == "BPNNPotentialImplFactory"
"""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr


def test_errors_name_the_argument_or_atom(model_path, tmp_path):
    with pytest.raises(ValueError, match=r"needs `modelPath`, the bpnn_ts model file"):
        openmmml.MLPotential("bpnn")
    with pytest.raises(FileNotFoundError, match=r"`modelPath`: no model file at .*missing\.pt"):
        openmmml.MLPotential("bpnn", modelPath=str(tmp_path / "missing.pt"))
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['model_path'\]; it takes \['modelPath'"):
        openmmml.MLPotential("bpnn", modelPath=model_path, model_path=model_path)
    with pytest.raises(ValueError, match="`threads` must be a positive integer"):
        openmmml.MLPotential("bpnn", modelPath=model_path, threads=0)
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_text("not a model")
    atoms = water_box(2, box=6.0)
    from bpnn_ts.export import ModelFileError
    with pytest.raises(ModelFileError):
        openmmml.MLPotential("bpnn", modelPath=not_a_model).createSystem(topology_of(atoms, True))

    potential = openmmml.MLPotential("bpnn", modelPath=model_path)
    topology = topology_of(atoms, True)
    residue = topology.addResidue("CL", next(topology.chains()))
    topology.addAtom("CL", app.element.chlorine, residue)
    with pytest.raises(ValueError, match=r"atom 6 \(CL of CL 3\) is Cl \(Z=17\), an element the model .* does not know "
                                         r"\(1 such atoms\); it knows \['H', 'O'\]"):
        potential.createSystem(topology)
    topology.addAtom("EP", None, residue)
    with pytest.raises(ValueError, match=r"atom 7 \(EP of CL 3\) has no element \(1 such atoms\)"):
        potential.createSystem(topology)


def test_nve_conserves_energy(model_path):
    """1,000 steps of 0.25 fs, 24 atoms at 300 K, float64, 1 thread: the total energy's drift and
    fluctuation are small beside the kinetic energy's fluctuation."""
    atoms = water_box(8, seed=1)
    system = openmmml.MLPotential("bpnn", modelPath=model_path).createSystem(topology_of(atoms, True),
                                                                             removeCMMotion=False)
    simulation = context(system, atoms, step_fs=0.25)
    simulation.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    integrator = simulation.getIntegrator()
    kinetic, total = [], []
    for _ in range(100):
        state = simulation.getState(getEnergy=True)
        k = state.getKineticEnergy().value_in_unit(KJ_PER_MOL) / EV_IN_KJ_PER_MOL
        kinetic.append(k)
        total.append(k + state.getPotentialEnergy().value_in_unit(KJ_PER_MOL) / EV_IN_KJ_PER_MOL)
        integrator.step(10)
    t_ps = np.arange(100) * 10 * 0.25e-3
    drift = np.polyfit(t_ps, total, 1)[0] / len(atoms)
    fluctuation, kinetic_fluctuation = np.std(total), np.std(kinetic)
    print(f"NVE {len(atoms)} atoms, 1000 x 0.25 fs: drift {drift:.2e} eV/atom/ps, total-energy std "
          f"{fluctuation:.2e} eV = {fluctuation / kinetic_fluctuation:.1e} of the kinetic energy's std "
          f"({kinetic_fluctuation:.2e} eV); |E_end - E_start| {abs(total[-1] - total[0]) / len(atoms):.1e} eV/atom")
    assert kinetic_fluctuation > 1e-3, "the system should exchange kinetic and potential energy"
    assert fluctuation < 1e-2 * kinetic_fluctuation
    assert abs(total[-1] - total[0]) / len(atoms) < TOL["nve_drift"]
