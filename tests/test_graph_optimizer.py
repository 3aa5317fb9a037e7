"""TorchScript's graph optimiser. bpnn_ts's runtimes call files with it off unless
BPNN_GRAPH_OPTIMIZER=on (a freshly loaded file spends seconds in it); the suite runs with it off
(conftest.py). These tests check the calculator's switch, and run each runtime with it on, over
enough calls for the profiling executor to optimise the graph, holding the results to those with
it off: here for Python, in test_cpp.py and test_lammps.py for C++ and LAMMPS."""

import os

import pytest
import torch
from ase.build import molecule

from bpnn_ts import BPNNCalculator, load
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


class SwitchSpy(torch.nn.Module):
    """A loaded file that records the calling thread's graph-optimiser switch at each call."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.switch = []

    def forward(self, *args, **kwargs):
        self.switch.append(torch._C._get_graph_executor_optimize())
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


@pytest.mark.parametrize("variable,thread_switch,during_calls", [
    (None, True, False),  # unset: off for the calculator's calls, whatever the thread says
    ("on", False, True),
    ("off", True, False)])
def test_the_calculator_calls_with_the_optimiser_as_the_variable_says(model_file, monkeypatch, variable,
                                                                      thread_switch, during_calls):
    if variable is None:
        monkeypatch.delenv(ENVIRONMENT, raising=False)
    else:
        monkeypatch.setenv(ENVIRONMENT, variable)
    spy = SwitchSpy(load(model_file))
    atoms = molecule("H2O")
    atoms.calc = BPNNCalculator(spy, extrapolation="ignore")
    with torch.jit.optimized_execution(thread_switch):
        atoms.get_forces()
        assert torch._C._get_graph_executor_optimize() == thread_switch  # restored after the call
    assert spy.switch == [during_calls]


def test_the_calculator_refuses_a_bad_variable(model_file, monkeypatch):
    monkeypatch.setenv(ENVIRONMENT, "fast")
    with pytest.raises(ValueError, match="BPNN_GRAPH_OPTIMIZER must be on or off, got 'fast'"):
        BPNNCalculator(model_file)
