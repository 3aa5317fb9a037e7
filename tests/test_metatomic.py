"""metatomic files (`--format metatomic`): what metatomic engines compute from them (forces and
stress by autograd through the engine's neighbour list) equals what our calculator computes, to
1e-10; committees give energy_uncertainty and energy_ensemble; i-PI runs NVE MD through its
socket with them."""

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("metatomic.torch", reason="metatomic-torch not installed (pip install metatomic-torch)")
metatomic_ase = pytest.importorskip("metatomic_ase", reason="metatomic-ase not installed (pip install metatomic-ase)")

from metatensor.torch import Labels  # noqa: E402
from metatomic.torch import ModelOutput  # noqa: E402

from bpnn_ts import BPNNCalculator, export  # noqa: E402
from bpnn_ts.cli import main  # noqa: E402
from bpnn_ts.committee_merge import build_committee  # noqa: E402
from bpnn_ts.export import ModelFileError  # noqa: E402

from helpers import mixed_model, ranged_model, triclinic_water, water_box, water_dimer  # noqa: E402

SYSTEMS = {"triclinic box": triclinic_water, "molecule": water_dimer}


@pytest.fixture(scope="module", autouse=True)
def plain_jit_execution():
    """Each metatomic calculator loads its file anew, and TorchScript's profiling executor spends
    5-10 s on the first two calls of each: these tests are about numbers, so run without it."""
    before = torch._C._get_graph_executor_optimize()
    torch._C._set_graph_executor_optimize(False)
    yield
    torch._C._set_graph_executor_optimize(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A single model and a committee, each as a metatomic file and a TorchScript file."""
    folder = tmp_path_factory.mktemp("metatomic")
    single = mixed_model().eval()
    committee = build_committee([ranged_model(seed=0), ranged_model(seed=1)]).eval()
    made = {}
    for name, model in (("single", single), ("committee", committee)):
        made[name] = {"metatomic": export(model, folder / f"{name}.mta.pt", format="metatomic"),
                      "torchscript": export(model, folder / f"{name}.pt")}
    return made


def test_the_file_names_the_op_library_and_loads_it_in_a_process_without_bpnn_ts(files, tmp_path):
    from bpnn_ts.native import ops_available
    assert ops_available()  # (the suite's files use the fused kernels where they build)
    path = files["single"]["metatomic"]
    with zipfile.ZipFile(path) as archive:
        extensions = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("extra/extensions"))))
    # metatomic records every op library loaded in the exporting process (here maybe the tests' own too)
    assert any("bpnn" in e["name"] for e in extensions) and all(Path(e["path"]).is_file() for e in extensions)
    child = ("import sys, warnings, torch; warnings.simplefilter('ignore'); from ase.io import read; "
             "from metatomic_ase import MetatomicCalculator; atoms = read(sys.argv[2]); "
             "atoms.calc = MetatomicCalculator(sys.argv[1], device='cpu'); "
             "assert 'bpnn_ts' not in sys.modules; print(repr(float(atoms.get_potential_energy())))")
    atoms = water_dimer()
    atoms.write(tmp_path / "dimer.xyz")
    out = subprocess.run([sys.executable, "-c", child, str(path), str(tmp_path / "dimer.xyz")], capture_output=True,
                         text=True, env=dict(os.environ, BPNN_OPS_LIBRARY=""))
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[-1]) == pytest.approx(ours_energies(files["single"]["torchscript"], atoms).sum(),
                                                          abs=1e-10)


def metatomic_calculator(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metatomic_ase.MetatomicCalculator(str(path), check_consistency=True, device="cpu",
                                                 uncertainty_threshold=1e9)  # untrained committee: no warnings


@pytest.mark.parametrize("system", list(SYSTEMS))
@pytest.mark.parametrize("kind", ["single", "committee"])
def test_metatomic_engine_gives_our_numbers(files, system, kind):
    atoms = SYSTEMS[system]()
    ours, theirs = atoms.copy(), atoms.copy()
    ours.calc = BPNNCalculator(files[kind]["torchscript"], extrapolation="ignore")
    theirs.calc = metatomic_calculator(files[kind]["metatomic"])
    assert theirs.get_potential_energy() == pytest.approx(ours.get_potential_energy(), rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(theirs.get_forces(), ours.get_forces(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(theirs.get_potential_energies(), ours.get_potential_energies(), rtol=1e-10,
                               atol=1e-10)
    if atoms.pbc.all():
        np.testing.assert_allclose(theirs.get_stress(), ours.get_stress(), rtol=1e-10, atol=1e-10)


def test_committee_uncertainty_and_ensemble(files):
    atoms = triclinic_water()
    ours = BPNNCalculator(files["committee"]["torchscript"], uncertainty=True, extrapolation="ignore")
    ours.calculate(atoms, ["energy", "forces"])
    calculator = metatomic_calculator(files["committee"]["metatomic"])
    outputs = {"energy_uncertainty": ModelOutput(unit="eV", sample_kind="atom"),
               "energy_ensemble": ModelOutput(unit="eV", sample_kind="system")}
    result = calculator.run_model(atoms, outputs)
    spread = result["energy_uncertainty"].block().values.detach().numpy()[:, 0]
    ensemble = result["energy_ensemble"].block().values.detach().numpy()[0]
    np.testing.assert_allclose(spread, ours.results["energies_uncertainty"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ensemble, ours.results["committee_energy"], rtol=1e-10)
    assert ensemble.mean() == pytest.approx(ours.results["energy"], rel=1e-10)


def test_selected_atoms_are_an_engines_local_atoms(files):
    """LAMMPS selects its local atoms, which come first; the rest are neighbours only."""
    atoms = water_box(8)
    calculator = metatomic_calculator(files["single"]["metatomic"])
    energies = ours_energies(files["single"]["torchscript"], atoms)
    n = 10
    first = Labels(["system", "atom"], torch.tensor([[0, i] for i in range(n)], dtype=torch.int32))
    per_atom = {"energy": ModelOutput(unit="eV", sample_kind="atom")}
    values = calculator.run_model(atoms, per_atom, selected_atoms=first)["energy"].block().values
    np.testing.assert_allclose(values.detach().numpy()[:, 0], energies[:n], rtol=1e-10)
    other = Labels(["system", "atom"], torch.tensor([[0, 1], [0, 5]], dtype=torch.int32))
    with pytest.raises(Exception, match="first atoms of a system"):
        calculator.run_model(atoms, per_atom, selected_atoms=other)


def ours_energies(path, atoms):
    atoms = atoms.copy()
    atoms.calc = BPNNCalculator(path, extrapolation="ignore")
    return atoms.get_potential_energies()


def test_cli_and_clear_errors(files, tmp_path, capsys):
    source = str(files["single"]["torchscript"])
    out = tmp_path / "again.mta.pt"
    assert main(["export", source, "-o", str(out), "--format", "metatomic", "--dtype", "float32"]) == 0
    atoms = water_dimer()
    atoms.calc = metatomic_calculator(out)
    assert atoms.get_potential_energy() == pytest.approx(ours_energies(source, water_dimer()).sum(), rel=1e-5)
    torch_path = tmp_path / "torch-path.mta.pt"
    assert main(["export", source, "-o", str(torch_path), "--format", "metatomic", "--kernels", "torch"]) == 0
    atoms.calc = metatomic_calculator(torch_path)
    assert atoms.get_potential_energy() == pytest.approx(ours_energies(source, water_dimer()).sum(), abs=1e-10)
    with pytest.raises(ModelFileError, match="metatomic-torch"):
        hidden = dict.fromkeys(["bpnn_ts.formats.metatomic"])
        saved = {name: sys.modules.get(name) for name in hidden}
        sys.modules.update(hidden)  # as if metatomic were not installed
        try:
            export(mixed_model().eval(), tmp_path / "y.pt", format="metatomic")
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module


INPUT_XML = """<simulation verbosity='low'>
  <output prefix='nve'>
    <properties stride='1' filename='out'> [step, conserved{electronvolt}, potential{electronvolt},
      kinetic_md{electronvolt}] </properties>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>12345</seed></prng>
  <ffsocket name='bpnn' mode='unix' pbc='false'><address>{address}</address></ffsocket>
  <system>
    <initialize nbeads='1'>
      <file mode='ase' units='angstrom'> start.extxyz </file>
      <velocities mode='thermal' units='kelvin'> 300 </velocities>
    </initialize>
    <forces><force forcefield='bpnn'/></forces>
    <motion mode='dynamics'><dynamics mode='nve'><timestep units='femtosecond'> 0.25 </timestep></dynamics></motion>
    <ensemble><temperature units='kelvin'> 300 </temperature></ensemble>
  </system>
</simulation>
"""


@pytest.mark.skipif(shutil.which("i-pi") is None or shutil.which("i-pi-py_driver") is None,
                    reason="i-PI not installed (pip install ipi)")
def test_ipi_runs_nve_over_its_socket(files, tmp_path):
    import ase.io
    steps = 40
    atoms = water_box(8)
    ase.io.write(tmp_path / "start.extxyz", atoms)
    address = f"bpnn_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    (tmp_path / "input.xml").write_text(INPUT_XML.replace("{steps}", str(steps)).replace("{address}", address))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    server = subprocess.Popen([shutil.which("i-pi"), "input.xml"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        socket = Path(f"/tmp/ipi_{address}")
        for _ in range(300):
            if socket.exists() or server.poll() is not None:
                break
            time.sleep(0.1)
        options = f"template=start.extxyz,model={files['single']['metatomic']},device=cpu,check_consistency=False"
        driver = subprocess.run([shutil.which("i-pi-py_driver"), "-u", "-a", address, "-m", "metatomic", "-o",
                                 options], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        log = server.communicate(timeout=300)[0]
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, log[-3000:] + driver.stderr[-3000:]
    table = np.loadtxt(tmp_path / "nve.out")
    assert table.shape[0] == steps + 1
    conserved, potential, kinetic = table[:, 1], table[:, 2], table[:, 3]
    ours = atoms.copy()
    ours.calc = BPNNCalculator(files["single"]["torchscript"], extrapolation="ignore")
    assert potential[0] == pytest.approx(ours.get_potential_energy(), abs=1e-6)  # i-PI prints 8 digits or so
    drift = np.abs(conserved - conserved[0]).max()
    print(f"i-PI NVE, {steps} x 0.25 fs: conserved energy within {drift:.2e} eV; kinetic energy range "
          f"{np.ptp(kinetic):.3f} eV; first potential energy off ours by "
          f"{abs(potential[0] - ours.get_potential_energy()):.1e} eV")
    assert np.ptp(kinetic) > 0.05  # the atoms do move
    assert drift < 0.01 * np.ptp(kinetic), (drift, np.ptp(kinetic))
