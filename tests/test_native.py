"""The fused C++ descriptor kernels (torch.ops.bpnn.acsf / acsf_backward) against the
pure-torch path, which is itself tested against finite differences, autograd and n2p2."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bpnn_ts import export, inspect, keys, load
from bpnn_ts.native import load_error, load_ops

from helpers import TOL, evaluate, mixed_model, triclinic_water, water_box

pytestmark = pytest.mark.skipif(not load_ops(), reason=f"C++ kernels cannot be built here: {load_error()}")

OUTPUTS = [keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL, keys.ATOMIC_VIRIALS]


def triclinic(seed: int = 4):
    return triclinic_water(seed, n_molecules=8, displaced=False)


def assert_same(native: dict, reference: dict, rtol: float = TOL["exact"]) -> None:
    for key in OUTPUTS:
        scale = float(reference[key].abs().max())
        assert float((native[key] - reference[key]).abs().max()) <= rtol * scale, key


@pytest.mark.parametrize("cutoff_type,alpha", [(0, 0.0), (1, 0.0), (1, 0.3), (2, 0.0), (3, 0.0), (4, 0.2),
                                               (5, 0.0), (6, 0.1), (7, 0.0), (8, 0.4)])
def test_native_equals_torch_for_every_cutoff_type(cutoff_type, alpha):
    model = mixed_model(cutoff_type, alpha)
    atoms = triclinic()
    reference = evaluate(model, atoms, compute_virial=True)
    assert model.use_native_kernels(True)
    assert_same(evaluate(model, atoms, compute_virial=True), reference)
    model.use_native_kernels(False)
    assert_same(evaluate(model, atoms, compute_virial=True), reference, rtol=0.0)


def test_native_descriptors_molecule_and_single_atom():
    model = mixed_model()
    atoms = water_box(4, seed=1)
    atoms.pbc = False
    reference = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers))
    model.use_native_kernels(True)
    native = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers))
    for key in (keys.DESCRIPTORS, keys.SCALED_DESCRIPTORS):
        assert torch.allclose(native[key], reference[key], rtol=TOL["exact"], atol=TOL["ulp"])
    single = model(torch.zeros((1, 3), dtype=torch.float64), torch.tensor([8]))
    assert single[keys.FORCES].abs().max() == 0 and torch.isfinite(single[keys.ENERGY])


def test_exported_file_uses_the_kernels_and_matches(tmp_path):
    model = mixed_model()
    atoms = triclinic(seed=7)
    reference = evaluate(model, atoms, compute_virial=True)
    native = export(model, tmp_path / "native.pt")
    plain = export(model, tmp_path / "plain.pt", native_kernels=False)
    assert inspect(native)["metadata"]["native_kernels"] is True
    assert inspect(plain)["metadata"]["native_kernels"] is False
    assert load(native).uses_native_kernels() and not load(plain).uses_native_kernels()
    assert_same(evaluate(load(native), atoms, compute_virial=True), reference)
    assert_same(evaluate(load(plain), atoms, compute_virial=True), reference)


def test_float32_kernels_close_to_float64(tmp_path):
    model = mixed_model()
    atoms = triclinic()
    reference = evaluate(model, atoms)
    single = load(export(model, tmp_path / "f32.pt", dtype="float32"))
    out = single(torch.tensor(atoms.positions, dtype=torch.float32), torch.tensor(atoms.numbers),
                 torch.tensor(atoms.cell.array, dtype=torch.float32), torch.tensor(atoms.pbc))
    assert out[keys.FORCES].dtype == torch.float32
    assert np.allclose(out[keys.FORCES].double().numpy(), reference[keys.FORCES].numpy(), atol=TOL["float32"])
    assert abs(float(out[keys.ENERGY]) - float(reference[keys.ENERGY])) < TOL["float32"] * abs(float(reference[keys.ENERGY]))


def _kernel_call(model, atoms):
    """Inputs of the O centres' kernel for `atoms`, and the kernel (the captured call)."""
    from bpnn_ts.model.kernels import NativeKernel
    captured = {}
    original = NativeKernel.forward

    def capture(self, vectors, offsets, species, d_g):
        if d_g is not None and self.n_species == 2 and "d_g" not in captured:
            captured.update(kernel=self, vectors=vectors, offsets=offsets, species=species, d_g=d_g)
        return original(self, vectors, offsets, species, d_g)

    NativeKernel.forward = capture
    whole, model.whole_evaluation_atoms = model.whole_evaluation_atoms, 0  # (the per-element kernels)
    try:
        evaluate(model, atoms)
    finally:
        NativeKernel.forward = original
        model.whole_evaluation_atoms = whole
    return captured


