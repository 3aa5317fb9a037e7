"""Cutoff functions: formulas, limits, smoothness, gradients."""

import pytest
import torch

from bpnn_ts.model.cutoffs import CUTOFF_TYPES, cutoff_function, cutoff_type_id

from helpers import TOL
from reference_acsf import cutoff_reference

SMOOTH = ["cos", "tanhu", "tanh", "exp", "poly1", "poly2", "poly3", "poly4"]


@pytest.mark.parametrize("name", sorted(CUTOFF_TYPES))
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_matches_formula(name, alpha):
    kind = cutoff_type_id(name)
    r = torch.linspace(0.0, 6.0, 601, dtype=torch.float64).unsqueeze(-1)
    r_c = torch.tensor([5.0], dtype=torch.float64)
    ours = cutoff_function(r, r_c, kind, alpha).squeeze(-1)
    expected = torch.tensor([cutoff_reference(float(x), 5.0, kind, alpha) for x in r.squeeze(-1)], dtype=torch.float64)
    assert torch.allclose(ours, expected, atol=TOL["ulp"], rtol=0)
    assert float(ours[r.squeeze(-1) >= 5.0].abs().max()) == 0.0


@pytest.mark.parametrize("name", SMOOTH)
def test_value_and_slope_vanish_at_cutoff(name):
    r = torch.tensor([[5.0 - 1e-4]], dtype=torch.float64, requires_grad=True)
    f = cutoff_function(r, torch.tensor([5.0], dtype=torch.float64), cutoff_type_id(name), 0.0)
    (slope,) = torch.autograd.grad(f.sum(), r)
    assert abs(f.item()) < 1e-3 and abs(slope.item()) < 5e-2


@pytest.mark.parametrize("name", sorted(CUTOFF_TYPES))
def test_gradcheck_and_finite_gradients_everywhere(name):
    kind = cutoff_type_id(name)
    r_c = torch.tensor([4.0, 5.0], dtype=torch.float64)
    inside = torch.tensor([[1.3, 2.1], [3.2, 4.4]], dtype=torch.float64, requires_grad=True)
    if name == "hard":
        return  # piecewise constant: no gradient to check
    assert torch.autograd.gradcheck(lambda x: cutoff_function(x, r_c, kind, 0.2), (inside,))
    outside = torch.tensor([[0.0, 9.0], [4.0, 5.0]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(cutoff_function(outside, r_c, kind, 0.2).sum(), outside)
    assert torch.isfinite(grad).all()


def test_unknown_type():
    with pytest.raises(ValueError, match="cutoff function type must be one of"):
        cutoff_type_id("gaussian")


@pytest.mark.parametrize("name", sorted(CUTOFF_TYPES))
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_analytic_slope_matches_autograd(name, alpha):
    from bpnn_ts.model.cutoffs import cutoff_function_and_slope
    kind = cutoff_type_id(name)
    r = torch.linspace(0.01, 6.0, 577, dtype=torch.float64, requires_grad=True).unsqueeze(-1)
    r_c = torch.tensor([5.0, 4.0], dtype=torch.float64)
    value, slope = cutoff_function_and_slope(r, r_c, kind, alpha)
    expected = cutoff_function(r, r_c, kind, alpha)
    if kind == 0:
        assert torch.equal(value, expected) and float(slope.abs().max()) == 0.0
        return
    (autograd_slope,) = torch.autograd.grad(expected.sum(), r)
    assert torch.equal(value, expected)
    # per column: sum over K of slopes equals autograd of the sum
    assert torch.allclose(slope.sum(-1, keepdim=True), autograd_slope, atol=TOL["exact"], rtol=TOL["exact"])
