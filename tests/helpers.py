"""Test helpers in one place: tolerances, paths (shared reference data, the C++ build), model
and structure builders, model-file helpers. Fixtures are in conftest.py."""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import BPNNModel, ModelSpec, load, parse_model_config
from bpnn_ts.model.descriptors.params import RadialSF, auto_symmetry_functions

warnings.filterwarnings("ignore", message=".*(TorchScript|torch.jit).*")

# One table of tolerances (float64 unless named otherwise).
TOL = {
    "ulp": 1e-14,  # a few ulps of O(1) values (cutoff functions, kernels vs torch)
    "roundoff": 1e-13,  # the same sums in another order (chunk sizes, block layouts)
    "exact": 1e-12,  # same arithmetic, different route (eager vs scripted vs loaded vs fused kernels)
    "summation": 1e-11,  # vs a loop-by-loop reference, or the autograd oracle's virial
    "runtime": 1e-10,  # another runtime on the same file (C++, LAMMPS), ghosts folded, fragments added
    "extensive": 1e-9,  # supercells, values printed by another program, MPI reductions
    "invariance": 1e-10,  # eV, rotations/translations/permutations
    "fd_force": 1e-6,  # eV/Å, central differences vs analytic forces
    "fd_stress": 1e-7,  # eV/Å^3, strain derivative vs virial
    "reference_rel": 1e-8,  # relative, vs n2p2's own outputs
    "mixed_runtime": 1e-6,  # mixed precision, C++ (its own pair order) vs Python, relative
    "mixed": 2e-5,  # mixed precision vs float64, relative
    "float32_rel": 1e-5,  # float32 file vs float64, relative
    "float32": 1e-4,  # float32 model vs float64 (eV, eV/Å)
    "nve_drift": 1e-4,  # eV/atom over a short NVE run
}

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
N2P2_WATER = SHARED / "reference" / "n2p2" / "H2O_RPBE-D3"
N2P2_TRAIN = SHARED / "reference" / "n2p2" / "H2O_RPBE-D3-train"
needs_shared = pytest.mark.skipif(
    not N2P2_WATER.is_dir(),
    reason=f"n2p2 reference data (GPL, from ../shared/reference/n2p2 beside the checkout) not found at {N2P2_WATER}")
FORMAT1 = Path(__file__).resolve().parent / "fixtures" / "format1"

# The CMake build of the C++ loader and the LAMMPS plugin (conftest's `cpp_build` makes it).
BUILD = Path(os.environ.get("BPNN_BUILD_DIR", ROOT / "build"))
BPNN_RUN = BUILD / "cpp_loader" / "bpnn_run"
PLUGIN = BUILD / "cpp_loader" / "bpnnplugin.so"
LIBRARY = BUILD / "cpp_loader" / "libbpnn.so"
REQUIRED = os.environ.get("BPNN_REQUIRE_CPP") == "1"  # CI: a C++/LAMMPS test that cannot run fails, never skips
TRICLINIC_CELL = [[5.6, 0, 0], [1.2, 5.3, 0], [-0.7, 0.9, 5.1]]


def skip_or_fail(reason: str) -> None:
    """Skip (fail where BPNN_REQUIRE_CPP=1) a test whose C++ or LAMMPS part cannot run."""
    if REQUIRED:
        pytest.fail(reason + " (BPNN_REQUIRE_CPP=1)")
    pytest.skip(reason)


