"""The GPU kernels' per-thread code (bpnn_ts/native/cuda/acsf_device.h) against the CPU kernels.

Everywhere: the test-only ops torch.ops.bpnn_emulation.* (their own library, from the CMake
build: helpers.emulation_ops) run that code on the host, one loop iteration per would-be CUDA
thread, on the flat plan a launch copies; they must equal the CPU
kernels (torch.ops.bpnn.*) for every cutoff type, narrow and wide angular functions, integer and
real zeta, periodic, triclinic and small cells, forward, backward and their directional
derivatives (one direction and two, the nested duals). With a GPU (skipped otherwise): the CUDA
ops themselves against the CPU kernels, and whole models on CUDA against the CPU.
"""

from pathlib import Path
from typing import Dict, List

import pytest
import torch
from ase import Atoms

from bpnn_ts import keys
from bpnn_ts.model.kernels import ANGULAR_COLUMNS, RADIAL_COLUMNS, NativeKernel
from bpnn_ts.native import load_error, load_ops

from helpers import TOL, emulation_ops, evaluate, mixed_model, squeezed_box, triclinic_water, water_box

pytestmark = pytest.mark.skipif(not load_ops(), reason=f"C++ kernels cannot be built here: {load_error()}")

_skip_without_cuda = pytest.mark.skipif(
    not torch.cuda.is_available() or not (load_ops() and torch.ops.bpnn.cuda_kernels()),
    reason="needs a CUDA device and the ops built with CUDA (bpnn.cuda_kernels())")


def needs_cuda(test):
    """Marker `gpu`; skipped without a CUDA device or without the ops' CUDA kernels."""
    return pytest.mark.gpu(_skip_without_cuda(test))


@pytest.fixture(scope="module")
def emulation():
    """torch.ops.bpnn_emulation (the CMake build's test-only library; skipped without it)."""
    return emulation_ops()

CUTOFF_TYPES = [(0, 0.0), (1, 0.0), (1, 0.3), (2, 0.0), (3, 0.0), (4, 0.2), (5, 0.0), (6, 0.1), (7, 0.0), (8, 0.4)]
FLOAT64 = TOL["exact"]  # relative to the largest value: same maths, another summation order
FLOAT32 = TOL["float32_rel"]


def float32_tolerance(cutoff_type: int) -> float:
    """Relative tolerance of float32 results: the CPU kernels' AVX2 build contracts to FMA, the
    emulation does not; the degree-7 and -9 polynomials of cutoff types 7 and 8 cancel near r_c,
    where float32 (either build) is only ~1e-5 from float64."""
    return FLOAT32 * (3.0 if cutoff_type in (7, 8) else 1.0)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 for two zero tensors)."""
    scale = float(b.abs().max()) if b.numel() else 0.0
    difference = float((a.double() - b.double().to(a.device)).abs().max()) if b.numel() else 0.0
    return difference / scale if scale > 0 else difference


def kernel_calls(model, atoms: Atoms) -> List[Dict]:
    """Every element kernel's inputs while `model` (fused kernels on) evaluates `atoms`: the
    kernel's own arguments (parameter tables ...) and the pair data, one dict per element."""
    calls: List[Dict] = []
    original = NativeKernel.forward

    def capture(self, vectors, offsets, species, d_g):
        if d_g is None:
            calls.append(dict(vectors=vectors.detach().clone(), offsets=offsets.clone(), species=species.clone(),
                              radial=self.radial, angular=self.angular, n_functions=self.n_functions,
                              n_species=self.n_species, cutoff_type=self.cutoff_type,
                              cutoff_alpha=self.cutoff_alpha))
        return original(self, vectors, offsets, species, d_g)

    model.use_native_kernels(True)
    model.whole_evaluation_atoms = 0  # (the per-element kernels, not the one-op evaluation)
    NativeKernel.forward = capture
    try:
        evaluate(model, atoms)
    finally:
        NativeKernel.forward = original
    assert calls
    return calls


def arguments(call: Dict, vectors: torch.Tensor) -> tuple:
    return (vectors, call["offsets"], call["species"], call["radial"], call["angular"], call["n_functions"],
            call["n_species"], call["cutoff_type"], call["cutoff_alpha"])


