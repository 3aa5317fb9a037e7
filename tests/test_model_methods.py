"""The host's methods on BPNNModel (model/engine.py): what training, committees, n2p2 import and
precision changes use instead of reaching into the model's parts."""

import pytest
import torch

from bpnn_ts import BPNNModel, export, load
from bpnn_ts.precision import input_dtype, set_precision

from helpers import evaluate, h2o_spec, mixed_model, ranged_model, triclinic_water


def test_from_spec_builds_an_untrained_float64_model_in_training_mode():
    model = BPNNModel.from_spec(h2o_spec())
    assert model.training and model.energy_shifts().dtype == torch.float64
    assert model.spec() == h2o_spec() and model.model_spec() == h2o_spec().to_json()


def test_weights_round_trip_and_change_the_energy():
    model = mixed_model()
    atoms = triclinic_water(3)
    before = float(evaluate(model, atoms)["energy"])
    layers = model.element_weights(8)
    assert [tuple(w.shape) for w, _ in layers] == [(8, len(h2o_spec().functions_of(8))), (8, 8), (1, 8)]
    model.set_element_weights(8, [(w, b + 0.1) for w, b in layers])
    assert float(evaluate(model, atoms)["energy"]) != pytest.approx(before, rel=1e-6)
    model.set_element_weights(8, layers)
    assert float(evaluate(model, atoms)["energy"]) == before
    with pytest.raises(ValueError, match=r"layer 1: weight \(8, 8\) and bias \(8,\) expected, got \(8, 7\)"):
        model.set_element_weights(8, [layers[0], (layers[1][0][:, :7], layers[1][1]), layers[2]])
    with pytest.raises(ValueError, match="the network has 3 layers, got weights of 2"):
        model.set_element_weights(8, layers[:2])
    with pytest.raises(ValueError, match=r"member must be in \[0, 1\), got 1"):
        model.set_element_weights(8, layers, member=1)
    with pytest.raises(ValueError, match="atomic number 6 is not an element of this model"):
        model.element_weights(6)


def test_scaling_statistics_round_trip():
    model, other = ranged_model(), mixed_model()
    statistics = model.scaling_statistics()
    assert set(statistics) == {1, 8} and statistics[8].shape == (len(h2o_spec().functions_of(8)), 4)
    other.set_scaling_statistics(statistics)
    assert other.training_range_known()
    assert all(torch.equal(other.scaling_statistics()[z], statistics[z]) for z in (1, 8))
    with pytest.raises(ValueError, match=r"scaling statistics lack elements \[8\]"):
        other.set_scaling_statistics({1: statistics[1]})


@pytest.mark.parametrize("precision", ["float32", "mixed", "float64"])
def test_set_precision_on_an_eager_model_and_a_loaded_file(precision, tmp_path):
    eager = set_precision(mixed_model(), precision)
    loaded = set_precision(load(export(mixed_model(), tmp_path / "model.pt")), precision)
    for model in (eager, loaded):
        assert model.dtype_name() == precision
        assert input_dtype(model) == (torch.float32 if precision == "float32" else torch.float64)
    atoms = triclinic_water(3)
    assert float(evaluate(eager, atoms)["energy"]) == pytest.approx(float(evaluate(loaded, atoms)["energy"]),
                                                                     rel=1e-5)


def test_species_index_refuses_an_element_the_model_lacks():
    model = mixed_model()
    assert model.species_index(torch.tensor([8, 1, 1])).tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="element C \\(atomic number 6\\) is not in this model"):
        model.species_index(torch.tensor([8, 6]))


def test_set_precision_on_an_older_file_without_the_switch():
    """Format-2 files written before `set_mixed_precision` hold the flag as an attribute only."""
    class OlderFile(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.potential = torch.nn.Module()
            self.potential.mixed_precision = False
            self.weight = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))

    older = set_precision(OlderFile(), "mixed")
    assert older.potential.mixed_precision and older.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="`precision` must be one of \\['float64', 'float32', 'mixed'\\], got 'half'"):
        set_precision(older, "half")
