"""The C++ loader (`bpnn_run`) against the Python side: same file, same numbers; clear errors.

Needs the CMake build; the `cpp_build` fixture makes it (build/, or BPNN_BUILD_DIR)."""

import json
import os
import subprocess

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import BPNNCalculator, export, inspect, keys, load

from helpers import (
    BPNN_RUN,
    BUILD,
    FORMAT1,
    TOL,
    export_with_format_version,
    mixed_model,
    squeezed_box,
    tampered_copy,
    tool,
    triclinic_water,
    water_dimer,
)

pytestmark = [pytest.mark.cpp, pytest.mark.usefixtures("cpp_build")]
BAD_INPUT_TEST = BUILD / "cpp_loader" / "bad_input_test"  # bpnn::Model on bad inputs, one message per case


def run(*args):
    return subprocess.run([str(BPNN_RUN), *map(str, args)], capture_output=True, text=True)


def cpp_and_ase(model, atoms, folder):
    """bpnn_run's JSON for `atoms`, and the atoms as bpnn_run read them (rounded by the xyz
    file) with the ASE calculator on the same model attached."""
    path = folder / "structure.xyz"
    ase.io.write(path, atoms, format="extxyz")
    atoms = ase.io.read(path)
    result = run(model, path)
    assert result.returncode == 0, result.stderr
    atoms.calc = BPNNCalculator(model)
    return json.loads(result.stdout), atoms