def test_kernel_results_do_not_depend_on_the_thread_count():
    model = mixed_model()
    model.use_native_kernels(True)
    call = _kernel_call(model, water_box(40, box=9.0, seed=3))
    kernel, args = call["kernel"], (call["vectors"], call["offsets"], call["species"])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kernel(*args, None), kernel(*args, call["d_g"])
        torch.set_num_threads(3)
        three = kernel(*args, None), kernel(*args, call["d_g"])
    finally:
        torch.set_num_threads(threads)
    assert call["offsets"].shape[0] - 1 >= 40  # several chunks of 16 centres
    assert torch.equal(one[0], three[0]) and torch.equal(one[1], three[1])


def test_kernel_errors_with_several_threads_reach_the_caller():
    """Checked before the threads start: an exception leaving the kernels' target_clones functions
    would end the process (GCC compiles calls to them as if they could not throw)."""
    model = mixed_model()
    model.use_native_kernels(True)
    call = _kernel_call(model, water_box(40, box=9.0, seed=3))
    species = call["species"].clone()
    species[-1] = 7  # a neighbour species the model does not have, in the last chunk
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        with pytest.raises(RuntimeError, match="neighbour species out of range"):
            call["kernel"](call["vectors"], call["offsets"], species, None)
    finally:
        torch.set_num_threads(threads)


def _with_tables(call, radial: torch.Tensor, angular: torch.Tensor) -> tuple:
    """The arguments of torch.ops.bpnn.acsf for the captured call with these parameter tables."""
    kernel = call["kernel"]
    return (call["vectors"], call["offsets"], call["species"], radial, angular, kernel.n_functions, kernel.n_species,
            kernel.cutoff_type, kernel.cutoff_alpha)


def _scaled_widths(call, factor: float):
    """The captured kernel's tables with every eta times `factor` (fresh tensors)."""
    from bpnn_ts.model.kernels import ANGULAR_COLUMNS, RADIAL_COLUMNS
    radial, angular = call["kernel"].radial.clone(), call["kernel"].angular.clone()
    radial[:, RADIAL_COLUMNS.index("eta")] *= factor
    angular[:, ANGULAR_COLUMNS.index("eta")] *= factor
    return radial, angular


def test_kernel_plans_follow_the_table_values_not_their_memory():
    """The ops hold the parsed tables between calls (common/acsf_plan.cpp), keyed on their values:
    a table changed in place (same memory, other values) gets a plan of its own, and more distinct
    tables than the cache holds (64) are parsed again when they come back."""
    model = mixed_model()
    model.use_native_kernels(True)
    call = _kernel_call(model, water_box(8, seed=2))
    tables = [_scaled_widths(call, 1.0 + 0.01 * k) for k in range(70)]
    results = [torch.ops.bpnn.acsf(*_with_tables(call, *pair)) for pair in tables]
    assert not torch.equal(results[0], results[1])
    radial, angular = tables[0][0].clone(), tables[0][1].clone()
    assert torch.equal(torch.ops.bpnn.acsf(*_with_tables(call, radial, angular)), results[0])
    radial.copy_(tables[1][0])  # in place: the same memory now holds table 1's values
    angular.copy_(tables[1][1])
    assert torch.equal(torch.ops.bpnn.acsf(*_with_tables(call, radial, angular)), results[1])
    for pair, expected in reversed(list(zip(tables, results))):  # the first ones were dropped from the cache
        assert torch.equal(torch.ops.bpnn.acsf(*_with_tables(call, *pair)), expected)


def test_kernel_plans_are_shared_safely_by_threads():
    """Python threads calling the ops at once, each with tables of its own (new ones and cached
    ones), get the single-threaded results."""
    from concurrent.futures import ThreadPoolExecutor
    model = mixed_model()
    model.use_native_kernels(True)
    call = _kernel_call(model, water_box(8, seed=2))
    tables = [_scaled_widths(call, 1.0 + 0.03 * k) for k in range(8)]

    def run(k: int):
        return [torch.ops.bpnn.acsf(*_with_tables(call, *tables[(k + i) % len(tables)])) for i in range(40)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(run, range(8)))
    expected = [torch.ops.bpnn.acsf(*_with_tables(call, *pair)) for pair in tables]
    for k, results in enumerate(found):
        assert all(torch.equal(result, expected[(k + i) % len(tables)]) for i, result in enumerate(results))


def test_training_mode_backpropagates_a_force_loss_through_the_kernels():
    """Force-loss gradients need create_graph: the kernels' autograd gives them (their agreement
    with the torch path: tests/test_kernel_autograd.py)."""
    model = mixed_model()
    model.use_native_kernels(True)
    model.train()
    atoms = triclinic()
    out = evaluate(model, atoms)
    loss = (out[keys.FORCES] ** 2).sum()
    loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())


def _pair_set(pairs, shifts):
    return sorted(zip(pairs[0].tolist(), pairs[1].tolist(), map(tuple, shifts.tolist())))


