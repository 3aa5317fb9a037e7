"""Model file: export, load, inspect, contract checks, CLI."""

import json
import zipfile

import pytest
import torch

from bpnn_ts import export, inspect, keys, load
from bpnn_ts.calculator import BPNNCalculator
from bpnn_ts.cli import main
from bpnn_ts.export import FormatWarning, ModelFileError

from helpers import FORMAT1, TOL, evaluate, export_with_format_version, tampered_copy, two_element_config, water_box


def test_metadata_getters_and_provenance(water_model, tmp_path):
    path = export(water_model, tmp_path / "m.pt", description="unit test")
    info = inspect(path)
    meta = info["metadata"]
    assert meta == {"format_version": keys.FORMAT_VERSION, "cutoff": 4.0, "atomic_numbers": [1, 8],
                    "elements": ["H", "O"], "dtype": "float64", "length_unit": "angstrom", "energy_unit": "eV",
                    "native_kernels": True, "committee_size": 1, "training_range_known": False}
    assert info["provenance"]["description"] == "unit test"
    assert info["provenance"]["torch_version"] == torch.__version__
    loaded = load(path)
    assert loaded.cutoff() == 4.0 and loaded.atomic_numbers() == [1, 8] and loaded.dtype_name() == "float64"
    assert not any(p.requires_grad for p in loaded.parameters())


def test_export_float32(water_model, tmp_path):
    path = export(water_model, tmp_path / "m32.pt", dtype="float32")
    model = load(path)
    assert inspect(path)["metadata"]["dtype"] == "float32" and model.dtype_name() == "float32"
    atoms = water_box(3, seed=2)
    out = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                torch.tensor(atoms.pbc))
    assert out[keys.FORCES].dtype == torch.float32
    reference = evaluate(water_model, atoms)
    assert torch.allclose(out[keys.FORCES].double(), reference[keys.FORCES], atol=TOL["float32"])


@pytest.mark.parametrize("native_kernels", [False, True])
def test_export_mixed_precision(water_model, tmp_path, native_kernels):
    """float32 descriptors and nets, float64 in, out and sums: float32-level errors, float64 outputs."""
    from bpnn_ts.native import load_ops
    if native_kernels and not load_ops():
        pytest.skip("C++ kernels cannot be built here")
    path = export(water_model, tmp_path / "mixed.pt", dtype="mixed", native_kernels=native_kernels)
    model = load(path)
    assert inspect(path)["metadata"]["dtype"] == "mixed" and model.dtype_name() == "mixed"
    assert model.uses_native_kernels() == native_kernels
    assert all(p.dtype == torch.float32 for p in model.parameters())
    atoms = water_box(8, cell=[[5.6, 0, 0], [1.2, 5.3, 0], [-0.7, 0.9, 5.1]], seed=4)
    out = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                torch.tensor(atoms.pbc), compute_virial=True)
    reference = evaluate(water_model, atoms, compute_virial=True)
    for key in (keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL, keys.ATOMIC_VIRIALS):
        assert out[key].dtype == torch.float64, key
        error = float((out[key] - reference[key]).abs().max() / reference[key].abs().max())
        assert 0 < error < TOL["mixed"], (key, error)  # float32 rounding, nothing more (and not float64 by mistake)
    calc_atoms = atoms.copy()
    calc_atoms.calc = BPNNCalculator(path)
    energy = float(reference[keys.ENERGY])
    assert abs(calc_atoms.get_potential_energy() - energy) < TOL["float32_rel"] * abs(energy)