def test_ctest_suite_passes():
    """The CMake project's own tests (bpnn_run usage and errors, a water single point)."""
    ctest = tool("ctest")
    if ctest is None:
        pytest.skip("no `ctest` on PATH")
    result = subprocess.run([ctest, "--test-dir", str(BUILD), "--output-on-failure"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("system", ["triclinic_water", "molecule"])
def test_same_numbers_as_the_ase_calculator(model_file, tmp_path, system):
    atoms = triclinic_water(3)
    if system == "molecule":  # non-periodic water dimer
        atoms = water_dimer()
    cpp, atoms = cpp_and_ase(model_file, atoms, tmp_path)
    energy = atoms.get_potential_energy()
    assert abs(cpp["energy"] - energy) <= TOL["runtime"] * abs(energy)
    forces = atoms.get_forces()
    assert np.abs(np.array(cpp["forces"]) - forces).max() <= TOL["runtime"] * np.abs(forces).max()
    assert np.allclose(cpp["energies"], atoms.get_potential_energies(), rtol=TOL["runtime"], atol=0)
    if atoms.pbc.all():
        virial = -atoms.get_stress(voigt=False) * atoms.get_volume()
        assert np.abs(np.array(cpp["virial"]) - virial).max() <= TOL["runtime"] * np.abs(virial).max()


def test_mixed_precision_file_same_numbers_as_python(tmp_path):
    """A mixed-precision file takes and gives float64 in C++ as in Python."""
    path = export(mixed_model(), tmp_path / "mixed.pt", dtype="mixed")
    cpp, atoms = cpp_and_ase(path, triclinic_water(3), tmp_path)
    energy = atoms.get_potential_energy()
    assert abs(cpp["energy"] - energy) <= TOL["mixed_runtime"] * abs(energy)
    forces = atoms.get_forces()
    # float32 descriptor sums in another pair order (bpnn_run's own list): float32-level agreement
    assert np.abs(np.array(cpp["forces"]) - forces).max() <= TOL["mixed_runtime"] * np.abs(forces).max()
    atoms.calc = BPNNCalculator(path, dtype="float64")
    assert np.abs(np.array(cpp["forces"]) - atoms.get_forces()).max() <= TOL["mixed"] * np.abs(forces).max()


def test_extrapolation_policies(ranged_file, model_file, tmp_path):
    """Counts equal Python's; warn goes to stderr, stop exits with status 3 naming atoms."""
    path = ranged_file
    structure = tmp_path / "squeezed.xyz"
    ase.io.write(structure, squeezed_box(), format="extxyz")
    atoms = ase.io.read(structure)
    atoms.calc = BPNNCalculator(path, extrapolation="ignore")
    model = load(path)
    python = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                   torch.tensor(atoms.pbc), count_extrapolation=True)[keys.EXTRAPOLATION].numpy()
    assert python.sum() > 0
    warned = run(path, structure)  # default for a model with a range: warn
    assert warned.returncode == 0 and "bpnn: warning: " in warned.stderr and "outside the training range" in warned.stderr
    assert json.loads(warned.stdout)["extrapolation"] == python.tolist()
    stopped = run(path, structure, "--extrapolation", "stop")
    assert stopped.returncode == 3 and "outside the training range: atom index (element, functions)" in stopped.stderr
    quiet = run(path, structure, "--extrapolation", "ignore")
    assert quiet.returncode == 0 and quiet.stderr == "" and "extrapolation" not in json.loads(quiet.stdout)
    unranged = run(model_file, structure, "--extrapolation", "warn")  # mixed_model: no training range
    assert unranged.returncode == 1 and "no training range" in unranged.stderr
    md = run(path, structure, "--md", 3, "--dt", 0.25, "--every", 3)  # rate limit 100: highs and a summary
    lines = [line for line in md.stderr.splitlines() if line.startswith("bpnn: warning: step")]
    assert md.returncode == 0 and lines[0].endswith("[a new high]"), md.stderr
    assert "bpnn: extrapolation: 4 of 4 steps had atoms outside the training range; the worst, step " in md.stderr
    n_atoms = int((python > 0).sum())
    tolerant = run(path, structure, "--extrapolation", "stop", "--extrapolation-stop-above", n_atoms)
    assert tolerant.returncode == 0 and "bpnn: warning: " in tolerant.stderr  # not more than N: warned
    strict = run(path, structure, "--extrapolation", "stop", "--extrapolation-stop-above", n_atoms - 1)
    assert strict.returncode == 3 and f"(--extrapolation stop: more than {n_atoms - 1} atoms)" in strict.stderr
    bad = run(path, structure, "--extrapolation-stop-above", -1)
    assert bad.returncode == 2 and "bad value '-1' for --extrapolation-stop-above" in bad.stderr


def test_committee_uncertainty_same_as_python(committee_file, ranged_file, tmp_path):
    path = committee_file
    structure = tmp_path / "water.xyz"
    ase.io.write(structure, triclinic_water(3), format="extxyz")
    atoms = ase.io.read(structure)
    result = run(path, structure, "--uncertainty", "--extrapolation", "ignore")
    assert result.returncode == 0, result.stderr
    cpp = json.loads(result.stdout)
    python = load(path)(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                        torch.tensor(atoms.pbc), compute_uncertainty=True)
    for key in ("energy_uncertainty", "committee_energy", "energies_uncertainty", "forces_uncertainty", "energy"):
        np.testing.assert_allclose(cpp[key], python[key].numpy(), rtol=TOL["runtime"], atol=TOL["exact"], err_msg=key)
    md = run(path, structure, "--uncertainty", "--extrapolation", "ignore", "--md", 4, "--dt", 0.25, "--every", 2)
    lines = [json.loads(line) for line in md.stdout.splitlines()]
    assert md.returncode == 0 and len(lines) == 3
    assert lines[0]["max_force_uncertainty"] == pytest.approx(float(python["forces_uncertainty"].max()), rel=TOL["runtime"])
    single = run(ranged_file, structure, "--uncertainty")
    assert single.returncode == 1 and "uncertainties need a committee model" in single.stderr


def test_close_atoms_warning(model_file, tmp_path):
    structure = tmp_path / "water.xyz"
    ase.io.write(structure, Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), format="extxyz")
    quiet = run(model_file, structure)
    assert quiet.returncode == 0 and quiet.stderr == ""
    warned = run(model_file, structure, "--min-distance", 1.0)
    assert warned.returncode == 0
    assert "bpnn: warning: atoms 0 (O) and 1 (H) are 0.960 Å apart, closer than --min-distance 1 Å" in warned.stderr


def test_modified_parameters_are_refused(model_file, tmp_path):
    """The loader recomputes the SHA-256 of the parameters recorded at export (as bpnn_ts.load)."""
    structure = tmp_path / "water.xyz"
    ase.io.write(structure, triclinic_water(3), format="extxyz")
    tampered = tampered_copy(model_file, tmp_path / "tampered.pt")
    result = run(tampered, structure)
    assert result.returncode == 1 and "do not match the hash recorded when it was exported" in result.stderr
    assert run(tampered, structure, "--no-verify").returncode == 0
    for precision in ("float32", "mixed"):  # the hash covers every dtype's bytes
        path = export(mixed_model(), tmp_path / f"{precision}.pt", dtype=precision, native_kernels=False)
        assert run(path, structure).returncode == 0


