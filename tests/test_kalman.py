"""The Kalman filter (bpnn_ts/training/kalman.py): on a linear model it is recursive least squares,
so its result is known in closed form; blocks, multi-observation updates, schedules, state."""

import math

import pytest
import torch

from bpnn_ts.training.kalman import KalmanFilter, KalmanSettings, flat_jacobian, parameter_blocks

FIXED = dict(q0=0.0, q_min=0.0, eta0=0.5, eta_max=0.5)  # no process noise, constant eta: plain RLS


def linear_problem(n_obs=40, n_weights=7, seed=0):
    generator = torch.Generator().manual_seed(seed)
    design = torch.randn(n_obs, n_weights, generator=generator, dtype=torch.float64)
    targets = design @ torch.randn(n_weights, generator=generator, dtype=torch.float64) \
        + 0.1 * torch.randn(n_obs, generator=generator, dtype=torch.float64)
    return design, targets


def run_filter(design, targets, settings, per_update=1, split=None):
    n = design.shape[1]
    weights = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    blocks = [[weights]] if split is None else None
    if split is not None:  # two parameters, two blocks
        first = torch.nn.Parameter(torch.zeros(split, dtype=torch.float64))
        second = torch.nn.Parameter(torch.zeros(n - split, dtype=torch.float64))
        blocks = [[first], [second]]
    kalman = KalmanFilter(blocks, settings, updates_per_epoch=1)
    for start in range(0, design.shape[0], per_update):
        rows = design[start:start + per_update]
        values = rows @ torch.cat([p.detach() for p in kalman.parameters])
        kalman.update(targets[start:start + per_update] - values, rows)
    return torch.cat([p.detach() for p in kalman.parameters]), kalman


def test_standard_filter_on_a_linear_model_is_regularised_least_squares():
    """P0 = I/epsilon is the prior, 1/eta the observation noise: w = (eta H^T H + eps I)^-1 eta H^T y."""
    design, targets = linear_problem()
    settings = KalmanSettings(kind="standard", blocks="combined", epsilon=0.01, **FIXED)
    weights, kalman = run_filter(design, targets, settings)
    eta, eps = 0.5, 0.01
    expected = torch.linalg.solve(eta * design.T @ design + eps * torch.eye(design.shape[1], dtype=torch.float64),
                                  eta * design.T @ targets)
    assert torch.allclose(weights, expected, rtol=1e-10, atol=1e-12)
    # and P is the posterior covariance
    posterior = torch.linalg.inv(eta * design.T @ design + eps * torch.eye(design.shape[1], dtype=torch.float64))
    assert torch.allclose(kalman.covariances[0], posterior, rtol=1e-8, atol=1e-12)


def test_several_observations_per_update_equal_one_at_a_time():
    design, targets = linear_problem()
    settings = KalmanSettings(kind="standard", blocks="combined", **FIXED)
    one, _ = run_filter(design, targets, settings, per_update=1)
    five, _ = run_filter(design, targets, settings, per_update=5)
    assert torch.allclose(one, five, rtol=1e-10, atol=1e-12)


def test_fading_memory_without_fading_is_the_standard_filter_with_eta_one():
    design, targets = linear_problem()
    standard, _ = run_filter(design, targets, KalmanSettings(kind="standard", q0=0.0, q_min=0.0, eta0=1.0, eta_max=1.0))
    fading, kalman = run_filter(design, targets, KalmanSettings(kind="fading", q0=0.0, q_min=0.0, lambda0=1.0, nu=1.0))
    assert torch.allclose(standard, fading, rtol=1e-10, atol=1e-12)
    assert kalman.forgetting == 1.0


def test_fading_memory_forgets_old_observations():
    """lam < 1 weighs late observations more: a target that changes half way is followed."""
    design, targets = linear_problem(n_obs=200)
    shifted = torch.cat([targets[:100], targets[100:] + design[100:, 0]])
    settings = dict(q0=0.0, q_min=0.0, eta0=1.0, eta_max=1.0)
    standard, _ = run_filter(design, shifted, KalmanSettings(kind="standard", **settings))
    fading, kalman = run_filter(design, shifted, KalmanSettings(kind="fading", lambda0=0.9, nu=1.0, **settings))
    late = slice(150, 200)
    error = lambda w: float((design[late] @ w - shifted[late]).square().mean())  # noqa: E731
    assert error(fading) < 0.5 * error(standard)
    assert math.isclose(kalman.forgetting, 0.9, rel_tol=1e-14)
    _, kalman = run_filter(design, shifted, KalmanSettings(kind="fading", lambda0=0.9, nu=0.99, **settings))
    assert math.isclose(kalman.forgetting, 1.0 - 0.1 * 0.99 ** 200, rel_tol=1e-12)


