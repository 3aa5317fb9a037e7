"""The production setting of TorchScript's graph optimiser, once per runtime. The suite runs with
it off (conftest.py: BPNN_GRAPH_OPTIMIZER=off, as a freshly loaded file spends seconds in it);
users get torch's default (on) unless they set the variable. These tests run each runtime with it
on, over enough calls for the profiling executor to optimise the graph, and hold the results to
those with it off: here for Python, in test_cpp.py and test_lammps.py for C++ and LAMMPS."""

import os

import pytest
import torch

from bpnn_ts import load
from bpnn_ts.graph_optimizer import ENVIRONMENT, apply_environment

from helpers import TOL, evaluate, triclinic_water


@pytest.fixture
def optimiser_on(monkeypatch):
    """The graph optimiser on for this test (as users run), back to the suite's setting after."""
    monkeypatch.setenv(ENVIRONMENT, "on")
    apply_environment()
    yield
    monkeypatch.setenv(ENVIRONMENT, "off")
    apply_environment()


def test_python_with_the_optimiser_on_gives_the_same_numbers(model_file, optimiser_on):
    assert torch._C._get_graph_executor_optimize()
    atoms = triclinic_water(3)
    model = load(model_file)
    calls = [evaluate(model, atoms, compute_virial=True) for _ in range(4)]  # profiled, then optimised
    os.environ[ENVIRONMENT] = "off"
    apply_environment()
    reference = evaluate(load(model_file), atoms, compute_virial=True)
    for out in calls:
        for key in ("energy", "forces", "virial"):
            scale = float(reference[key].abs().max())
            assert float((out[key] - reference[key]).abs().max()) <= TOL["runtime"] * scale, key


def test_the_variable_must_say_on_or_off(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT, "fast")
    with pytest.raises(ValueError, match="BPNN_GRAPH_OPTIMIZER must be on or off, got 'fast'"):
        apply_environment()