def test_export_refuses_training_mode(tmp_path):
    model = two_element_config().build()
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        export(model, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_other_format_version_is_refused(water_model, tmp_path):
    path = export(water_model, tmp_path / "m.pt")
    patched = tmp_path / "future.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("extra/" + keys.METADATA_FILE):
                meta = json.loads(data)
                meta["format_version"] = keys.FORMAT_VERSION + 1
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    with pytest.raises(ModelFileError, match="format version 3; this bpnn_ts .* reads versions 1 and 2 .*newer.*upgrade"):
        load(patched)
    older = export_with_format_version(tmp_path / "v0.pt", 0)
    with pytest.raises(ModelFileError, match="format version 0; .*re-export the model: bpnn-ts export .*v0.pt -o .*v0-v2.pt"):
        load(older)


def test_modified_parameters_are_detected(water_model, tmp_path):
    """The provenance records a hash of every parameter; load checks it."""
    tampered_copy(export(water_model, tmp_path / "m.pt"), tmp_path / "tampered.pt")
    with pytest.raises(ModelFileError, match="do not match the hash recorded"):
        load(tmp_path / "tampered.pt")
    assert load(tmp_path / "tampered.pt", verify=False) is not None


def test_the_command_line_gives_the_hash_advice_in_its_own_terms(water_model, tmp_path, capsys):
    """The CLI names its flag (--no-verify), not a Python argument; inspect --verify reports only."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    tampered = tampered_copy(export(water_model, tmp_path / "m.pt"), tmp_path / "tampered.pt")
    atoms = water_box(4, box=5.0)
    atoms.calc = SinglePointCalculator(atoms, energy=0.0)
    ase.io.write(tmp_path / "data.xyz", atoms)
    for command in (["eval", str(tampered), str(tmp_path / "data.xyz")], ["export", str(tampered), "-o",
                                                                             str(tmp_path / "again.pt")],
                    ["export-n2p2", str(tampered), "-o", str(tmp_path / "n2p2")]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert "do not match the hash" in error and "--no-verify" in error and "verify=False" not in error, error
    assert main(["eval", str(tampered), str(tmp_path / "data.xyz"), "--no-verify"]) == 0
    assert main(["inspect", "--verify", str(tampered)]) == 2
    error = capsys.readouterr().err
    assert "do not match the hash" in error and "verify" not in error.split("exported")[-1], error


def test_truncated_and_missing_files(water_model, tmp_path):
    path = export(water_model, tmp_path / "m.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load(broken)
    with pytest.raises(ModelFileError, match="does not exist"):
        load(tmp_path / "nope.pt")


def test_cli_export_and_inspect(tmp_path, capsys):
    config = tmp_path / "model.yaml"
    config.write_text("elements: [Cu]\ncutoff: 5.0\nsymmetry_functions: auto\nhidden_layers: [10, 10]\n"
                      "activation: silu\nseed: 1\n")
    out = tmp_path / "cu.pt"
    assert main(["export", str(config), "-o", str(out), "--dtype", "float32"]) == 0
    assert main(["inspect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "['Cu']" in printed and "float32" in printed and f"format_version  {keys.FORMAT_VERSION}" in printed
    assert main(["inspect", str(out), "--verify"]) == 0
    assert "parameters match parameters_sha256; training range known: False" in capsys.readouterr().out
    # same seed -> same model file contents (reproducible)
    again = tmp_path / "cu2.pt"
    assert main(["export", str(config), "-o", str(again), "--dtype", "float32"]) == 0
    assert inspect(out)["provenance"]["parameters_sha256"] == inspect(again)["provenance"]["parameters_sha256"]
    portable = tmp_path / "portable.pt"
    assert main(["export", str(config), "-o", str(portable), "--kernels", "torch"]) == 0
    assert inspect(portable)["metadata"]["native_kernels"] is False and not load(portable).uses_native_kernels()


def test_cli_reports_config_errors(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("elements: [Cu, Qq]\ncutoff: 5.0\n")
    assert main(["export", str(config), "-o", str(tmp_path / "x.pt")]) == 2
    assert "unknown chemical element 'Qq'" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("name", ["float64_torch.pt", "mixed_native.pt", "committee_native.pt"])
def test_format1_files_load_upgraded_with_their_numbers(name):
    """Files written by bpnn_ts 0.1 (format 1; tests/fixtures/format1, with the outputs 0.1 computed
    from them) load, upgraded in memory, and give those numbers (to rounding: dE/dG is now
    backpropagated by hand through the nets, not by autograd; extrapolation counts exactly)."""
    reference = json.loads((FORMAT1 / "reference.json").read_text())
    expected = reference["files"][name]
    with pytest.warns(FormatWarning, match=f"format-1 model file: upgraded in memory.*bpnn-ts export .*{name}"):
        model = load(FORMAT1 / name)
    assert model.format_version() == keys.FORMAT_VERSION
    assert model.uses_native_kernels() == ("native" in name) and model.training_range_known()
    assert model.dtype_name() == ("mixed" if "mixed" in name else "float64")
    inputs = (torch.tensor(reference["positions"], dtype=torch.float64), torch.tensor(reference["numbers"]),
              torch.tensor(reference["cell"], dtype=torch.float64), torch.tensor(reference["pbc"]))
    committee = model.committee_size() > 1
    out = model(*inputs, compute_virial=True, count_extrapolation=True, compute_uncertainty=committee)
    assert torch.equal(out["extrapolation"], torch.tensor(expected["extrapolation"], dtype=torch.long))
    tolerance = TOL["mixed"] if "mixed" in name else TOL["exact"]  # mixed: the nets' float32 rounding
    for key in ("energy", "energies", "forces", "virial"):
        torch.testing.assert_close(out[key], torch.tensor(expected[key], dtype=out[key].dtype), rtol=tolerance,
                                   atol=tolerance, msg=key)
    if committee:
        torch.testing.assert_close(out[keys.FORCES_UNCERTAINTY], torch.tensor(expected["forces_uncertainty"],
                                   dtype=torch.float64), rtol=tolerance, atol=tolerance)


def test_reexport_of_a_format1_file_gives_the_same_numbers(tmp_path):
    """`bpnn-ts export old.pt -o new.pt` writes the current format with the old file's dtype."""
    new = tmp_path / "new.pt"
    with pytest.warns(FormatWarning):
        assert main(["export", str(FORMAT1 / "committee_native.pt"), "-o", str(new)]) == 0
        old = load(FORMAT1 / "committee_native.pt")
    info = inspect(new)
    assert info["metadata"]["format_version"] == keys.FORMAT_VERSION and info["metadata"]["committee_size"] == 2
    assert info["provenance"]["source_format_version"] == 1
    atoms = water_box(4, seed=11)
    a, b = evaluate(old, atoms, compute_uncertainty=True), evaluate(load(new), atoms, compute_uncertainty=True)
    for key in (keys.ENERGY, keys.FORCES, keys.FORCES_UNCERTAINTY):
        assert torch.allclose(a[key], b[key], rtol=0, atol=TOL["exact"]), key


def test_files_without_metadata_or_hash_are_refused(water_model, tmp_path):
    """One rule in Python and C++ (tests/test_cpp.py): no metadata.json -> not a bpnn_ts file;
    no parameter hash -> refused unless verification is off."""
    scripted = load(export(water_model, tmp_path / "m.pt"))
    bare = tmp_path / "bare.pt"
    torch.jit.save(scripted, str(bare))
    with pytest.raises(ModelFileError, match="has no metadata.json: not a bpnn_ts model file"):
        load(bare, verify=False)
    unhashed = tmp_path / "unhashed.pt"
    torch.jit.save(scripted, str(unhashed), _extra_files={keys.METADATA_FILE: json.dumps(inspect(tmp_path / "m.pt")["metadata"])})
    with pytest.raises(ModelFileError, match="has no parameter hash .* verify=False"):
        load(unhashed)
    assert load(unhashed, verify=False).format_version() == keys.FORMAT_VERSION
