"""Fixtures shared by the test suite (helpers, tolerances and paths: helpers.py), and the
session's setup: one build of the op library for everything, and TorchScript's graph optimiser
off (tests/test_graph_optimizer.py runs each runtime with it on)."""

import fcntl
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import torch

from bpnn_ts import export, load
from bpnn_ts.graph_optimizer import ENVIRONMENT, apply_environment

from helpers import BPNN_RUN, BUILD, LIBRARY, cmake_build, mixed_model, ranged_model, skip_or_fail

BUILD_PROBLEM = "BPNN_TEST_BUILD_PROBLEM"  # why the session's CMake build failed, if it did (workers inherit it)


def pytest_sessionstart(session):
    """Before collection (test modules load the kernels at import): the graph optimiser off, here
    and in every subprocess (bpnn_run, LAMMPS, bpnn-ts), as a freshly loaded file spends seconds in
    it; and one build of the C++ loader, the LAMMPS plugin and the op library (CMake, into
    build/), whose libbpnn.so Python loads too (BPNN_OPS_LIBRARY), so that the kernels are
    compiled once. BPNN_OPS_LIBRARY set by the caller: that library; BPNN_TEST_PYTHON_BUILD=1:
    Python's own first-use build instead (bpnn_ts/native/__init__.py)."""
    os.environ.setdefault(ENVIRONMENT, "off")
    apply_environment()
    if hasattr(session.config, "workerinput"):  # a pytest-xdist worker: the controller built, its environment came along
        return
    if not os.environ.get("BPNN_BUILD_DIR"):
        print(f"\nbuilding the C++ loader, LAMMPS plugin and op library in {BUILD} (CMake; a few minutes the first "
              "time) ...", flush=True)
        problem = cmake_build()
        if problem:
            os.environ[BUILD_PROBLEM] = problem
    python_build = os.environ.get("BPNN_TEST_PYTHON_BUILD") == "1"
    if LIBRARY.is_file() and not os.environ.get(BUILD_PROBLEM) and not python_build:
        os.environ.setdefault("BPNN_OPS_LIBRARY", str(LIBRARY))


def pytest_collection_modifyitems(config, items):
    """Tests of the session's `.pt2` files are marked `pt2` (the fast tier leaves them out)."""
    for item in items:
        if {"pt2_files", "pt2_committee"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pt2)


@contextmanager
def shared_by_workers(tmp_path_factory, name: str) -> Iterator[Path]:
    """A folder of this test session that pytest-xdist's workers share (the session's temporary
    folder; each worker's own is below it), held under a file lock: what one worker makes there
    (a `.pt2` compile) the others find, instead of making it again."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / name
    folder.mkdir(exist_ok=True)
    with open(root / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def water_model():
    return mixed_model()


@pytest.fixture(scope="session")
def model_variants(water_model, tmp_path_factory):
    """The same model eager, scripted, and saved-then-loaded."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    export(water_model, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(water_model)
    return {"eager": water_model, "scripted": scripted, "loaded": load(path)}


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """`mixed_model()` exported (fused kernels where they build)."""
    return export(mixed_model(), tmp_path_factory.mktemp("model_file") / "model.pt")


@pytest.fixture(scope="session")
def ranged_file(tmp_path_factory):
    """`ranged_model()` (it knows its training range) exported."""
    return export(ranged_model(), tmp_path_factory.mktemp("ranged_file") / "ranged.pt")


@pytest.fixture(scope="session")
def committee_file(tmp_path_factory):
    """A committee of three ranged models, exported."""
    from bpnn_ts.committee_merge import build_committee
    committee = build_committee([ranged_model(seed) for seed in (1, 2, 3)])
    return export(committee, tmp_path_factory.mktemp("committee") / "committee.pt")


@pytest.fixture(scope="session")
def pt2_committee():
    """A committee of two ranged models (it knows its training range): the model of the `.pt2`
    tests, so that committee spreads and extrapolation counts are covered too."""
    from bpnn_ts.committee_merge import build_committee
    return build_committee([ranged_model(seed=0), ranged_model(seed=1)]).eval()


@pytest.fixture(scope="session")
def pt2_files(pt2_committee, tmp_path_factory):
    """`pt2_committee` as a `.pt2` file and as a TorchScript file. The `.pt2` compile takes a
    minute or more, so it is made once per session, for every xdist worker (test_pt2, test_cpp and
    test_lammps share it)."""
    from bpnn_ts.formats.pt2 import MIN_TORCH, torch_version
    from bpnn_ts.native import load_ops
    if torch_version() < MIN_TORCH:
        pytest.skip(f"`.pt2` files need torch >= {MIN_TORCH}")
    if not load_ops():
        pytest.skip("`.pt2` files need the fused C++ kernels (no compiler here)")
    from bpnn_ts.threads import torch_threads
    with shared_by_workers(tmp_path_factory, "pt2") as folder:
        files = {"pt2": folder / "model.pt2", "torchscript": folder / "model.pt"}
        if not all(path.is_file() for path in files.values()):  # (the first worker to get here)
            # compiled with a thread count other than the machine's: inductor would write it into the
            # kernels unless told not to (test_pt2.py::test_kernels_take_the_threads_of_the_process_that_runs_them)
            with torch_threads((os.cpu_count() or 1) + 1):
                export(pt2_committee, files["pt2"])
            export(pt2_committee, files["torchscript"])
    return files


@pytest.fixture(scope="session")
def cpp_build():
    """The C++ loader and LAMMPS plugin, built into build/ when the session started
    (pytest_sessionstart), so that the README's test command runs the C++ and LAMMPS tests too.
    With BPNN_BUILD_DIR set, that build is used as it is."""
    if os.environ.get(BUILD_PROBLEM):
        skip_or_fail(os.environ[BUILD_PROBLEM])
    if not BPNN_RUN.is_file():
        skip_or_fail(f"C++ loader not built ({BPNN_RUN} missing; see docs/cpp.md)")
    return BUILD