def test_files_without_metadata_or_parameter_hash(model_file, tmp_path):
    """The rule of bpnn_ts.load: no metadata.json, not a model file; no parameters_sha256 in
    provenance.json, refused unless the check is skipped (--no-verify)."""
    structure = tmp_path / "water.xyz"
    ase.io.write(structure, triclinic_water(3), format="extxyz")
    scripted = load(model_file)
    bare = tmp_path / "bare.pt"
    torch.jit.save(scripted, str(bare))  # no extra files
    result = run(bare, structure)
    assert result.returncode == 1
    assert (f"bpnn: {bare} has no metadata.json: not a bpnn_ts model file (write model files with "
            "bpnn_ts.export or bpnn-ts export)") in result.stderr
    assert run(bare, structure, "--no-verify").returncode == 1
    unhashed = tmp_path / "unhashed.pt"
    torch.jit.save(scripted, str(unhashed), _extra_files={keys.METADATA_FILE: json.dumps(inspect(model_file)["metadata"])})
    result = run(unhashed, structure)
    assert result.returncode == 1
    assert (f"bpnn: {unhashed} has no parameter hash (parameters_sha256 in provenance.json): it was not written "
            "by bpnn_ts.export, or was modified; re-export it, or skip the check with --no-verify (C++: "
            "verify=false)") in result.stderr
    assert run(unhashed, structure, "--no-verify").returncode == 0


def test_md_mode_conserves_energy(model_file, tmp_path):
    path = tmp_path / "water.xyz"
    ase.io.write(path, triclinic_water(3), format="extxyz")
    result = run(model_file, path, "--md", 40, "--dt", 0.25, "--every", 10)
    assert result.returncode == 0, result.stderr
    totals = [json.loads(line)["total"] for line in result.stdout.splitlines()]
    assert len(totals) == 5
    assert max(totals) - min(totals) < 1e-3 * len(triclinic_water(3))


def test_with_the_graph_optimiser_on_the_numbers_are_the_same(model_file, tmp_path):
    """The suite runs with BPNN_GRAPH_OPTIMIZER=off (conftest.py); users get torch's default, on:
    bpnn_run in MD (several calls, so the optimised graph runs) gives the same numbers with it on;
    a value other than on/off is refused."""
    path = tmp_path / "water.xyz"
    ase.io.write(path, triclinic_water(3), format="extxyz")
    lines = {}
    for setting in ("on", "off"):
        result = subprocess.run([str(BPNN_RUN), str(model_file), str(path), "--md", "4", "--dt", "0.25", "--every", "1"],
                                capture_output=True, text=True, env=dict(os.environ, BPNN_GRAPH_OPTIMIZER=setting))
        assert result.returncode == 0, result.stderr
        lines[setting] = [json.loads(line)["total"] for line in result.stdout.splitlines()]
    assert len(lines["on"]) == 5
    np.testing.assert_allclose(lines["on"], lines["off"], rtol=TOL["runtime"])
    bad = subprocess.run([str(BPNN_RUN), str(model_file), str(path)], capture_output=True, text=True,
                         env=dict(os.environ, BPNN_GRAPH_OPTIMIZER="fast"))
    assert bad.returncode == 1
    assert "bpnn: the environment variable BPNN_GRAPH_OPTIMIZER must be on or off, got 'fast'" in bad.stderr


def test_model_file_of_another_format_version(tmp_path):
    export_with_format_version(tmp_path / "v99.pt", 99)
    path = tmp_path / "water.xyz"
    ase.io.write(path, triclinic_water(3), format="extxyz")
    result = run(tmp_path / "v99.pt", path)
    assert result.returncode == 1
    assert "bpnn: " in result.stderr and "format version 99" in result.stderr
    assert f"reads version {keys.FORMAT_VERSION} (written by a newer bpnn_ts: upgrade this loader)" in result.stderr