def all_ops(namespace, call: Dict, dtype=torch.float64, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The four ACSF ops of `namespace` on one kernel call: G, dE/dr_ij for random dE/dG, and the
    directional derivatives of both along one random direction and along two (nested duals)."""
    generator = torch.Generator().manual_seed(seed)
    vectors = call["vectors"].to(dtype)
    n_pairs, n_centres = vectors.shape[0], call["offsets"].shape[0] - 1
    d_g = torch.randn((n_centres, call["n_functions"]), generator=generator, dtype=torch.float64).to(dtype)
    u = torch.randn((2, n_pairs, 3), generator=generator, dtype=torch.float64).to(dtype)
    args = arguments(call, vectors)
    results = {"acsf": namespace.acsf(*args), "acsf_backward": namespace.acsf_backward(*args, d_g)}
    if dtype == torch.float64:
        results.update(jvp=namespace.acsf_jvp(*args, u[0]), jvp2=namespace.acsf_jvp(*args, u),
                       backward_jvp=namespace.acsf_backward_jvp(*args, d_g, u[0]),
                       backward_jvp2=namespace.acsf_backward_jvp(*args, d_g, u[:1]),
                       backward_jvp_nested=namespace.acsf_backward_jvp(*args, d_g, u))
    return results


def assert_emulation_equals_cpu(emulation, calls: List[Dict], dtype=torch.float64, rtol: float = FLOAT64) -> None:
    for call in calls:
        emulated = all_ops(emulation, call, dtype)
        cpu = all_ops(torch.ops.bpnn, call, dtype)
        for name, value in cpu.items():
            assert emulated[name].shape == value.shape and emulated[name].dtype == value.dtype, name
            assert float(value.abs().max()) > 0, name  # something was computed
            assert relative_difference(emulated[name], value) <= rtol, (name, relative_difference(emulated[name], value))


@pytest.mark.parametrize("cutoff_type,alpha", CUTOFF_TYPES)
def test_emulation_equals_cpu_for_every_cutoff_type(emulation, cutoff_type, alpha):
    calls = kernel_calls(mixed_model(cutoff_type, alpha), triclinic_water(4, n_molecules=8, displaced=False))
    assert_emulation_equals_cpu(emulation, calls)
    assert_emulation_equals_cpu(emulation, calls, torch.float32, float32_tolerance(cutoff_type))


@pytest.mark.parametrize("case", ["triclinic_displaced", "small_cubic", "molecule", "large_box"])
def test_emulation_equals_cpu_for_periodic_triclinic_and_small_cells(emulation, case):
    atoms = {"triclinic_displaced": lambda: triclinic_water(2, n_molecules=6),
             "small_cubic": lambda: water_box(2, box=3.2, seed=1),  # the cell below the cutoff: many images
             "molecule": lambda: water_box(4, seed=5),
             "large_box": lambda: water_box(30, box=9.0, seed=3)}[case]()
    if case == "molecule":
        atoms.pbc = False
    assert_emulation_equals_cpu(emulation, kernel_calls(mixed_model(), atoms))


def test_emulation_float32_close_to_cpu_float32(emulation):
    calls = kernel_calls(mixed_model(6, 0.1), triclinic_water(4, n_molecules=8, displaced=False))
    assert_emulation_equals_cpu(emulation, calls, torch.float32, FLOAT32)


def random_tables(n_species: int = 3, seed: int = 0):
    """Parameter tables of functions of three species with what the model tests lack: real
    (non-integer) zeta, an odd integer zeta (the CPU's run-time-integer path), several cutoffs,
    shifted radial functions, narrow and wide functions of one element pair."""
    radial, angular = [], []
    column = 0
    for s in range(n_species):
        for eta, r_s, r_c in [(0.5, 0.0, 4.0), (1.2, 1.5, 3.5), (0.1, 2.5, 4.5)]:
            radial.append(dict(column=column, species=s, eta=eta, r_s=r_s, r_c=r_c))
            column += 1
    for sj in range(n_species):
        for sk in range(sj, n_species):
            for narrow, eta, zeta, lambda_, r_c in [(1, 0.05, 1.0, 1.0, 4.0), (1, 0.05, 3.0, -1.0, 4.0),
                                                    (0, 0.02, 2.5, 1.0, 4.5), (0, 0.02, 16.0, -1.0, 3.5),
                                                    (1, 0.3, 1.7, -1.0, 3.5), (0, 0.05, 4.0, 1.0, 4.0)]:
                angular.append(dict(column=column, species_j=sj, species_k=sk, narrow=narrow, eta=eta, zeta=zeta,
                                    r_s=0.0, r_c=r_c, **{"lambda": lambda_}))
                column += 1
    to_table = lambda rows, names: torch.tensor([[float(row[n]) for n in names] for row in rows],  # noqa: E731
                                                dtype=torch.float64)
    return to_table(radial, RADIAL_COLUMNS), to_table(angular, ANGULAR_COLUMNS), column


@pytest.mark.parametrize("cutoff_type,alpha", [(1, 0.0), (2, 0.0), (4, 0.2), (8, 0.4)])
def test_emulation_equals_cpu_for_real_zeta_and_three_species(emulation, cutoff_type, alpha):
    generator = torch.Generator().manual_seed(cutoff_type)
    radial, angular, n_functions = random_tables()
    counts = torch.randint(0, 40, (12,), generator=generator)
    counts[3] = 0  # a centre with no neighbours
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    vectors = (torch.rand((int(offsets[-1]), 3), generator=generator, dtype=torch.float64) - 0.5) * 9.0
    vectors[5] = vectors[4]  # two neighbours at one place: |r_jk| = 0
    species = torch.randint(0, 3, (vectors.shape[0],), generator=generator)
    call = dict(vectors=vectors, offsets=offsets, species=species, radial=radial, angular=angular,
                n_functions=n_functions, n_species=3, cutoff_type=cutoff_type, cutoff_alpha=alpha)
    assert_emulation_equals_cpu(emulation, [call])
    assert_emulation_equals_cpu(emulation, [call], torch.float32, float32_tolerance(cutoff_type))


def test_emulation_checks_its_inputs_as_the_cpu_ops_do(emulation):
    call = kernel_calls(mixed_model(), triclinic_water(4, n_molecules=8, displaced=False))[0]
    species = call["species"].clone()
    species[-1] = 7
    with pytest.raises(RuntimeError, match="neighbour species out of range"):
        emulation.acsf(*arguments(dict(call, species=species), call["vectors"]))
    with pytest.raises(RuntimeError, match="u must be"):
        emulation.acsf_jvp(*arguments(call, call["vectors"]), torch.zeros(3, 1, 3))


def test_kernel_slots_say_where_they_run():
    """The potential routes a device's tensors to the fused kernels only where the slot runs
    there: NativeKernel on the CPU, and on CUDA iff the ops hold CUDA kernels; NoKernel nowhere."""
    from bpnn_ts.model.kernels import NoKernel
    model = mixed_model()
    model.use_native_kernels(True)
    kernel = model.potential.elements[0].kernel
    assert isinstance(kernel, NativeKernel)
    scripted = torch.jit.script(kernel)
    for slot in (kernel, scripted):
        assert slot.runs_on(torch.device("cpu"))
        assert slot.runs_on(torch.device("cuda")) == torch.ops.bpnn.cuda_kernels()
        assert not slot.runs_on(torch.device("meta"))
    assert not NoKernel().runs_on(torch.device("cpu")) and not torch.jit.script(NoKernel()).runs_on(torch.device("cpu"))
    assert model.potential._kernels_run_on(torch.device("cpu"))
    model.use_native_kernels(False)
    assert not model.potential._kernels_run_on(torch.device("cpu"))


# ---- the builds: CUDA only where possible (the compile itself: benchmarks/gpu/compile_check.sh) ----

def test_python_build_adds_every_cu_file_and_the_flag_only_for_a_cuda_build(tmp_path, monkeypatch):
    import torch.utils.cpp_extension

    import bpnn_ts.native as native
    built: Dict = {}

    def fake_load(name, sources, extra_cflags, build_directory, is_python_module, verbose, **cuda):
        (Path(build_directory) / f"{name}.so").write_text("")
        built.clear()
        built.update(name=name, sources=sources, cflags=extra_cflags, **cuda)

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake_load)
    monkeypatch.setattr(native, "cuda_build", lambda: False)
    native._build_and_load()
    native_folder = native.SOURCE.parent
    cpu_sources = [str(path) for path in native.cpu_sources()]
    assert built["sources"] == cpu_sources and "-DBPNN_WITH_CUDA" not in built["cflags"]
    assert cpu_sources[0] == str(native_folder / "register.cpp")
    assert {str(native_folder / name) for name in ("common/acsf_plan.cpp", "cpu/acsf_cpu.cpp", "cpu/acsf_jvp_cpu.cpp",
                                                   "cpu/neighbors_cpu.cpp")} <= set(cpu_sources)
    assert "extra_cuda_cflags" not in built  # exactly the CPU build
    cpu_name = built["name"]
    monkeypatch.setattr(native, "cuda_build", lambda: True)
    native._build_and_load()
    cu_files = sorted((native_folder / "cuda").glob("*.cu"))
    assert native_folder / "cuda" / "acsf_cuda.cu" in cu_files and native_folder / "cuda" / "neighbor_list_cuda.cu" in cu_files
    assert built["sources"] == cpu_sources + [str(path) for path in cu_files]
    assert "-DBPNN_WITH_CUDA" in built["cflags"] and "-DBPNN_WITH_CUDA" in built["extra_cuda_cflags"]
    assert built["with_cuda"] and built["name"] != cpu_name  # a folder of its own
    # never the test-only emulation; one object file per source (torch names them by file name)
    assert not [source for source in built["sources"] if "emulation" in Path(source).parts]
    assert len({Path(source).name.split(".")[0] for source in built["sources"]}) == len(built["sources"])


def test_cuda_build_needs_a_cuda_torch_and_nvcc(tmp_path, monkeypatch):
    import bpnn_ts.native as native
    toolkit = tmp_path / "cuda"
    (toolkit / "bin").mkdir(parents=True)
    monkeypatch.setenv("CUDA_HOME", str(toolkit))
    monkeypatch.delenv("BPNN_OPS_CUDA", raising=False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert not native.cuda_build()  # no nvcc
    (toolkit / "bin" / "nvcc").write_text("")
    assert native.cuda_build() and native.cuda_toolkit() == str(toolkit)
    monkeypatch.setenv("BPNN_OPS_CUDA", "0")
    assert not native.cuda_build()
    monkeypatch.delenv("BPNN_OPS_CUDA")
    monkeypatch.setattr(torch.version, "cuda", None)
    assert not native.cuda_build()  # a CPU build of torch


def test_source_hash_covers_every_kernel_source_but_the_emulation(tmp_path, monkeypatch):
    import shutil

    import bpnn_ts.native as native
    copy = tmp_path / "native"
    shutil.copytree(native.SOURCE.parent, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(native, "SOURCE", copy / native.SOURCE.name)
    hashes = {native.source_hash()}
    for name in ("cuda/acsf_cuda.cu", "cuda/acsf_device.h", "cpu/acsf_centre.h", "common/acsf_plan.cpp", "register.cpp"):
        (copy / name).write_text((copy / name).read_text() + "\n// changed\n")
        hashes.add(native.source_hash())
    assert len(hashes) == 6  # each change is a new build
    (copy / "cpu" / "thread_pool.h").rename(copy / "cpu" / "threads.h")  # names count too
    hashes.add(native.source_hash())
    assert len(hashes) == 7
    before = native.source_hash()
    emulation = copy / "emulation" / "emulation_ops.cpp"
    emulation.write_text(emulation.read_text() + "\n// changed\n")  # test-only: not in the Python build
    assert native.source_hash() == before


# ---- on a GPU (tests skip without one; benchmarks/gpu/device_checks.sh runs them) ----

GPU = torch.device("cuda")  # (a dry run of these tests' logic on a CPU machine sets it to the CPU)


def cuda_call(call: Dict) -> Dict:
    return {name: value.to(GPU) if isinstance(value, torch.Tensor) else value for name, value in call.items()}


@needs_cuda
@pytest.mark.parametrize("cutoff_type,alpha", CUTOFF_TYPES)
def test_cuda_ops_equal_cpu_for_every_cutoff_type(cutoff_type, alpha):
    calls = kernel_calls(mixed_model(cutoff_type, alpha), triclinic_water(4, n_molecules=8, displaced=False))
    for call in calls:
        for dtype, rtol in ((torch.float64, FLOAT64), (torch.float32, float32_tolerance(cutoff_type))):
            cpu = all_ops(torch.ops.bpnn, call, dtype)
            gpu = all_ops(torch.ops.bpnn, cuda_call(call), dtype)
            for name, value in cpu.items():
                assert gpu[name].device.type == GPU.type and gpu[name].dtype == value.dtype, name
                assert relative_difference(gpu[name].cpu(), value) <= rtol, (name, dtype)


@needs_cuda
def test_cuda_ops_equal_cpu_for_real_zeta_small_cells_and_autograd():
    radial, angular, n_functions = random_tables()
    generator = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 40, (12,), generator=generator)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    vectors = (torch.rand((int(offsets[-1]), 3), generator=generator, dtype=torch.float64) - 0.5) * 9.0
    species = torch.randint(0, 3, (vectors.shape[0],), generator=generator)
    call = dict(vectors=vectors, offsets=offsets, species=species, radial=radial, angular=angular,
                n_functions=n_functions, n_species=3, cutoff_type=1, cutoff_alpha=0.0)
    calls = [call] + kernel_calls(mixed_model(), water_box(2, box=3.2, seed=1))
    for call in calls:
        cpu, gpu = all_ops(torch.ops.bpnn, call), all_ops(torch.ops.bpnn, cuda_call(call))
        for name, value in cpu.items():
            assert relative_difference(gpu[name].cpu(), value) <= FLOAT64, name
    # the Autograd-key kernels route the CUDA tensors' derivatives to the CUDA ops
    vectors = call["vectors"].clone().requires_grad_(True)
    g = torch.ops.bpnn.acsf(*arguments(call, vectors))
    (grad,) = torch.autograd.grad(g.square().sum(), vectors)
    on_gpu = call["vectors"].to(GPU).requires_grad_(True)
    g_gpu = torch.ops.bpnn.acsf(*arguments(cuda_call(call), on_gpu))
    (grad_gpu,) = torch.autograd.grad(g_gpu.square().sum(), on_gpu)
    assert relative_difference(grad_gpu.cpu(), grad) <= FLOAT64


def cuda_model(model):
    """`model` with the fused kernels, moved to the GPU (it must choose them there)."""
    model.use_native_kernels(True)
    return model.to(GPU)


def evaluate_on(model, atoms: Atoms, device: torch.device, **kwargs):
    return model(torch.tensor(atoms.positions, device=device), torch.tensor(atoms.numbers, device=device),
                 torch.tensor(atoms.cell.array, device=device), torch.tensor(atoms.pbc, device=device), **kwargs)


@needs_cuda
@pytest.mark.parametrize("cutoff_type,alpha", [(1, 0.0), (2, 0.0), (6, 0.1)])
def test_model_on_cuda_uses_the_kernels_and_equals_cpu(cutoff_type, alpha):
    model = mixed_model(cutoff_type, alpha)
    atoms = triclinic_water(4, n_molecules=8, displaced=True)
    model.use_native_kernels(True)
    reference = evaluate(model, atoms, compute_virial=True)
    model = cuda_model(model)
    calls = []
    original = NativeKernel.forward

    def spy(self, vectors, offsets, species, d_g):
        calls.append(vectors.device.type)
        return original(self, vectors, offsets, species, d_g)

    NativeKernel.forward = spy
    try:
        result = evaluate_on(model, atoms, GPU, compute_virial=True)
    finally:
        NativeKernel.forward = original
    assert calls and set(calls) == {GPU.type}  # the fused kernels ran, on CUDA tensors
    for key in (keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL):
        assert relative_difference(result[key].cpu(), reference[key]) <= FLOAT64, key


@needs_cuda
def test_committee_spreads_and_extrapolation_counts_on_cuda_equal_cpu(pt2_committee):
    atoms = squeezed_box()  # outside the training range: extrapolation counts above 0
    pt2_committee.use_native_kernels(True)
    reference = evaluate(pt2_committee, atoms, compute_uncertainty=True, count_extrapolation=True)
    assert int(reference[keys.EXTRAPOLATION].sum()) > 0
    result = evaluate_on(cuda_model(pt2_committee), atoms, GPU, compute_uncertainty=True, count_extrapolation=True)
    assert set(result) == set(reference)
    for key, value in reference.items():
        if value.is_floating_point():
            assert relative_difference(result[key].cpu(), value) <= FLOAT64, key
        else:
            assert torch.equal(result[key].cpu(), value), key