@pytest.mark.parametrize("case", ["triclinic_small", "slab", "wire", "molecule", "far_apart", "empty_neighbours"])
def test_native_cell_list_equals_torch_cell_list(case):
    from bpnn_ts.model.neighbors import native_neighbor_list, neighbor_list
    rng = np.random.default_rng(5)
    cell = torch.tensor([[3.1, 0, 0], [0.9, 2.8, 0], [-0.6, 0.7, 3.3]], dtype=torch.float64)
    positions = torch.tensor(rng.uniform(0, 3, (7, 3)))
    pbc = {"triclinic_small": [True, True, True], "slab": [True, True, False], "wire": [False, False, True],
           "molecule": [False, False, False], "far_apart": [False, False, False],
           "empty_neighbours": [False, False, False]}[case]
    cutoff = 4.5
    if case == "far_apart":
        positions = positions * 100.0
    if case == "empty_neighbours":
        positions = torch.tensor([[0.0, 0, 0], [10.0, 0, 0]], dtype=torch.float64)
    pbc_t = torch.tensor(pbc)
    expected = _pair_set(*neighbor_list(positions, cell, pbc_t, cutoff))
    assert _pair_set(*native_neighbor_list(positions, cell, pbc_t, cutoff)) == expected
    if case == "triclinic_small":
        assert len(expected) > 7 * 20  # many periodic images: cutoff larger than the cell


def test_kernel_builds_announce_themselves_and_coexist(tmp_path, monkeypatch, capsys):
    """A build prints one line saying where it goes; builds of other sources (or torch or Python
    versions, or flags) get folders of their own, so checkouts never rebuild each other's."""
    import torch.utils.cpp_extension

    import bpnn_ts.native as native
    built = []

    def fake_load(name, sources, extra_cflags, build_directory, is_python_module, verbose):
        (Path(build_directory) / f"{name}.so").write_text("")  # what a finished build leaves
        built.append(name)

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake_load)
    native._build_and_load()
    first = capsys.readouterr().err
    assert first == f"bpnn_ts: building the fused C++ kernels in {native.build_directory()} (once; about a minute) ...\n"
    assert native.build_directory().parent == tmp_path and native.build_directory().name == native.build_name()
    native._build_and_load()  # built already: silent
    assert capsys.readouterr().err == ""
    name = native.build_name()
    monkeypatch.setattr(native, "source_hash", lambda: "0123456789abcdef")
    assert native.build_name() != name
    monkeypatch.undo()
    monkeypatch.setattr(native, "SOURCE", tmp_path / "other_checkout" / native.SOURCE.name)
    assert native.build_name() != name  # another checkout of the same sources
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert native.build_name() != name
    monkeypatch.undo()
    monkeypatch.setenv("BPNN_OPS_CFLAGS", "-O2")
    assert native.build_name() != name
    assert len(set(built)) == 1  # both calls: one build folder


def test_a_build_killed_half_way_does_not_block_the_next_one(tmp_path, monkeypatch, capsys):
    """torch.utils.cpp_extension locks a build with a plain `lock` file that a killed build never
    removes; every later load then waited for it forever (a CI run hung until its time limit).
    The next build removes it under an OS lock that dies with its holder."""
    import torch.utils.cpp_extension

    import bpnn_ts.native as native
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    directory = native.build_directory()
    directory.mkdir(parents=True)
    (directory / "lock").write_text("")  # what a build killed half-way leaves

    def fake_load(name, sources, extra_cflags, build_directory, is_python_module, verbose):
        # torch's FileBaton would wait here for as long as `lock` exists
        assert not (Path(build_directory) / "lock").exists(), "the stale lock would hang the build"
        (Path(build_directory) / f"{name}.so").write_text("")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake_load)
    native._build_and_load()
    assert "removing a stale build lock" in capsys.readouterr().err
    assert (directory / f"{native.build_name()}.so").is_file()


HEAP_PROBE = """
import ctypes, sys
import torch
from bpnn_ts.native import load_ops
assert load_ops()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2()
block = libc.malloc(48 << 20)
ctypes.memset(block, 1, 48 << 20)
mapped = libc.mallinfo2().hblkhd - before.hblkhd
libc.free(block)
print(mapped, libc.mallinfo2().arena - before.arena)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the heap policy is set on glibc only")
@pytest.mark.parametrize("setting", ["default", "0"])
def test_the_op_library_keeps_freed_heap_for_the_next_call(setting):
    """Loading the ops sets glibc's heap policy (cpu/heap_policy.cpp): a 48 MB block comes from the
    heap (glibc maps blocks over 32 MB by default) and stays there once freed, for the next call;
    BPNN_KEEP_FREED_MEMORY=0 leaves glibc's defaults."""
    environment = dict(os.environ)
    environment.pop("BPNN_KEEP_FREED_MEMORY", None)
    if setting == "0":
        environment["BPNN_KEEP_FREED_MEMORY"] = "0"
    result = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, env=environment,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    mapped, kept = (int(value) for value in result.stdout.split()[-2:])
    if setting == "default":
        assert mapped == 0 and kept >= 40 << 20, (mapped, kept)
    else:
        assert mapped >= 48 << 20 and kept < 40 << 20, (mapped, kept)