def test_format1_file_is_refused_with_the_command_that_converts_it(tmp_path):
    """Format-1 files load in Python (upgraded in memory); C++ refuses them and names the command,
    and the converted file gives the numbers the format-1 file gave."""
    old = FORMAT1 / "mixed_native.pt"
    structure = tmp_path / "water.xyz"
    ase.io.write(structure, triclinic_water(3), format="extxyz")
    result = run(old, structure)
    assert result.returncode == 1
    assert (f"format version 1; this loader reads version 2 (written by an older bpnn_ts); convert it with: "
            f"bpnn-ts export {old} -o {FORMAT1 / 'mixed_native-v2.pt'}") in result.stderr
    from bpnn_ts.cli import main
    converted = tmp_path / "converted.pt"
    assert main(["export", str(old), "-o", str(converted)]) == 0
    cpp = json.loads(run(converted, structure).stdout)
    atoms = ase.io.read(structure)
    with pytest.warns(UserWarning, match="format-1 model file"):
        atoms.calc = BPNNCalculator(old, extrapolation="ignore")
    assert abs(cpp["energy"] - atoms.get_potential_energy()) <= TOL["mixed"] * abs(cpp["energy"])


def test_clear_errors(model_file, tmp_path):
    copper = tmp_path / "cu.xyz"
    ase.io.write(copper, Atoms("Cu2O", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2, 0]]), format="extxyz")
    result = run(model_file, copper)
    assert result.returncode == 1
    assert "bpnn: element Cu (atomic number 29) is not in this model; supported elements: H, O" in result.stderr
    truncated = tmp_path / "short.xyz"
    truncated.write_text("3\n\nO 0 0 0\nH 1 0 0\n")
    result = run(model_file, truncated)
    assert result.returncode == 1 and "short.xyz:5: file ends before atom 3 of 3" in result.stderr
    not_finite = tmp_path / "nan.xyz"
    not_finite.write_text("2\n\nO 0 0 0\nH nan 0 0\n")
    result = run(model_file, not_finite)
    assert result.returncode == 1 and "nan.xyz:4: position of atom 2 is NaN or inf" in result.stderr
    empty = tmp_path / "empty.xyz"
    empty.write_text('0\nLattice="5 0 0 0 5 0 0 0 5" pbc="T T T"\n')
    result = run(model_file, empty)
    assert result.returncode == 0 and json.loads(result.stdout)["energy"] == 0.0
    result = run(tmp_path / "missing.pt", truncated)
    assert result.returncode == 1 and "bpnn: model file not found" in result.stderr
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(model_file.read_bytes()[:2000])
    result = run(damaged, copper)
    assert result.returncode == 1 and "bpnn: cannot load model file" in result.stderr
    assert "frame #" not in result.stderr and result.stderr.count("\n") == 1, result.stderr  # the message, no backtrace
    assert "miniz" not in result.stderr and "checkpoint" not in result.stderr, result.stderr  # nor torch's advice


def test_pt2_file_gives_the_torchscript_numbers(pt2_files, tmp_path):
    """bpnn_run on the .pt2 and the TorchScript file of one committee: every printed number, with
    extrapolation counts and committee spreads, periodic and not."""
    structures = {"triclinic": triclinic_water(3), "molecule": water_dimer()}  # both extrapolate
    for name, atoms in structures.items():
        path = tmp_path / f"{name}.xyz"
        ase.io.write(path, atoms, format="extxyz")
        runs = {kind: run(file, path, "--uncertainty", "--extrapolation", "warn") for kind, file in pt2_files.items()}
        assert all(r.returncode == 0 for r in runs.values()), runs["pt2"].stderr
        assert runs["pt2"].stderr == runs["torchscript"].stderr  # the same extrapolation warning, if any
        pt2, script = (json.loads(runs[kind].stdout) for kind in ("pt2", "torchscript"))
        assert set(pt2) == set(script) >= {"energy", "forces", "virial", "extrapolation", "forces_uncertainty"}
        for key, value in script.items():
            scale = max(np.abs(value).max(), 1e-300)
            assert np.abs(np.array(pt2[key]) - value).max() <= TOL["runtime"] * scale, (name, key)
        assert pt2["extrapolation"] == script["extrapolation"] and sum(pt2["extrapolation"]) > 0


