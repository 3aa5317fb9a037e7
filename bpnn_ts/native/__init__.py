"""The fused C++ symmetry-function kernels (`torch.ops.bpnn.acsf`, `acsf_backward`, and their
directional derivatives `acsf_jvp`, `acsf_backward_jvp`; all differentiable, register.cpp says how)
and the C++ neighbour searches (`cell_list`, `neighbor_list`, `cell_list_capacity`).

`load_ops()` makes them available in this process: from the library named by
the environment variable BPNN_OPS_LIBRARY if set (e.g. the CMake build's
libbpnn.so), else by compiling them once with torch.utils.cpp_extension (needs a C++ compiler and
ninja; the translation units in parallel): `register.cpp` (the op registration) and the CPU
kernels, `common/*.cpp` and `cpu/*.cpp` (`cpu_sources()`). Where torch is a CUDA build and a CUDA
toolkit (nvcc under $CUDA_HOME, or where torch finds one) exists, every `cuda/*.cu` file is
compiled in too, with -DBPNN_WITH_CUDA (`cuda_build()`; BPNN_OPS_CUDA=0 turns that off;
TORCH_CUDA_ARCH_LIST, e.g. "9.0", limits the GPU architectures and the build time): the CUDA
kernels of the ops, `torch.ops.bpnn.cuda_kernels()` then says True. The test-only ops
`bpnn_emulation::*` (`emulation/`) are never part of this build (CMake builds them for the
tests). The build goes to a folder of its own per source hash, torch and Python version and flags
(under $TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions), so that checkouts and environments on
one machine never rebuild or overwrite each other's; a line on stderr says when a build starts.
A build killed half-way leaves torch's lock file behind; the next build removes it (build_lock).
Model files that use the kernels need them registered before loading; `bpnn_ts.load` and the
calculator call this first.
"""

import hashlib
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

import torch

