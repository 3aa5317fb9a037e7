"""`.pt2` model files (torch.export + AOTInductor, bpnn_ts/formats/pt2.py): equal to the TorchScript file
and to the eager model, through every Python front end, with the same errors for bad input.

One committee model that knows its training range is compiled once per session (conftest's
`pt2_files`, shared with test_cpp and test_lammps; a compile takes a minute or more), so
committee spreads and extrapolation counts are covered too."""

import json
import zipfile

import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import BPNNCalculator, load
from bpnn_ts.export import ModelFileError, export, inspect
from bpnn_ts.formats.pt2 import MIN_TORCH, Pt2Model, is_pt2, torch_version
from bpnn_ts.model.neighbors import neighbor_list
from bpnn_ts.native import load_ops

from helpers import evaluate, triclinic_water, water_box, water_dimer

pytestmark = [pytest.mark.skipif(torch_version() < MIN_TORCH, reason=f"`.pt2` files need torch >= {MIN_TORCH}"),
              pytest.mark.skipif(not load_ops(), reason="`.pt2` files need the fused C++ kernels (no compiler here)")]

FLAGS = {"compute_virial": True, "count_extrapolation": True, "compute_uncertainty": True}
SYSTEMS = {"triclinic": triclinic_water, "molecule": water_dimer, "one atom": lambda: water_dimer()[:1],
           "empty": lambda: Atoms(), "box": lambda: water_box(8)}


@pytest.fixture(scope="module")
def committee(pt2_committee):
    return pt2_committee


@pytest.fixture(scope="module")
def files(pt2_files):
    return pt2_files


@pytest.fixture(scope="module")
def loaded(files):
    return {name: load(path) for name, path in files.items()}


def assert_same(result, reference, tolerance=1e-10):
    assert set(result) == set(reference)
    for name, value in reference.items():
        other = result[name]
        assert other.shape == value.shape and other.dtype == value.dtype, name
        scale = max(1.0, float(value.double().abs().max())) if value.numel() else 1.0
        np.testing.assert_allclose(other.double().numpy(), value.double().numpy(), rtol=0, atol=tolerance * scale,
                                   err_msg=name)


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_pt2_equals_torchscript_and_eager(system, loaded, committee):
    atoms = SYSTEMS[system]()
    pt2 = evaluate(loaded["pt2"], atoms, **FLAGS)
    assert_same(pt2, evaluate(loaded["torchscript"], atoms, **FLAGS))
    eager = {k: v.detach() for k, v in evaluate(committee, atoms, **FLAGS).items()}
    assert_same(pt2, eager)


@pytest.mark.parametrize("flags", [{}, {"compute_virial": True}, {"compute_forces": False},
                                   {"count_extrapolation": True, "compute_uncertainty": True}])
def test_pt2_returns_what_was_asked(flags, loaded):
    atoms = triclinic_water()
    assert_same(evaluate(loaded["pt2"], atoms, **flags), evaluate(loaded["torchscript"], atoms, **flags))


def test_engine_list_with_ghosts(loaded):
    """An engine's list: local atoms, then ghosts (periodic images) with their own positions."""
    atoms = triclinic_water()
    positions, cell = torch.tensor(atoms.positions), torch.tensor(np.asarray(atoms.cell.array))
    pairs, shifts = neighbor_list(positions, cell, torch.tensor(atoms.pbc), 4.0 + 0.7)  # with a skin
    ghost_of = pairs[1][(shifts != 0).any(dim=1)]
    n_local = len(atoms)
    ghost_positions = positions[pairs[1]] + shifts.double() @ cell
    images = (shifts != 0).any(dim=1)
    all_positions = torch.cat([positions, ghost_positions[images]])
    numbers = torch.cat([torch.tensor(atoms.numbers), torch.tensor(atoms.numbers)[ghost_of]])
    neighbours = pairs[1].clone()
    neighbours[images] = n_local + torch.arange(int(images.sum()))
    engine_pairs = torch.stack([pairs[0], neighbours])
    arguments = (all_positions, numbers, torch.zeros((3, 3), dtype=torch.float64), torch.zeros(3, dtype=torch.bool),
                 engine_pairs, None, n_local)
    options = dict(compute_virial=True, count_extrapolation=True, compute_uncertainty=True)
    pt2 = loaded["pt2"](*arguments, **options)
    assert_same(pt2, loaded["torchscript"](*arguments, **options))
    own = evaluate(loaded["torchscript"], atoms, compute_virial=True)
    folded = pt2["forces"][:n_local].index_add(0, ghost_of, pt2["forces"][n_local:])
    np.testing.assert_allclose(folded.numpy(), own["forces"].numpy(), atol=1e-10)
    np.testing.assert_allclose(pt2["energy"].item(), own["energy"].item(), atol=1e-10)


