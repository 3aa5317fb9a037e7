"""The fused C++ symmetry-function kernels (`torch.ops.bpnn.acsf`, `acsf_backward`, and their
directional derivatives `acsf_jvp`, `acsf_backward_jvp`; all differentiable, acsf_ops.cpp says how).

`load_ops()` makes them available in this process: from the library named by
the environment variable BPNN_OPS_LIBRARY if set (e.g. the CMake build's
libbpnn.so), else by compiling `acsf_ops.cpp` (which includes the headers beside
it) once with torch.utils.cpp_extension (needs a C++ compiler and ninja). The build goes to
a folder of its own per source hash, torch and Python version and flags (under
$TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions), so that checkouts and environments on one
machine never rebuild or overwrite each other's; a line on stderr says when a build starts.
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
from typing import Iterator, List

import torch

# The one translation unit: the op registration, including the per-centre maths, thread pool,
# parameter tables, dual numbers and autograd (acsf_centre.h, thread_pool.h, acsf_plan.h,
# acsf_math.h, dual.h, acsf_autograd.h, cell_list.h).
SOURCE = Path(__file__).with_name("acsf_ops.cpp")
# Needed for the kernels' loops to vectorize; they change no result (cpp_loader/CMakeLists.txt
# compiles the same file with the same flags).
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
    """Hash of the kernel sources, headers included (the build cache tracks only the .cpp)."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE.parent.glob("*.[ch]*")):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def compile_flags() -> List[str]:
    """The flags of the Python build (with BPNN_OPS_CFLAGS from the environment)."""
    return COMPILE_FLAGS + [f"-DBPNN_SOURCE_HASH={source_hash()}"] + os.environ.get("BPNN_OPS_CFLAGS", "").split()


def build_name() -> str:
    """Name of this build: sources and where they are (ninja rebuilds a folder whose source path
    changed, so two checkouts sharing one folder rebuilt each other's), torch and Python version,
    and flags, hashed."""
    key = "|".join([source_hash(), str(SOURCE.resolve()), torch.__version__, sys.version, *compile_flags()])
    return "bpnn_acsf_ops_" + hashlib.sha256(key.encode()).hexdigest()[:16]


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
    """torch.utils.cpp_extension's build of acsf_ops.cpp into build_directory() (a no-op when built)."""
    from torch.utils.cpp_extension import load
    name, directory = build_name(), build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / f"{name}.so").is_file():
        sys.stderr.write(f"bpnn_ts: building the fused C++ kernels in {directory} (once; about a minute) ...\n")
        sys.stderr.flush()
    with build_lock(directory):
        load(name=name, sources=[str(SOURCE)], extra_cflags=compile_flags(), build_directory=str(directory),
             is_python_module=False, verbose=False)


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