def test_pt2_file_refuses_bad_input_as_the_torchscript_file_does(pt2_files, tmp_path):
    """A .pt2 file's programs check no input: bpnn::Model does, with the TorchScript file's messages."""
    if not BAD_INPUT_TEST.is_file():
        pytest.skip(f"{BAD_INPUT_TEST} not built")
    reports = {kind: subprocess.run([str(BAD_INPUT_TEST), str(file)], capture_output=True, text=True)
               for kind, file in pt2_files.items()}
    assert reports["pt2"].returncode == 0, reports["pt2"].stderr
    assert reports["pt2"].stdout == reports["torchscript"].stdout
    messages = dict(line.split(": ", 1) for line in reports["pt2"].stdout.splitlines())
    assert messages["nan position"] == "bpnn: `positions` contain NaN or inf"
    assert messages["inf cell"] == "bpnn: `cell` contains NaN or inf"
    assert messages["flat cell"].startswith("bpnn: `cell` has zero volume along its periodic axes [0, 1, 2]")
    assert messages["flat sheet"].startswith("bpnn: `cell` has zero area along its periodic axes [0, 1]")
    assert messages["zero lattice vector"].startswith("bpnn: `cell` row 0 is zero but pbc is True")
    assert messages["overlap"] == "bpnn: atoms 0 and 1 overlap (distance < 1e-6 Å)"
    assert messages["engine overlap"] == "bpnn: atoms 0 and 2 overlap (distance < 1e-6 Å)"
    assert messages["engine pair outside"] == "bpnn: `pairs` hold atom indices outside [0, 3)"
    assert messages["engine n_local"] == "bpnn: `n_local` must be in [0, n_atoms=3], got 4"
    for fine in ("fine", "engine fine", "engine ghosts", "flat cell, no atoms"):
        assert messages[fine].startswith("no error"), fine
    # through bpnn_run (its xyz reader refuses NaN itself)
    structures = {"nan.xyz": "2\n\nO 0 0 0\nH nan 0 0\n",
                  "cu.xyz": "3\n\nCu 0 0 0\nO 2.5 0 0\nH 0 2 0\n",
                  "flat.xyz": '3\nLattice="3 0 0 6 0 0 0 0 3" pbc="T T T"\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n'}
    expected = {"nan.xyz": "nan.xyz:4: position of atom 2 is NaN or inf",
                "cu.xyz": "bpnn: element Cu (atomic number 29) is not in this model; supported elements: H, O",
                "flat.xyz": "bpnn: `cell` has zero volume along its periodic axes [0, 1, 2] (the periodic lattice "
                            "vectors are linearly dependent); got cell [[3., 0., 0.], [6., 0., 0.], [0., 0., 3.]] "
                            "with pbc [True, True, True]"}
    for name, text in structures.items():
        (tmp_path / name).write_text(text)
        result = run(pt2_files["pt2"], tmp_path / name)
        assert result.returncode == 1 and expected[name] in result.stderr, result.stderr


def test_pt2_file_is_told_by_content(pt2_files, tmp_path):
    """Whatever its name; --no-verify changes nothing (its compiled weights are not hashed); a
    damaged .pt2 file is refused with a message, no backtrace."""
    structure = tmp_path / "water.xyz"
    ase.io.write(structure, triclinic_water(3), format="extxyz")
    reference = json.loads(run(pt2_files["pt2"], structure, "--extrapolation", "ignore").stdout)
    renamed = tmp_path / "model.pt"
    renamed.write_bytes(pt2_files["pt2"].read_bytes())
    for flags in ((), ("--no-verify",)):
        result = run(renamed, structure, "--extrapolation", "ignore", *flags)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == reference
    script_named_pt2 = tmp_path / "torchscript.pt2"
    script_named_pt2.write_bytes(pt2_files["torchscript"].read_bytes())
    assert run(script_named_pt2, structure).returncode == 0
    damaged = tmp_path / "damaged.pt2"
    damaged.write_bytes(pt2_files["pt2"].read_bytes()[:100000])
    result = run(damaged, structure)
    assert result.returncode == 1 and "bpnn: cannot load model file" in result.stderr
    assert "frame #" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    if torch.cuda.is_available():  # compiled for the CPU: refused on another device
        result = run(pt2_files["pt2"], structure, "--device", "cuda")
        assert result.returncode == 1 and "is a .pt2 file compiled for cpu; it cannot run on cuda" in result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_device_gives_the_cpu_numbers(model_file, tmp_path):
    path = tmp_path / "water.xyz"
    ase.io.write(path, triclinic_water(3), format="extxyz")
    cpu = run(model_file, path)
    cuda = run(model_file, path, "--device", "cuda")
    assert cpu.returncode == 0 and cuda.returncode == 0, cuda.stderr
    a, b = json.loads(cpu.stdout), json.loads(cuda.stdout)
    assert abs(a["energy"] - b["energy"]) <= TOL["runtime"] * abs(a["energy"])
    assert np.allclose(a["forces"], b["forces"], rtol=0, atol=TOL["runtime"] * np.abs(a["forces"]).max())
