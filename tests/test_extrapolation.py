"""Extrapolation: per-atom counts of symmetry functions outside the training range, in the
graph (every evaluation path) and the ASE calculator's policies."""

import warnings

import numpy as np
import pytest
import torch

from bpnn_ts import BPNNModel, export, keys, load
from bpnn_ts.calculator import BPNNCalculator
from bpnn_ts.extrapolation import ExtrapolationError, ExtrapolationWarning, describe
from bpnn_ts.native import load_ops

from helpers import mixed_model, ranged_model, squeezed_box, training_boxes


def inputs(atoms, dtype=torch.float64):
    return (torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
            torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc))


def expected_counts(model, atoms) -> np.ndarray:
    """Direct comparison of the model's descriptors with its stored range."""
    g = model.compute_descriptors(*inputs(atoms))[keys.DESCRIPTORS]
    counts = np.zeros(len(atoms), dtype=np.int64)
    for k, (z, element) in enumerate(zip(model.atomic_numbers(), model.potential.elements)):
        rows = atoms.numbers == z
        n = model.potential.n_functions[k]
        low, high = element.scaling.g_min.numpy(), element.scaling.g_max.numpy()
        margin = 1e-9 * (high - low)
        counts[rows] = ((g[rows, :n].numpy() < low - margin) | (g[rows, :n].numpy() > high + margin)).sum(1)
    return counts


@pytest.fixture(scope="module")
def model():
    return ranged_model()


@pytest.mark.parametrize("path", ["torch", "native", "scripted"])
def test_counts_in_the_graph_match_the_stored_range(model, path):
    if path == "native" and not load_ops():
        pytest.skip("C++ kernels cannot be built here")
    evaluated = model
    if path == "native":
        evaluated = ranged_model()
        evaluated.use_native_kernels(True)
    if path == "scripted":
        evaluated = load(export(model, _tmp() / "ranged.pt", native_kernels=False))
    for atoms in training_boxes():
        out = evaluated(*inputs(atoms), count_extrapolation=True)
        assert out[keys.EXTRAPOLATION].dtype == torch.int64
        assert int(out[keys.EXTRAPOLATION].sum()) == 0  # inside the range it was fitted on
    squeezed = squeezed_box()
    counts = evaluated(*inputs(squeezed), count_extrapolation=True)[keys.EXTRAPOLATION].numpy()
    assert counts.sum() > 0 and np.array_equal(counts, expected_counts(model, squeezed))


def test_counting_off_adds_nothing(model):
    out = model(*inputs(squeezed_box()))
    assert keys.EXTRAPOLATION not in out and keys.DESCRIPTORS not in out


def test_model_without_range_says_so():
    bare = mixed_model()
    assert not bare.training_range_known()
    with pytest.raises(ValueError, match="no training range"):
        bare(*inputs(squeezed_box()), count_extrapolation=True)
    atoms = squeezed_box()
    atoms.calc = BPNNCalculator(bare)  # default: ignore for such a model
    atoms.get_potential_energy()
    with pytest.raises(ValueError, match="needs a model that knows its training range"):
        BPNNCalculator(bare, extrapolation="warn")


