"""The numpy MLP: exact gradients, fits of analytic functions, stacking, errors."""
import numpy as np
import pytest

from cosmopipe.emulators.network import MLP, TrainConfig, _init, _loss_and_grad, _shapes, stack_mlps, train_mlp


@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_gradient_matches_finite_differences(activation):
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 1, (15, 3)), rng.normal(size=(15, 2))
    shapes = _shapes(3, (5, 4), 2)
    theta = _init(shapes, rng)
    _, grad = _loss_and_grad(theta, shapes, x, y, activation, 1e-3)
    eps = 1e-6
    numeric = np.array([
        (_loss_and_grad(theta + e, shapes, x, y, activation, 1e-3, False)[0]
         - _loss_and_grad(theta - e, shapes, x, y, activation, 1e-3, False)[0]) / (2 * eps)
        for e in np.eye(theta.size) * eps])
    # Central differences of a smooth function: error O(eps^2) relative to O(1) gradients.
    np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-8 * np.abs(grad).max() + 1e-10)


@pytest.mark.parametrize("optimizer, tol", [("lbfgs", 2e-3), ("adam", 2e-2)])
def test_fits_smooth_function_out_of_sample(optimizer, tol):
    # f(x) = sin(2 x0) cos(x1) + 0.3 x0 x1 on [-1, 1]^2; rms error on 400 unseen points.
    rng = np.random.default_rng(0)

    def f(x):
        return np.column_stack([np.sin(2 * x[:, 0]) * np.cos(x[:, 1]) + 0.3 * x[:, 0] * x[:, 1]])

    x = rng.uniform(-1, 1, (200, 2))
    x_test = rng.uniform(-0.95, 0.95, (400, 2))
    cfg = TrainConfig(hidden=(16, 16), optimizer=optimizer, epochs=1500 if optimizer == "lbfgs" else 400,
                      learning_rate=1e-2, seed=1)
    net, report = train_mlp(x, f(x), cfg)
    rms = float(np.sqrt(np.mean((net(x_test) - f(x_test)) ** 2)))
    assert rms < tol, rms
    assert report.val_loss is None and report.train_loss < tol**2


def test_early_stopping_keeps_best_validation_weights():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (12, 2))
    y = x[:, :1] ** 2 + 0.3 * rng.normal(size=(12, 1))  # noisy: a big net overfits
    xv = rng.uniform(-1, 1, (12, 2))
    yv = xv[:, :1] ** 2 + 0.3 * rng.normal(size=(12, 1))
    net, rep = train_mlp(x, y, TrainConfig(hidden=(32, 32), epochs=5000, patience=5, check_every=10), xv, yv)
    best = min(v for _, v in rep.history)
    assert rep.val_loss == pytest.approx(best, rel=1e-12)
    assert rep.iterations < 5000


def test_stacked_networks_equal_their_members():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (30, 3))
    a, _ = train_mlp(x, rng.normal(size=(30, 3)), TrainConfig(hidden=(6,), epochs=50, seed=1))
    b, _ = train_mlp(x, rng.normal(size=(30, 2)), TrainConfig(hidden=(6,), epochs=50, seed=2))
    s = stack_mlps([a, b])
    out = s(x)
    assert out.shape == (2, 30, 3)
    np.testing.assert_array_equal(out[0], a(x))
    np.testing.assert_allclose(out[1, :, :2], b(x), rtol=1e-14, atol=1e-14)
    assert np.all(out[1, :, 2] == 0.0)  # padding output


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="activation must be one of tanh, silu"):
        TrainConfig(activation="relu")
    with pytest.raises(ValueError, match="optimizer must be 'lbfgs' or 'adam'"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="x must be \\(n, n_in\\) and y \\(n, n_out\\)"):
        train_mlp(np.zeros((5, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="layer 1: expects 4 inputs"):
        MLP((np.zeros((2, 3)), np.zeros((4, 1))), (np.zeros(3), np.zeros(1)))
