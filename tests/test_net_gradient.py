"""dy/dx of the element networks by hand-written backpropagation (`activate_with_slope`,
`output_and_gradient`; what torch.export can trace) against autograd, the oracle: activation
slopes, single nets and committees, eager and scripted, float64 and float32, empty batches,
weight gradients of losses built on dy/dx, and whole models (energies, forces, virials and
training gradients) with `analytic_net_gradient` on and off."""

import copy
import warnings

import numpy as np
import pytest
import torch

from bpnn_ts import BPNNModel, export, keys, load
from bpnn_ts.input_scaling import fit_scaling
from bpnn_ts.model.nn import ACTIVATIONS, CommitteeMLP, ElementMLP, activate, activate_with_slope
from bpnn_ts.training.batch import concatenate, make_batches, predict

from helpers import TOL, evaluate, h2o_spec, randomized, training_boxes, triclinic_water, water_box

NAMES = sorted(ACTIVATIONS)
RTOL = {torch.float64: 1e-12, torch.float32: 1e-5}  # relative, activation values and slopes
# n2p2's softplus clip at |x| = 35, zero (relu's kink), tiny and large |x| (exp(80) fits float32)
POINTS = [0.0, 1e-3, 0.5, 1.0, 3.0, 34.9, 35.0, 35.5, 36.0, 60.0, 80.0]
MIXED = ("tanh", "softplus", "identity", "silu", "logistic", "identity")  # 5 hidden layers + output