def test_block_diagonal_covariance_is_exact_for_uncoupled_blocks():
    """Weights in separate blocks whose observations never mix: blocks lose nothing."""
    design, targets = linear_problem()
    design[:20, 4:] = 0.0
    design[20:, :4] = 0.0
    settings = KalmanSettings(kind="standard", **FIXED)
    combined, _ = run_filter(design, targets, settings)
    blocked, kalman = run_filter(design, targets, settings, split=4)
    assert kalman.sizes == [4, 3]
    assert torch.allclose(combined, blocked, rtol=1e-10, atol=1e-12)


def test_schedules_follow_n2p2():
    settings = KalmanSettings(q0=0.01, q_tau=2.302, q_min=1e-6, eta0=0.01, eta_tau=2.302, eta_max=1.0)
    kalman = KalmanFilter([[torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]], settings, updates_per_epoch=10)
    kalman.n_updates = 10  # one epoch: a factor 10 each
    assert math.isclose(kalman.process_noise, 0.001, rel_tol=1e-3)
    assert math.isclose(kalman.eta, 0.1, rel_tol=1e-3)
    kalman.n_updates = 1000
    assert kalman.process_noise == 1e-6 and kalman.eta == 1.0


def test_state_round_trip_and_mismatch():
    design, targets = linear_problem()
    settings = KalmanSettings(blocks="combined")
    _, kalman = run_filter(design, targets, settings)
    other = KalmanFilter([[torch.nn.Parameter(torch.zeros(7, dtype=torch.float64))]], settings, 1)
    other.load_state_dict(kalman.state_dict())
    assert torch.equal(other.covariances[0], kalman.covariances[0]) and other.n_updates == kalman.n_updates
    wrong = KalmanFilter([[torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))]], settings, 1)
    with pytest.raises(ValueError, match="not the checkpoint of this model"):
        wrong.load_state_dict(kalman.state_dict())


def test_parameter_blocks_by_element_and_layer():
    from helpers import mixed_model
    model = mixed_model()
    named = list(model.named_parameters())
    by_element = parameter_blocks(named, "element")
    by_layer = parameter_blocks(named, "layer")
    assert len(parameter_blocks(named, "combined")) == 1
    assert len(by_element) == len(model.atomic_numbers())
    assert len(by_layer) == sum(len(list(element.net.layers)) for element in model.potential.elements)
    assert sum(p.numel() for b in by_layer for p in b) == sum(p.numel() for _, p in named)
    with pytest.raises(ValueError, match="covariance blocks must be one of"):
        parameter_blocks(named, "neuron")


def test_flat_jacobian_matches_autograd():
    layer = torch.nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    outputs = torch.tanh(layer(x)).sum(dim=1)
    jacobian = flat_jacobian(outputs, list(layer.parameters()))
    for i in range(4):
        grads = torch.autograd.grad(outputs[i], list(layer.parameters()), retain_graph=True)
        assert torch.allclose(jacobian[i], torch.cat([g.reshape(-1) for g in grads]))


def test_flat_jacobian_of_forces_batched_equals_one_row_at_a_time():
    """The force observations' Jacobian (double backward through the nets and the cached
    descriptor Jacobian) from one batched pass equals one pass per component."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from bpnn_ts import keys
    from bpnn_ts.training.batch import labelled_batch, make_batches, predict

    from helpers import mixed_model, water_box
    model = mixed_model().train()
    atoms = water_box(4, seed=2)
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=atoms.positions * 0.0)
    assert labelled_batch(atoms, torch.float64, torch.device("cpu")).n_structures == 1
    batch = make_batches(model, [atoms], cached=True)[0]
    forces = predict(model, batch, create_graph=True)[keys.FORCES].reshape(-1)[[0, 4, 7, 11, 30]]
    parameters = list(model.parameters())
    batched = flat_jacobian(forces, parameters)
    rows = torch.stack([flat_jacobian(forces[i:i + 1], parameters)[0] for i in range(5)])
    assert torch.allclose(batched, rows, rtol=1e-12, atol=1e-14)
    assert batched.abs().sum() > 0


def test_float32_weights_keep_a_float64_covariance():
    design, targets = linear_problem()
    weights = torch.nn.Parameter(torch.zeros(design.shape[1], dtype=torch.float32))
    kalman = KalmanFilter([[weights]], KalmanSettings(blocks="combined", **FIXED), updates_per_epoch=1)
    assert kalman.covariances[0].dtype == torch.float64
    for row, target in zip(design, targets):
        kalman.update((target - row @ weights.detach().double()).reshape(1), row.reshape(1, -1).float())
    expected, _ = run_filter(design, targets, KalmanSettings(blocks="combined", **FIXED))
    assert weights.dtype == torch.float32
    assert torch.allclose(weights.detach().double(), expected, rtol=1e-4, atol=1e-5)