def test_calculator_policies(model):
    atoms = squeezed_box()
    expected = expected_counts(model, atoms)
    atoms.calc = BPNNCalculator(model, extrapolation="stop")
    with pytest.raises(ExtrapolationError, match=r"atom\(s\).*outside the training range.*\(O|\(H"):
        atoms.get_potential_energy()
    atoms.calc = BPNNCalculator(model, extrapolation="ignore")
    atoms.get_potential_energy()
    assert not atoms.calc.results["extrapolation"].any()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        atoms.calc = BPNNCalculator(model)  # default for a model with a range: warn
        for step in range(3):
            atoms.positions[0, 0] += 1e-3 * (step + 1)  # new positions: a new calculation
            atoms.get_potential_energy()
    found = [w for w in caught if issubclass(w.category, ExtrapolationWarning)]
    assert len(found) == 1, "rate limit: one warning per 100 extrapolating calls"
    assert f"{int((expected > 0).sum())} atom(s)" in str(found[0].message)
    assert np.array_equal(atoms.calc.results["extrapolation"] > 0, expected_counts(model, atoms) > 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        atoms.calc = BPNNCalculator(model, extrapolation_every=1)
        for _ in range(2):
            atoms.positions[0, 0] += 1e-3
            atoms.get_potential_energy()
    assert sum(issubclass(w.category, ExtrapolationWarning) for w in caught) == 2
    with pytest.raises(ValueError, match="extrapolation policy must be one of"):
        BPNNCalculator(model, extrapolation="panic")


def test_describe_names_atoms_and_elements():
    text = describe(np.array([0, 2, 0, 1]), [8, 1, 1, 8])
    assert text.startswith("2 atom(s) (3 symmetry function values)") and "1 (H, 2), 3 (O, 1)" in text


_TMP = []


def _tmp():
    import tempfile
    from pathlib import Path
    if not _TMP:
        _TMP.append(Path(tempfile.mkdtemp()))
    return _TMP[0]


def test_training_range_survives_a_state_dict_round_trip(model):
    """Checkpoints store state dicts: a model rebuilt from spec + state must still know its range
    (`bpnn-ts export CHECKPOINT` used to write files that could not count extrapolation)."""
    from bpnn_ts import ModelSpec
    rebuilt = BPNNModel.from_spec(ModelSpec.from_json(model.model_spec()))
    assert not rebuilt.training_range_known()
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.training_range_known()
    np.testing.assert_array_equal(expected_counts(rebuilt, squeezed_box()), expected_counts(model, squeezed_box()))


def test_a_growing_blow_up_is_reported_at_every_new_high():
    """An MD run whose extrapolating atoms grow from 5 to 90: the rate limit (one warning per 100
    extrapolating calls) never hides a call with more atoms than any before; the summary names
    the worst call."""
    from bpnn_ts.extrapolation import ExtrapolationPolicy
    numbers = [8] * 100
    policy = ExtrapolationPolicy("warn", every=100)
    growth = [0] * 10 + [5] * 40 + [10, 10, 20, 5, 45, 44, 90, 90, 30]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for atoms in growth:
            counts = np.zeros(100, dtype=np.int64)
            counts[:atoms] = 2
            policy.apply(counts, numbers)
    reported = [int(str(w.message).split(" atom(s)")[0]) for w in caught if issubclass(w.category, ExtrapolationWarning)]
    assert reported == [5, 10, 20, 45, 90], reported
    assert "a new high" in str(caught[-1].message) and "extrapolating call 47 of 57" in str(caught[-1].message)
    assert policy.summary() == ("extrapolation: 49 of 59 calls had atoms outside the training range; the worst, "
                                "call 57, 90 atoms")


def test_stop_above_a_number_of_atoms_is_a_safety_net():
    from bpnn_ts.extrapolation import ExtrapolationPolicy
    policy = ExtrapolationPolicy("stop", stop_above=50)
    counts = np.zeros(100, dtype=np.int64)
    counts[:45] = 1
    with pytest.warns(ExtrapolationWarning, match="45 atom"):
        policy.apply(counts, [8] * 100)
    counts[:90] = 1
    with pytest.raises(ExtrapolationError, match=r"90 atom\(s\).*more than 50 atoms"):
        policy.apply(counts, [8] * 100)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="`stop_above` must be an integer >= 0"):
            ExtrapolationPolicy("stop", stop_above=bad)


def test_the_calculator_says_how_the_run_went_when_it_is_released(model, capfd):
    import gc
    atoms = squeezed_box()
    atoms.calc = BPNNCalculator(model, extrapolation_stop_above=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        atoms.get_potential_energy()
    atoms.calc = None
    gc.collect()
    err = capfd.readouterr().err
    assert "bpnn_ts: extrapolation: 1 of 1 calls had atoms outside the training range; the worst, call 1, " in err
