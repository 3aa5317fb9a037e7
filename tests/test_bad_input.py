"""Bad input, drawn at random (hypothesis): degenerate cells under every pbc pattern, NaN/inf,
wrong shapes and wrong dtypes given to a model file, in Python and in `bpnn_run`. Every one must
give an error whose message names the argument; never a torch-internal message."""

import json
import re
import subprocess

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpnn_ts.errors import error_message

from helpers import BPNN_RUN, water_box

ARGUMENTS = ("positions", "atomic_numbers", "cell", "pbc", "pairs", "shifts", "n_local")
TORCH_INTERNALS = ("linalg", "singular", "Expected", "RuntimeError", "index out of", "size of tensor", "Traceback",
                   "File \"", "dtype=", "must match the size")
PATTERNS = [(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True) if a or b or c]


def atoms_and_tensors(seed: int = 0):
    atoms = water_box(3, box=6.0, seed=seed)
    return atoms, [torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                   torch.tensor(atoms.pbc)]


def degenerate_cell(draw, pbc) -> np.ndarray:
    """A cell whose periodic rows span no length, area or volume (zero rows, parallel or coplanar
    rows), with arbitrary non-periodic rows."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    cell = rng.uniform(-6.0, 6.0, (3, 3))
    periodic = [k for k in range(3) if pbc[k]]
    kind = draw(st.sampled_from(["zero", "dependent"] if len(periodic) > 1 else ["zero"]))
    if kind == "zero":
        cell[draw(st.sampled_from(periodic))] = 0.0
    elif len(periodic) == 2:
        cell[periodic[1]] = cell[periodic[0]] * rng.uniform(-2.0, 2.0)
    else:
        a, b = rng.uniform(-2.0, 2.0, 2)
        cell[2] = a * cell[0] + b * cell[1]
    return cell


@st.composite
def bad_calls(draw):
    """(arguments, keyword arguments, the argument the error must name) of one bad call."""
    atoms, (positions, numbers, cell, pbc) = atoms_and_tensors(draw(st.integers(0, 5)))
    kind = draw(st.sampled_from(["cell", "not_finite", "shape", "dtype", "engine_list"]))
    if kind == "cell":
        pattern = draw(st.sampled_from(PATTERNS))
        return [positions, numbers, torch.tensor(degenerate_cell(draw, pattern)), torch.tensor(pattern)], {}, "cell"
    if kind == "not_finite":
        name = draw(st.sampled_from(["positions", "cell"]))
        value = draw(st.sampled_from([float("nan"), float("inf"), -float("inf")]))
        target = positions.clone() if name == "positions" else cell.clone()
        target.view(-1)[draw(st.integers(0, target.numel() - 1))] = value
        args = [target, numbers, cell, pbc] if name == "positions" else [positions, numbers, target, pbc]
        return args, {}, name
    if kind == "shape":
        name = draw(st.sampled_from(["positions", "atomic_numbers", "cell", "pbc"]))
        shapes = {"positions": [positions[:, :2], positions.unsqueeze(-1), positions.reshape(-1)],
                  "atomic_numbers": [numbers[:-1], numbers.unsqueeze(1)],
                  "cell": [cell[:2], cell.reshape(-1), cell[:, :2]], "pbc": [pbc[:2], pbc.unsqueeze(0)]}
        args = [positions, numbers, cell, pbc]
        args[["positions", "atomic_numbers", "cell", "pbc"].index(name)] = draw(st.sampled_from(shapes[name]))
        return args, {}, name
    if kind == "dtype":
        name = draw(st.sampled_from(["positions", "atomic_numbers", "cell", "pbc"]))
        wrong = {"positions": [positions.long(), positions.bool()], "atomic_numbers": [numbers.double(), numbers.bool()],
                 "cell": [cell.long(), cell.bool()], "pbc": [pbc.long(), pbc.double()]}
        args = [positions, numbers, cell, pbc]
        args[["positions", "atomic_numbers", "cell", "pbc"].index(name)] = draw(st.sampled_from(wrong[name]))
        return args, {}, name
    # an engine's list: wrong shapes, dtypes, indices, n_local
    n = len(atoms)
    pairs = torch.tensor([[0, 1], [1, 0]])
    name = draw(st.sampled_from(["pairs", "shifts", "n_local"]))
    options = {"pairs": [pairs.double(), pairs[:1], torch.tensor([[0], [n + 2]]), torch.tensor([[-1], [0]])],
               "shifts": [torch.zeros((2, 2), dtype=torch.long), torch.zeros((2, 3)), torch.zeros((3, 3), dtype=torch.long)],
               "n_local": [-1, n + 1]}
    choice = draw(st.sampled_from(options[name]))
    extra = {"pairs": pairs, "shifts": None, "n_local": n}
    extra[name] = choice
    return [positions, numbers, cell, pbc], extra, name


def message_of(call) -> str:
    try:
        call()
    except (ValueError, torch.jit.Error) as error:
        return error_message(str(error))
    raise AssertionError("no error")


def assert_names_argument(message: str, argument: str) -> None:
    assert f"`{argument}`" in message, message
    assert not any(internal in message for internal in TORCH_INTERNALS), message
    if "tensor, got" in message:  # dtypes by name, not by TorchScript's number
        assert re.search(r"tensor, got (float|int|uint|bool|complex)\w*", message), message


@pytest.fixture(scope="module")
def loaded(model_file):
    from bpnn_ts import load
    return load(model_file)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad_calls())
def test_model_file_names_the_bad_argument(loaded, water_model, call):
    args, kwargs, argument = call
    for model in (loaded, water_model):
        assert_names_argument(message_of(lambda model=model: model(*args, **kwargs)), argument)


@pytest.mark.parametrize("pbc", PATTERNS)
def test_dependent_periodic_rows_give_the_zero_measure_message(loaded, pbc):
    """Linearly dependent periodic rows (the non-periodic row arbitrary) are refused before the
    neighbour search inverts anything."""
    _, (positions, numbers, _, _) = atoms_and_tensors()
    cell = torch.tensor([[4.0, 0.3, 0.0], [0.5, 5.0, 0.0], [0.2, -0.4, 6.0]], dtype=torch.float64)
    periodic = [k for k in range(3) if pbc[k]]
    if len(periodic) == 1:
        cell[periodic[0]] = 0.0
    elif len(periodic) == 2:
        cell[periodic[1]] = 2.0 * cell[periodic[0]]
    else:
        cell[2] = cell[0] + cell[1]
    message = message_of(lambda: loaded(positions, numbers, cell, torch.tensor(pbc)))
    assert_names_argument(message, "cell")
    assert "zero" in message


@st.composite
def bad_structures(draw):
    """An xyz structure bpnn_run must refuse: a degenerate cell under some pbc pattern, or a NaN/inf
    position (the part of the file that is wrong must be named)."""
    atoms, _ = atoms_and_tensors(draw(st.integers(0, 5)))
    if draw(st.booleans()):
        pattern = draw(st.sampled_from(PATTERNS))
        atoms.cell = degenerate_cell(draw, pattern)
        atoms.pbc = pattern
        return atoms, "`cell`"
    atoms.positions[draw(st.integers(0, len(atoms) - 1)), draw(st.integers(0, 2))] = draw(
        st.sampled_from([float("nan"), float("inf")]))
    return atoms, "position of atom"


@pytest.mark.cpp
@pytest.mark.usefixtures("cpp_build")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad_structures())
def test_bpnn_run_names_the_bad_argument(model_file, tmp_path_factory, case):
    atoms, named = case
    path = tmp_path_factory.mktemp("bad") / "structure.xyz"
    ase.io.write(path, atoms, format="extxyz")
    result = subprocess.run([str(BPNN_RUN), str(model_file), str(path)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    message = result.stderr.strip()
    assert message.startswith("bpnn: ") and named in message, message
    assert not any(internal in message for internal in TORCH_INTERNALS), message
    assert not result.stdout or "energy" not in json.loads(result.stdout or "{}")


def test_atoms_helper_is_valid(loaded):
    """The structures the bad calls start from are themselves fine."""
    atoms, tensors = atoms_and_tensors(3)
    assert isinstance(atoms, Atoms) and float(loaded(*tensors)["energy"]) != 0.0