# The op registration (every op's schema and kernels); the kernels' sources are in the folders
# beside it, by back end: common/ (shared by all), cpu/, cuda/ (emulation/: test-only, not built here).
SOURCE = Path(__file__).with_name("register.cpp")
CPU_FOLDERS = ("common", "cpu")  # their *.cpp are compiled with SOURCE
CUDA_FOLDER = "cuda"  # its *.cu files, for a CUDA build
TEST_ONLY_FOLDER = "emulation"  # the CMake target bpnn_emulation (tests only); not in source_hash()
# Flags of nvcc for the *.cu files (IEEE division and square roots: no --use_fast_math).
CUDA_FLAGS = ["-O3", "-DBPNN_WITH_CUDA"]
# Needed for the kernels' loops to vectorize; they change no result (cpp_loader/CMakeLists.txt
# compiles the same files with the same flags).
COMPILE_FLAGS = ["-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]

_lock = threading.Lock()
_error: str = ""


def ops_available() -> bool:
    """True if torch.ops.bpnn.acsf is registered in this process."""
    try:
        return torch.ops.bpnn.acsf is not None
    except (AttributeError, RuntimeError):
        return False


def source_hash() -> str:
    """Hash of the kernel sources: every .cpp, .h, .cu and .cuh under this folder, its subfolders
    included (names and contents; the build cache tracks only the compiled files), except the
    test-only emulation/, which is not part of this build."""
    digest = hashlib.sha256()
    root = SOURCE.parent
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix in (".cpp", ".h", ".cu", ".cuh") and relative.parts[0] != TEST_ONLY_FOLDER:
            digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cpu_sources() -> List[Path]:
    """The C++ translation units of the ops: register.cpp, then common/*.cpp and cpu/*.cpp."""
    return [SOURCE] + [path for folder in CPU_FOLDERS for path in sorted((SOURCE.parent / folder).glob("*.cpp"))]


def cuda_sources() -> List[Path]:
    """The CUDA files (cuda/*.cu: the CUDA kernels that register.cpp registers)."""
    return sorted((SOURCE.parent / CUDA_FOLDER).glob("*.cu"))


def cuda_toolkit() -> str:
    """The CUDA toolkit to build with: $CUDA_HOME, else where torch finds one; "" if it has no nvcc."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if not home:
        from torch.utils import cpp_extension
        home = cpp_extension.CUDA_HOME or ""
    return home if home and os.path.isfile(os.path.join(home, "bin", "nvcc")) else ""


def cuda_build() -> bool:
    """Whether the Python build compiles the CUDA kernels: torch built with CUDA, a toolkit with
    nvcc (`cuda_toolkit()`), CUDA files present, and BPNN_OPS_CUDA not "0". Needs no GPU."""
    if os.environ.get("BPNN_OPS_CUDA", "") == "0" or not torch.version.cuda or not cuda_sources():
        return False
    return bool(cuda_toolkit())


def compile_flags() -> List[str]:
    """The flags of the Python build (with BPNN_OPS_CFLAGS from the environment; -DBPNN_WITH_CUDA
    for a CUDA build)."""
    flags = COMPILE_FLAGS + [f"-DBPNN_SOURCE_HASH={source_hash()}"] + os.environ.get("BPNN_OPS_CFLAGS", "").split()
    return flags + ["-DBPNN_WITH_CUDA"] if cuda_build() else flags


def build_name() -> str:
    """Name of this build: sources and where they are (ninja rebuilds a folder whose source path
    changed, so two checkouts sharing one folder rebuilt each other's), torch and Python version,
    and flags (for a CUDA build: nvcc's, the toolkit and the architectures too), hashed."""
    key = [source_hash(), str(SOURCE.resolve()), torch.__version__, sys.version, *compile_flags()]
    if cuda_build():
        key += [*CUDA_FLAGS, cuda_toolkit(), os.environ.get("TORCH_CUDA_ARCH_LIST", "")]
    return "bpnn_acsf_ops_" + hashlib.sha256("|".join(key).encode()).hexdigest()[:16]


def build_directory() -> Path:
    """Where this build lives (one folder per build_name)."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions")
    return Path(root) / build_name()


def load_ops() -> bool:
    """Register the kernels (build them on first use); False, with `load_error()` saying why, if impossible."""
    global _error
    with _lock:
        if ops_available():
            return True
        if _error:
            return False
        try:
            library = os.environ.get("BPNN_OPS_LIBRARY")
            if library:
                torch.ops.load_library(library)
            else:
                _build_and_load()
        except Exception as error:  # no compiler, no ninja, a broken library: fall back to pure torch
            _error = f"{type(error).__name__}: {error}"
            return False
        return ops_available()


def _build_and_load() -> None:
    """torch.utils.cpp_extension's build of cpu_sources() (and, for a CUDA build, cuda_sources())
    into build_directory() (a no-op when built)."""
    from torch.utils.cpp_extension import load
    name, directory = build_name(), build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    cuda = cuda_build()
    if not (directory / f"{name}.so").is_file():
        what = "fused C++ and CUDA kernels" if cuda else "fused C++ kernels"
        sys.stderr.write(f"bpnn_ts: building the {what} in {directory} (once; about a minute) ...\n")
        sys.stderr.flush()
    sources = [str(path) for path in cpu_sources()]
    options: Dict[str, Any] = {}
    if cuda:
        sources += [str(path) for path in cuda_sources()]
        options = {"extra_cuda_cflags": CUDA_FLAGS, "with_cuda": True}
    with build_lock(directory):
        load(name=name, sources=sources, extra_cflags=compile_flags(), build_directory=str(directory),
             is_python_module=False, verbose=False, **options)


@contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """Hold an OS file lock on `directory` (released by the kernel if this process dies) and
    remove a `lock` file that torch.utils.cpp_extension left there: its build lock is a plain
    file that a killed build never removes, and every later load then waits for it forever. While
    we hold our lock no other bpnn_ts process is building, so such a file is stale."""
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's own lock only
        yield
        return
    with open(directory / "bpnn_build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            stale = directory / "lock"
            if stale.exists():
                sys.stderr.write(f"bpnn_ts: removing a stale build lock {stale} (left by an interrupted build)\n")
                stale.unlink()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_error() -> str:
    """Why `load_ops()` failed ("" if it did not)."""
    return _error