def scripted(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(module)


def points(dtype: torch.dtype) -> torch.Tensor:
    """The POINTS with both signs and some random ones (x,)."""
    fixed = torch.tensor(POINTS, dtype=torch.float64)
    random = torch.randn(40, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 4.0
    return torch.cat([fixed, -fixed, random]).to(dtype)


def net(activations, n_inputs: int = 7, seed: int = 0, dtype: torch.dtype = torch.float64) -> ElementMLP:
    """An ElementMLP with hidden layers 6, 5, 4, ... (one per activation but the last) and random
    weights and biases large enough to reach the softplus clip now and then."""
    hidden = [6 - k % 3 for k in range(len(activations) - 1)]
    mlp = ElementMLP(n_inputs, hidden, activations)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * 0.9)
    return mlp.to(dtype)


def committee(dtype: torch.dtype = torch.float64) -> CommitteeMLP:
    return CommitteeMLP([net(MIXED, seed=1), net(MIXED, seed=2), net(MIXED, seed=3)]).to(dtype)


def inputs(batch: int = 11, n_inputs: int = 7, dtype: torch.dtype = torch.float64, large: bool = True
           ) -> torch.Tensor:
    """(batch, n_inputs): mostly O(1); with `large` the last two rows are large (softplus beyond its clip)."""
    x = torch.randn(batch, n_inputs, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    if large:
        x[-2:] *= 40.0
    return x.to(dtype)


def autograd_output_and_gradient(module, x: torch.Tensor, member=None, create_graph: bool = False):
    """The oracle: member_output (B,) and its autograd dy/dx (B, n_inputs)."""
    x = x.detach().requires_grad_(True)
    y = module.member_output(x, member)
    (grad,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph)
    return y, grad


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    """Equal to `rtol` of the largest |expected| (sums cancel: entries near zero get that much)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", NAMES)
def test_activation_slopes_equal_autograd(name, dtype):
    code = ACTIVATIONS[name]
    x = points(dtype).requires_grad_(True)
    expected = activate(x, code)
    (expected_slope,) = torch.autograd.grad(expected.sum(), x)
    for function in (activate_with_slope, scripted(activate_with_slope)):
        y, slope = function(x.detach(), code)
        torch.testing.assert_close(y, expected.detach(), rtol=RTOL[dtype], atol=0.0)
        torch.testing.assert_close(slope, expected_slope, rtol=RTOL[dtype], atol=0.0)
    if name in ("softplus", "shifted_softplus"):
        _, slope = activate_with_slope(torch.tensor([35.5, -35.5, 1e3, -1e3], dtype=dtype), code)
        assert slope.tolist() == [1.0, 0.0, 1.0, 0.0]
    if name == "relu":
        assert activate_with_slope(torch.zeros(1, dtype=dtype), code)[1].item() == 0.0


def test_unknown_activation_code():
    with pytest.raises(ValueError, match="unknown activation code 12"):
        activate_with_slope(torch.zeros(2), 12)


def test_some_pre_activations_pass_the_softplus_clip():
    """The nets and inputs below reach n2p2's clip at |x| = 35 (so the network tests cover it)."""
    mlp = net(("softplus", "identity"))
    pre = mlp.layers[0](inputs())
    assert bool((pre > 35.0).any()) and bool((pre < -35.0).any())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", NAMES)
def test_net_gradient_equals_autograd(name, dtype):
    """Each activation in a hidden layer and as the output, around tanh and identity layers."""
    mlp = net((name, "tanh", "identity", name), dtype=dtype)
    x = inputs(dtype=dtype, large=name != "exp_neg")  # (exp(-x) of large inputs: inf)
    expected, expected_grad = autograd_output_and_gradient(mlp, x)
    for module in (mlp, scripted(mlp)):
        for y, grad in (module.output_and_gradient(x), module.member_output_and_gradient(x, None),
                        module.member_output_and_gradient(x, 0)):
            assert_close(y, expected.detach(), RTOL[dtype])
            assert_close(grad, expected_grad, RTOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_committee_gradient_equals_autograd(dtype):
    nets = committee(dtype)
    x = inputs(dtype=dtype)
    for module in (nets, scripted(nets)):
        for member in (None, 0, 1, 2):
            expected, expected_grad = autograd_output_and_gradient(nets, x, member)
            y, grad = module.member_output_and_gradient(x, member)
            assert_close(y, expected.detach(), RTOL[dtype])
            assert_close(grad, expected_grad, RTOL[dtype])
        y, grad = module.output_and_gradient(x)
        expected, expected_grad = autograd_output_and_gradient(nets, x)
        assert_close(grad, expected_grad, RTOL[dtype])
    members = [nets.member_output_and_gradient(x, k)[1] for k in range(3)]
    assert float((members[0] - members[1]).abs().max().detach()) > 0.1  # the members differ


def test_scripted_equals_eager():
    for module in (net(MIXED), committee()):
        script = scripted(module)
        x = inputs()
        for eager, compiled in zip(module.output_and_gradient(x), script.output_and_gradient(x)):
            assert_close(compiled, eager, TOL["exact"])


def test_wrong_member_is_refused():
    x = inputs()
    with pytest.raises(ValueError, match="member 1 asked of a single network"):
        net(MIXED).member_output_and_gradient(x, 1)
    with pytest.raises(ValueError, match="member 3 asked of a committee of 3"):
        committee().member_output_and_gradient(x, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_empty_batch(dtype):
    x = torch.zeros((0, 7), dtype=dtype)
    for module in (net(MIXED, dtype=dtype), committee(dtype)):
        for variant in (module, scripted(module)):
            y, grad = variant.member_output_and_gradient(x, None)
            assert y.shape == (0,) and grad.shape == (0, 7) and y.dtype == dtype and grad.dtype == dtype


@pytest.mark.parametrize("member", [None, 1])
@pytest.mark.parametrize("kind", ["mixed", "relu", "softplus", "gaussian_cos", "square", "committee"])
def test_weight_gradient_of_a_slope_loss_equals_autograd(kind, member):
    """Training differentiates dy/dx w.r.t. the weights (force losses): the hand-written
    backpropagation gives the same second derivatives as autograd with create_graph."""
    activations = {"mixed": MIXED, "relu": ("relu", "relu", "identity"), "softplus": ("softplus", "softplus", "softplus"),
                   "gaussian_cos": ("gaussian", "cos", "reverse_logistic", "exp_neg", "identity"),
                   "square": ("square", "tanh", "square")}
    module = committee() if kind == "committee" else net(activations[kind])
    member = member if kind == "committee" else None
    x = inputs()
    parameters = list(module.parameters())
    gradients = []
    for analytic in (True, False):
        if analytic:
            y, grad = module.member_output_and_gradient(x, member)
        else:
            y, grad = autograd_output_and_gradient(module, x, member, create_graph=True)
        loss = (grad ** 2).sum() + (grad[:, 0] * y).sum() + (y ** 2).sum()
        gradients.append(torch.autograd.grad(loss, parameters, allow_unused=True))
    for a, b in zip(*gradients):
        if b is None:  # a committee member that takes no part in this output
            assert a is None or float(a.abs().max()) == 0.0
            continue
        assert_close(a, b, TOL["runtime"])
    assert any(b is not None and float(b.abs().max()) > 0.1 for b in gradients[1])


# --- whole models: analytic_net_gradient True (default) vs False (autograd through the nets) ---


def scaled_model(committee_size: int = 1):
    """H/O model with fitted "scale" scaling to [-1, 1] and energy scale 2.5 (both enter dE/dG)."""
    spec = h2o_spec(scaling="scale", scale_min=-1.0, scale_max=1.0, energy_scale=2.5,
                    activations=("tanh", "softplus", "identity"), committee_size=committee_size)
    model = randomized(BPNNModel.from_spec(spec), seed=7, scale=0.3)
    fit_scaling(model, training_boxes())
    return model


def set_analytic(model, analytic: bool) -> None:
    """On every ElementModel (by modules(): scripted ModuleLists cannot be iterated from Python)."""
    elements = [m for m in model.modules() if hasattr(m, "analytic_net_gradient")]
    assert len(elements) == 2  # H, O
    for element in elements:
        element.analytic_net_gradient = analytic


def variant(model, kind: str, native: bool, tmp_path):
    if native and not model.use_native_kernels(True):
        pytest.skip("the fused C++ kernels cannot be built here")
    if kind == "scripted":
        return scripted(model)
    if kind == "loaded":
        return load(export(model, tmp_path / "model.pt", native_kernels=native))
    return model


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("kind", ["eager", "scripted", "loaded"])
@pytest.mark.parametrize("committee_size", [1, 3])
def test_model_results_equal_autograd_oracle(committee_size, kind, native, tmp_path):
    model = variant(scaled_model(committee_size), kind, native, tmp_path)
    atoms = triclinic_water(3)
    uncertainty = committee_size > 1
    results = []
    with torch.jit.optimized_execution(False):  # (the profiling executor's warm-up: ~30 s here)
        for analytic in (True, False):
            set_analytic(model, analytic)
            results.append(evaluate(model, atoms, compute_virial=True, compute_uncertainty=uncertainty))
    analytic, oracle = results
    scale = float(oracle[keys.FORCES].abs().max())
    assert scale > 0.1
    checked = [keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL]
    if uncertainty:
        checked += [keys.COMMITTEE_ENERGIES, keys.COMMITTEE_FORCES, keys.FORCES_UNCERTAINTY]
    for key in checked:
        torch.testing.assert_close(analytic[key], oracle[key], rtol=0.0,
                                   atol=TOL["exact"] * max(scale, float(oracle[key].abs().max())), msg=key)


@pytest.mark.parametrize("native", [False, True])
def test_model_training_gradients_equal_autograd_oracle(native):
    """Force and energy losses in training mode (create_graph): the same weight gradients."""
    model = scaled_model(2).train()
    if native and not model.use_native_kernels(True):
        pytest.skip("the fused C++ kernels cannot be built here")
    atoms = triclinic_water(4)
    gradients = []
    for analytic in (True, False):
        set_analytic(model, analytic)
        out = evaluate(model, atoms, compute_virial=True)
        assert out[keys.FORCES].requires_grad
        loss = (out[keys.FORCES] ** 2).sum() + out[keys.ENERGY] ** 2 + (out[keys.VIRIAL] ** 2).sum()
        gradients.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*gradients):
        assert_close(a, b, TOL["runtime"])


def test_cached_training_path_equals_autograd_oracle():
    """Training on cached descriptors (energies_from_descriptors): predictions, weight
    gradients with create_graph, and no graph without it."""
    model = copy.deepcopy(scaled_model()).train()
    structures = [water_box(6, box=5.5, seed=s) for s in range(2)]
    from ase.calculators.singlepoint import SinglePointCalculator
    for atoms in structures:
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0, forces=np.zeros((len(atoms), 3)))
    batch = concatenate(make_batches(model, structures, cached=True))
    gradients, predictions = [], []
    for analytic in (True, False):
        set_analytic(model, analytic)
        out = predict(model, batch, create_graph=True)
        loss = ((out[keys.FORCES] - batch.forces) ** 2).mean() + ((out[keys.ENERGY] - batch.energy) ** 2).mean()
        gradients.append(torch.autograd.grad(loss, list(model.parameters())))
        predictions.append(predict(model, batch, create_graph=False))
        assert not any(value.requires_grad for value in predictions[-1].values())
    for a, b in zip(*gradients):
        assert_close(a, b, TOL["runtime"])
    for key in (keys.ENERGY, keys.FORCES, keys.VIRIAL):
        assert_close(predictions[0][key], predictions[1][key], TOL["exact"])