def test_calculator_takes_either_file(files):
    atoms = triclinic_water()
    results = {}
    for name, path in files.items():
        atoms.calc = BPNNCalculator(path, uncertainty=True)
        results[name] = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(),
                         atoms.calc.results["forces_uncertainty"])
    for a, b in zip(results["pt2"], results["torchscript"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_file_is_told_by_content_and_inspected_without_loading(files, tmp_path):
    info = inspect(files["pt2"])
    assert info["metadata"]["format"] == "pt2" and info["metadata"]["committee_size"] == 2
    assert info["metadata"]["outputs"][:3] == ["energy", "energies", "forces"]
    assert info["provenance"]["parameters_sha256"]
    renamed = tmp_path / "model.anything"
    renamed.write_bytes(files["pt2"].read_bytes())
    assert is_pt2(renamed) and not is_pt2(files["torchscript"])
    assert isinstance(load(renamed), Pt2Model)
    with zipfile.ZipFile(files["pt2"]) as archive:
        assert any(name.endswith("/extra/metadata.json") for name in archive.namelist())
        assert json.loads(archive.read([n for n in archive.namelist() if n.endswith("/extra/metadata.json")][0]))



def test_kernels_take_the_threads_of_the_process_that_runs_them(files):
    """The fixture compiled the file under a thread count other than the machine's; inductor
    writes that count into its OpenMP loops (`num_threads(N)`) unless told not to, and a file made
    on a 64-core node then ran 32 threads per LAMMPS rank whatever the user asked for."""
    with zipfile.ZipFile(files["pt2"]) as archive:
        kernels = [archive.read(name).decode() for name in archive.namelist() if name.endswith(".kernel.cpp")]
    assert len(kernels) == 2 and all("#pragma omp parallel" in kernel for kernel in kernels)
    assert not any("num_threads(" in kernel for kernel in kernels)

def test_getters_equal_the_torchscript_file(loaded):
    pt2, script = loaded["pt2"], loaded["torchscript"]
    for getter in ("format_version", "cutoff", "atomic_numbers", "committee_size", "dtype_name", "length_unit",
                   "energy_unit", "training_range_known"):
        assert getattr(pt2, getter)() == getattr(script, getter)(), getter
    assert json.loads(pt2.model_spec()) == json.loads(script.model_spec())


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(atomic_numbers=torch.tensor([1, 6, 1])), "element C .* not in this model"),
    (lambda a: a.update(positions=torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0], [1, 0, 0]])), "NaN"),
    (lambda a: a.update(positions=torch.zeros((3, 2))), "`positions` must have shape"),
    (lambda a: a.update(positions=torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 0]])), "overlap"),
    (lambda a: a.update(cell=torch.tensor([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]]), pbc=torch.ones(3, dtype=bool)),
     "zero volume"),
    (lambda a: a.update(pairs=torch.tensor([[0], [7]])), "outside"),
    (lambda a: a.update(cell=0.01 * torch.eye(3, dtype=torch.float64), pbc=torch.ones(3, dtype=bool)),
     "far too small for the cutoff"),
])
def test_same_errors_as_torchscript(change, message, loaded):
    for model in loaded.values():
        arguments = {"positions": torch.tensor([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]),
                     "atomic_numbers": torch.tensor([8, 1, 1])}
        change(arguments)
        with pytest.raises((ValueError, RuntimeError, torch.jit.Error), match=message):
            model(**arguments)


def test_clear_errors(files, committee, tmp_path):
    with pytest.raises(ValueError, match="compiled for cpu"):
        load(files["pt2"]).to("cuda")
    with pytest.raises(ValueError, match="descriptors come from the TorchScript"):
        load(files["pt2"]).compute_descriptors(torch.zeros((1, 3)), torch.tensor([1]))
    with pytest.raises(ValueError, match="compiled for float64; export one for float32"):
        BPNNCalculator(files["pt2"], dtype="float32")
    with pytest.raises(ValueError, match="native_kernels=False"):
        export(committee, tmp_path / "x.pt2", native_kernels=False)
    with pytest.raises(ValueError, match="`format` must be one of"):
        export(committee, tmp_path / "x.pt", format="onnx")
    damaged = tmp_path / "damaged.pt2"
    data = files["pt2"].read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load(damaged)


def test_cli_writes_pt2_where_asked(files, tmp_path, monkeypatch, capsys):
    """`--format pt2` (or a .pt2 name) reaches export_pt2 from export, committee and import-n2p2
    (export_pt2 stubbed here: the compile itself is tested above); a .pt2 source cannot be
    re-exported (its weights are compiled in)."""
    import bpnn_ts.formats.pt2
    from bpnn_ts.cli import main
    calls = []

    def stub(model, path, dtype=None, description="", provenance=None):
        calls.append((type(model).__name__, str(path), dtype))
        path.write_bytes(b"") if hasattr(path, "write_bytes") else open(path, "wb").close()
        return path

    monkeypatch.setattr(bpnn_ts.formats.pt2, "export_pt2", stub)
    source = str(files["torchscript"])
    assert main(["export", source, "-o", str(tmp_path / "a.pt2")]) == 0
    assert main(["export", source, "-o", str(tmp_path / "b.model"), "--format", "pt2", "--dtype", "float32"]) == 0
    assert main(["committee", source, source, "-o", str(tmp_path / "c.pt2")]) == 0
    assert main(["export", source, "-o", str(tmp_path / "d.pt"), "--format", "torchscript"]) == 0
    assert [(kind, path.split("/")[-1], dtype) for kind, path, dtype in calls] == [
        ("BPNNModel", "a.pt2", "float64"), ("BPNNModel", "b.model", "float32"), ("BPNNModel", "c.pt2", None)]
    assert main(["export", source, "-o", str(tmp_path / "e.pt2"), "--kernels", "torch"]) == 2
    assert "native_kernels=False needs the TorchScript format" in capsys.readouterr().err
    assert main(["export", str(files["pt2"]), "-o", str(tmp_path / "f.pt")]) == 2
    assert "weights are compiled in" in capsys.readouterr().err


def test_pt2_export_silences_only_torchs_internal_deprecations():
    """`bpnn-ts export -o x.pt2` printed torch's own pytree FutureWarning (torch 2.13): it is
    silenced during export, and nothing else is."""
    import warnings

    from bpnn_ts.formats.pt2 import without_torch_deprecations
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with without_torch_deprecations():
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
                          "treespec.is_leaf()` instead.", FutureWarning, stacklevel=1)
            warnings.warn("something else", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]
