"""Fixtures shared by the test suite (helpers, tolerances and paths: helpers.py)."""

import os
import warnings

import pytest
import torch

from bpnn_ts import export, load

from helpers import BPNN_RUN, BUILD, cmake_build, mixed_model, ranged_model, skip_or_fail


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
def committee_file(tmp_path_factory):
    """A committee of three ranged models, exported."""
    from bpnn_ts.committee import build_committee
    committee = build_committee([ranged_model(seed) for seed in (1, 2, 3)])
    return export(committee, tmp_path_factory.mktemp("committee") / "committee.pt")


@pytest.fixture(scope="session")
def cpp_build():
    """The C++ loader and LAMMPS plugin, built (incrementally) into build/ by the first test that
    needs them, so that the README's test command runs the C++ and LAMMPS tests too. With
    BPNN_BUILD_DIR set, that build is used as it is."""
    if not os.environ.get("BPNN_BUILD_DIR"):
        print(f"\nbuilding the C++ loader and LAMMPS plugin in {BUILD} (CMake; a few minutes the first time) ...",
              flush=True)
        problem = cmake_build()
        if problem:
            skip_or_fail(problem)
    if not BPNN_RUN.is_file():
        skip_or_fail(f"C++ loader not built ({BPNN_RUN} missing; see docs/cpp.md)")
    return BUILD
