"""Symmetry functions against a loop implementation of the formulas; parameter validation."""

import copy

import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import keys
from bpnn_ts.model.cutoffs import CUTOFF_TYPES
from bpnn_ts.model.descriptors.params import AngularSF, RadialSF, function_from_dict, n2p2_sorted

from helpers import TOL, mixed_functions, mixed_model, water_box
from reference_acsf import reference_descriptors


def small_system():
    atoms = water_box(4, box=5.0, seed=4, cell=[[5.0, 0, 0], [0.8, 4.6, 0], [0.3, -0.5, 4.8]])
    atoms.rattle(0.1, seed=2)
    return atoms


@pytest.mark.parametrize("cutoff_name", sorted(CUTOFF_TYPES))
def test_matches_loop_reference(cutoff_name):
    kind = CUTOFF_TYPES[cutoff_name]
    alpha = 0.25 if kind not in (0, 2, 3) else 0.0
    model = mixed_model(kind, alpha)
    atoms = small_system()
    out = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                                    torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
    expected = reference_descriptors(atoms, mixed_functions(), kind, alpha)
    for i, values in expected.items():
        ours = out[keys.DESCRIPTORS][i, : len(values)].numpy()
        np.testing.assert_allclose(ours, values, rtol=TOL["summation"], atol=TOL["roundoff"])


def test_non_periodic_molecule_matches_reference():
    atoms = Atoms("OH2OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0],
                                       [2.8, 0.1, 0.2], [3.3, 0.9, 0.1], [3.2, -0.6, 0.7]])
    model = mixed_model()
    out = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers))
    atoms.cell = np.eye(3) * 30
    expected = reference_descriptors(atoms, mixed_functions(), 1, 0.0)
    for i, values in expected.items():
        np.testing.assert_allclose(out[keys.DESCRIPTORS][i, : len(values)].numpy(), values, rtol=TOL["summation"],
                                   atol=TOL["roundoff"])


@pytest.mark.parametrize("chunk, budget, uniform", [(3, 1 << 20, True), (32, 1, True), (32, 5000, False),
                                                    (1, 1 << 20, False)])
def test_chunking_does_not_change_results(chunk, budget, uniform):
    model = copy.deepcopy(mixed_model())
    atoms = water_box(10, box=6.5, seed=1)
    args = (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
    reference = model(*args, compute_virial=True)
    model.set_chunk_size(chunk, chunk)
    model.set_block_budget(budget, budget)
    model.potential.uniform_blocks = uniform
    other = model(*args, compute_virial=True)
    descriptors = model.compute_descriptors(*args)
    for key in (keys.FORCES, keys.VIRIAL, keys.ENERGIES):
        assert torch.allclose(reference[key], other[key], atol=TOL["roundoff"], rtol=0), key
    assert abs(float(reference[keys.ENERGY] - other[keys.ENERGY])) < TOL["summation"]
    model.set_chunk_size(32, 2048)
    model.set_block_budget(1 << 20, 1 << 20)
    assert torch.allclose(descriptors[keys.DESCRIPTORS], model.compute_descriptors(*args)[keys.DESCRIPTORS],
                          atol=TOL["roundoff"], rtol=0)


def test_parameter_validation_messages():
    with pytest.raises(ValueError, match="`eta` must be >= 0"):
        RadialSF(1, 1, -0.1, 0.0, 5.0)
    with pytest.raises(ValueError, match="`r_s` must be in"):
        RadialSF(1, 1, 0.1, 6.0, 5.0)
    with pytest.raises(ValueError, match="`lambda` must be -1 or \\+1"):
        AngularSF(1, (1, 8), 0.1, 1.0, 0.5, 0.0, 5.0)
    with pytest.raises(ValueError, match="`zeta` must be >= 1"):
        AngularSF(1, (1, 8), 0.1, 0.5, 1.0, 0.0, 5.0)
    with pytest.raises(ValueError, match="unknown keys"):
        function_from_dict({"type": "radial", "center": "H", "neighbor": "O", "eta": 1, "rs": 2}, 5.0)
    with pytest.raises(ValueError, match="unknown chemical element 'Xx'"):
        function_from_dict({"type": "radial", "center": "Xx", "neighbor": "O", "eta": 1}, 5.0)


def test_n2p2_order_examples_from_format_md():
    # For H in water the sorted radial order is (H, .001), (O, .001), (H, .01), ...
    functions = [RadialSF(1, z, eta, 0.0, 12.0) for z in (1, 8) for eta in (0.001, 0.01)]
    order = [(f.neighbor, f.eta) for f in n2p2_sorted(functions)]
    assert order == [(1, 0.001), (8, 0.001), (1, 0.01), (8, 0.01)]
    # (O, 0.15, rs=0.9) sorts before (H, 0.15, rs=1.9)
    pair = n2p2_sorted([RadialSF(1, 1, 0.15, 1.9, 12.0), RadialSF(1, 8, 0.15, 0.9, 12.0)])
    assert [f.neighbor for f in pair] == [8, 1]
