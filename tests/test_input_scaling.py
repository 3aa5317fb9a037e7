"""Input scaling fitted to training data: negligible functions held constant (values ~1e-20
everywhere must not become network inputs of spread 1), the report of held and extreme
functions in the training log, and `{select}` never picking a negligible function."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from bpnn_ts import parse_model_config
from bpnn_ts.demo_data import md_snapshots
from bpnn_ts.function_selection import _Moments
from bpnn_ts.input_scaling import (
    NEGLIGIBLE,
    amplifications,
    descriptor_statistics,
    fit_scaling,
    held_constant,
    scaling_report,
)

RADIAL = [{"type": "radial", "center": "Cu", "neighbor": "Cu", "eta": eta, "r_s": 0.0, "r_c": 4.5}
          for eta in (0.01, 0.3, 1.0)]
# exp(-4 (r_ij² + r_ik²)) at Cu's nearest-neighbour distance 2.55 Å: ~1e-23, range ~1e-22
NEGLIGIBLE_ANGULAR = {"type": "wide", "center": "Cu", "neighbors": ["Cu", "Cu"], "eta": 4.0, "zeta": 1.0,
                      "lambda": 1.0, "r_s": 0.0, "r_c": 4.5}


def cu_model(scaling: str = "sigma"):
    return parse_model_config({"elements": ["Cu"], "cutoff": 4.5, "hidden_layers": [4],
                               "symmetry_functions": RADIAL + [NEGLIGIBLE_ANGULAR], "scaling": scaling,
                               "seed": 0}).build().eval()


@pytest.fixture(scope="module")
def cu_cells():
    return md_snapshots(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 700, 4, 5, seed=1)


def test_the_negligible_function_is_tiny_but_not_constant(cu_cells):
    """(The premise of the other tests: the angular function varies, at ~1e-20.)"""
    statistics = descriptor_statistics(cu_model(), cu_cells)[29]
    low, high = statistics[3, 0], statistics[3, 1]
    assert 0 < high - low < 1e-15 * (statistics[:3, 1] - statistics[:3, 0]).max()


@pytest.mark.parametrize("scaling", ["sigma", "scale", "scalecenter"])
def test_fit_scaling_holds_negligible_functions_constant(cu_cells, scaling):
    model = cu_model(scaling)
    fit_scaling(model, cu_cells)
    factors = model.scaling_factors()[29]
    assert factors[3] == 0 and bool((factors[:3] > 0).all())
    assert held_constant(model) == {29: [3]}
    inputs = model.element_parts()[0].scaling(descriptor_rows(model, cu_cells[0]))
    assert torch.allclose(inputs[:, 3], inputs[0, 3].expand_as(inputs[:, 3]))  # the network sees a constant


def descriptor_rows(model, atoms):
    out = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                                    torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
    return out["descriptors"]



def test_without_the_floor_every_function_is_scaled_as_n2p2_does(cu_cells):
    model = cu_model()
    fit_scaling(model, cu_cells, negligible=0.0)
    factors = model.scaling_factors()[29]
    assert bool((factors > 0).all()) and factors[3] > 1e15  # what made mlearn's Ge unstable
    assert held_constant(model) == {29: []}


def test_held_functions_do_not_count_as_extrapolation(cu_cells):
    """A held function outside its (1e-22 wide) range changes nothing the network sees."""
    model = cu_model()
    fit_scaling(model, cu_cells)
    squeezed = cu_cells[0].copy()
    squeezed.set_cell(squeezed.cell * 0.9, scale_atoms=True)
    g = descriptor_rows(model, squeezed)
    scaling = model.element_parts()[0].scaling
    outside = (g < scaling.g_min) | (g > scaling.g_max)
    assert bool(outside[:, 3].all()) and bool(outside[:, :3].any())
    counts = scaling.count_outside(g)
    assert torch.equal(counts, outside[:, :3].sum(dim=1))


def test_the_report_names_held_and_extreme_functions(cu_cells):
    model = cu_model()
    fit_scaling(model, cu_cells)
    lines = scaling_report(model)
    assert len(lines) == 1 and "1 of 4 Cu functions" in lines[0] and lines[0].endswith(": 3")
    assert f"{NEGLIGIBLE:g}" in lines[0]
    statistics = model.scaling_statistics()
    statistics[29][1] = torch.tensor([1.0, 1.0 + 1e-6, 1.0 + 5e-7, 3e-7], dtype=torch.float64)  # near-constant
    model.set_scaling_statistics(statistics, NEGLIGIBLE)
    warning = [line for line in scaling_report(model) if line.startswith("warning")]
    assert len(warning) == 1 and "Cu function 1 (type radial" in warning[0] and "eta 0.3" in warning[0]
    assert "by 3.33e+06" in warning[0]
    fit_scaling(model, cu_cells)
    assert float(max(amplifications(model)[29])) < 100  # ordinary functions: far below EXTREME
    centred = cu_model("center")  # no division by a spread: nothing is amplified, nothing warned
    centred.set_scaling_statistics(statistics, NEGLIGIBLE)
    assert not [line for line in scaling_report(centred) if line.startswith("warning")]


def test_select_leaves_out_columns_of_negligible_range():
    """`{select}` works on _Moments.correlation's informative columns: a column of 7e-10 +- 3e-10
    (relative spread 0.4, so the old relative test kept it) is not informative."""
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.uniform(0, 5, 200), rng.uniform(0, 1, 200), 7e-10 + 3e-10 * rng.uniform(-1, 1, 200)])
    moments = _Moments(3)
    moments.add(rows)
    _, informative = moments.correlation()
    assert informative.tolist() == [True, True, False]
    moments = _Moments(2)
    moments.add(rows[:, :2] * 1e-9)  # small values alone are no reason: relative to the widest, both kept
    assert moments.correlation()[1].tolist() == [True, True]


def test_a_committee_holds_what_every_member_held(cu_cells):
    """Merged statistics are refitted without the floor; the committee holds the functions all
    members held (no spurious extrapolation counts) and still equals the mean of its members."""
    from bpnn_ts.committee_merge import build_committee
    members = []
    for seed, cells in ((1, cu_cells[:3]), (2, cu_cells[1:])):
        member = parse_model_config({"elements": ["Cu"], "cutoff": 4.5, "hidden_layers": [4], "seed": seed,
                                     "symmetry_functions": RADIAL + [NEGLIGIBLE_ANGULAR],
                                     "scaling": "scalecenter"}).build().eval()
        fit_scaling(member, cells)
        members.append(member)
    committee = build_committee(members)
    assert committee.scaling_factors()[29][3] == 0 and bool((committee.scaling_factors()[29][:3] > 0).all())
    atoms = cu_cells[0]
    args = (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
            torch.tensor(atoms.pbc))
    mean = torch.stack([m(*args)["forces"] for m in members]).mean(dim=0)
    assert torch.allclose(committee(*args)["forces"], mean, atol=1e-10)