def tool(name: str):
    """Path of a command, looked for beside this Python first (a virtual environment's bin/,
    where pip puts cmake, lmp and mpirun), then on PATH; None if absent."""
    return shutil.which(name, path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


LMP = tool("lmp")
MPIRUN = tool("mpirun")


def cmake_build(build: Path = BUILD) -> str:
    """Configure (first time) and build the C++ loader and LAMMPS plugin against the installed
    torch; returns "" or why it could not."""
    cmake = tool("cmake")
    if cmake is None:
        return "no `cmake` on PATH (pip install cmake)"
    log = build / "pytest-build.log"
    build.mkdir(parents=True, exist_ok=True)
    steps = []
    if not (build / "CMakeCache.txt").is_file():
        import torch.utils
        steps.append([cmake, "-S", str(ROOT), "-B", str(build), f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                      f"-DPython3_EXECUTABLE={sys.executable}"])
    steps.append([cmake, "--build", str(build), "-j", str(max(1, min(4, os.cpu_count() or 1)))])
    with open(log, "w") as out:
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                return f"the C++ build failed; see {log}"
    return ""


def two_element_config(**overrides):
    """A small H/O model description with every angular kind (fast in tests)."""
    data = {"elements": ["H", "O"], "cutoff": 4.0, "cutoff_function": "cos",
            "symmetry_functions": {"auto": {"n_radial": 4, "angular_eta": [0.02], "zetas": [1.0, 2.0]}},
            "hidden_layers": [8, 8], "activation": "tanh", "seed": 3,
            "atomic_energies": {"H": -1.5, "O": -4.0}}
    data.update(overrides)
    return parse_model_config(data)


def randomized(model, seed: int = 0, scale: float = 0.4):
    """Give a model random (non-trivial) weights; returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
    return model.eval()


def mixed_functions(cutoff: float = 4.0):
    """H/O functions of every kind: radial (two shifts), wide and narrow angular."""
    wide = auto_symmetry_functions([1, 8], cutoff, n_radial=4, angular_eta=[0.02], zetas=[1.0, 2.0])
    narrow = auto_symmetry_functions([1, 8], cutoff, n_radial=1, angular_eta=[0.05], zetas=[4.0],
                                     lambdas=[-1.0], narrow=True)
    return wide + [f for f in narrow if not isinstance(f, RadialSF)]


def h2o_spec(cutoff_type: int = 1, cutoff_alpha: float = 0.0, **changes) -> ModelSpec:
    """The H/O architecture of `mixed_model` (8x8 tanh/softplus nets, reference energies)."""
    spec = ModelSpec((1, 8), tuple(mixed_functions()), (8, 8), ("tanh", "softplus", "identity"), cutoff_type,
                     cutoff_alpha, atomic_energy_shift={1: -1.5, 8: -4.0})
    return spec.replace(**changes)


def mixed_model(cutoff_type: int = 1, cutoff_alpha: float = 0.0, seed: int = 0):
    """Random-weight H/O BPNNModel (float64, eval) using `mixed_functions`."""
    return randomized(BPNNModel.from_spec(h2o_spec(cutoff_type, cutoff_alpha)), seed)


def ranged_model(seed: int = 0):
    """`mixed_model` that knows its training range: scaling statistics from three water boxes
    (`training_boxes`); `squeezed_box` is outside that range, the training boxes are not."""
    from bpnn_ts.input_scaling import fit_scaling
    model = mixed_model(seed=seed)
    fit_scaling(model, training_boxes())
    return model


def training_boxes():
    return [water_box(8, cell=[[5.6, 0, 0], [1.2, 5.3, 0], [-0.7, 0.9, 5.1]], seed=s) for s in (4, 5, 6)]


def squeezed_box() -> Atoms:
    """A training box compressed to 80%: denser than anything seen in training."""
    atoms = training_boxes()[0]
    atoms.set_cell(atoms.cell * 0.8, scale_atoms=True)
    return atoms


def water_box(n_molecules: int = 8, box: float = 6.0, seed: int = 0, cell=None) -> Atoms:
    """Random (non-overlapping) water-like H/O configuration in a periodic cell."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * box if cell is None else np.asarray(cell, dtype=float)
    positions, numbers = [], []
    for _ in range(20000):
        if len(numbers) == 3 * n_molecules:
            break
        centre = rng.uniform(0, 1, 3) @ cell
        candidate = [centre, centre + [0.96, 0, 0], centre + [-0.24, 0.93, 0]]
        trial = Atoms([8, 1, 1] + numbers, positions=candidate + positions, cell=cell, pbc=True)
        if len(positions) and min(trial.get_distances(k, range(3, len(trial)), mic=True).min()
                                  for k in range(3)) < 1.4:
            continue
        positions += candidate
        numbers += [8, 1, 1]
    else:
        raise RuntimeError(f"could not place {n_molecules} molecules in cell {cell.tolist()}")
    return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)


def triclinic_water(seed: int = 0, n_molecules: int = 6, displaced: bool = True) -> Atoms:
    """`n_molecules` waters in a sheared periodic cell (TRICLINIC_CELL); `displaced`: rattled by
    0.05 Å and shifted so that some atoms lie outside the cell, across faces."""
    atoms = water_box(n_molecules, seed=seed, cell=TRICLINIC_CELL)
    if displaced:
        atoms.rattle(0.05, seed=seed)
        atoms.positions += [[2.0, -3.0, 7.5]]
    return atoms


def water_dimer() -> Atoms:
    """Two water molecules, not periodic."""
    return Atoms("OH2OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0],
                                      [2.8, 0.1, 0.2], [3.3, 0.8, 0.5], [3.2, -0.7, 0.4]])


def evaluate(model, atoms: Atoms, **kwargs):
    """Run a model (eager or scripted) on ase.Atoms in float64."""
    return model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                 torch.tensor(np.asarray(atoms.cell.array)), torch.tensor(atoms.pbc), **kwargs)


def export_with_format_version(path, version: int):
    """Export `mixed_model()` claiming another model-file format version (in a subprocess,
    since TorchScript keeps the first compiled `format_version`)."""
    script = ("import bpnn_ts.keys as k; k.FORMAT_VERSION = %d\n"
              "import sys; sys.path.insert(0, %r)\n"
              "from helpers import mixed_model\n"
              "from bpnn_ts import export\n"
              "export(mixed_model(), %r)\n") % (version, str(Path(__file__).parent), str(path))
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return path


def tampered_copy(path, out):
    """`path` with one parameter changed by 1e-3 but its export-time records (hash) kept."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        extras = {name.split("/extra/")[-1]: archive.read(name).decode() for name in archive.namelist()
                  if "/extra/" in name}
    tampered = load(path)
    with torch.no_grad():
        next(iter(tampered.parameters()))[0] += 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(tampered, str(out), _extra_files=extras)
    return out


# The test-only ops torch.ops.bpnn_emulation.* (the GPU code run on the host), a library of their
# own that the CMake build makes (target bpnn_emulation), never part of libbpnn or the Python build.
EMULATION_LIBRARY = BUILD / "cpp_loader" / "libbpnn_emulation.so"
_emulation_loaded = []


def emulation_ops():
    """torch.ops.bpnn_emulation, its library loaded once per process: from the CMake build, made
    (incrementally) first unless BPNN_BUILD_DIR names a build to use as it is. Skips the test
    (fails with BPNN_REQUIRE_CPP=1) where that build cannot be made or lacks the library."""
    if not _emulation_loaded:
        if not os.environ.get("BPNN_BUILD_DIR"):
            problem = cmake_build()
            if problem:
                skip_or_fail(problem)
        if not EMULATION_LIBRARY.is_file():
            skip_or_fail(f"test-only ops not built ({EMULATION_LIBRARY} missing; CMake option BPNN_TEST_OPS)")
        torch.ops.load_library(str(EMULATION_LIBRARY))
        _emulation_loaded.append(EMULATION_LIBRARY)
    return torch.ops.bpnn_emulation
