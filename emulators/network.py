"""A small multilayer perceptron: numpy forward pass and a numpy trainer.

Prediction is a few matrix products, vectorised over many inputs and, for
stacked networks of identical shape (one per redshift), over the stack too:
weights of shape (S, n_in, n_out) act on inputs (n, n_in) or (S, n, n_in)
and give (S, n, n_out).  Nothing here imports a machine-learning framework.

Training minimises the mean squared error plus an L2 penalty on the weights
with either

* ``lbfgs`` (default): scipy's L-BFGS-B on the exact gradient.  For the
  small, smooth regression problems of an emulator (tens to hundreds of
  cosmologies, a few thousand weights) it reaches a far lower loss than
  stochastic optimisers in the same time;
* ``adam``: mini-batch Adam with a step-decay learning rate, for larger sets.

Both keep the weights of the lowest validation loss seen when a validation
set is given (early stopping) and stop after ``patience`` checks without
improvement.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MLP", "ACTIVATIONS", "TrainConfig", "train_mlp", "stack_mlps"]


def _tanh(x):
    return np.tanh(x)


def _tanh_grad(h):
    # In terms of the activation output h = tanh(x): saves keeping x.
    return 1.0 - h * h


def _silu(x):
    return x / (1.0 + np.exp(-x))


ACTIVATIONS = ("tanh", "silu")


@dataclass(frozen=True)
class MLP:
    """Fully connected network: hidden layers with ``activation``, linear output.

    weights  tuple of (n_in, n_out) arrays, or (S, n_in, n_out) for S stacked nets
    biases   tuple of (n_out,) arrays, or (S, n_out)
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = "tanh"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLP activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError("MLP: need one bias per weight matrix and at least one layer")
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.ndim not in (2, 3) or b.shape != w.shape[:-2] + w.shape[-1:]:
                raise ValueError(f"MLP layer {i}: weight shape {w.shape} and bias shape {b.shape} do not match")
            if i and w.shape[-2] != self.weights[i - 1].shape[-1]:
                raise ValueError(f"MLP layer {i}: expects {w.shape[-2]} inputs, previous layer gives "
                                 f"{self.weights[i - 1].shape[-1]}")

    @property
    def n_in(self) -> int:
        return self.weights[0].shape[-2]

    @property
    def n_out(self) -> int:
        return self.weights[-1].shape[-1]

    @property
    def stacked(self) -> bool:
        return self.weights[0].ndim == 3

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs for inputs ``x`` (..., n_in): (n, n_out), or (S, n, n_out) when stacked."""
        act = _tanh if self.activation == "tanh" else _silu
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w
            h += b[..., None, :] if w.ndim == 3 else b
            if i < last:
                h = act(h)
        return h


def stack_mlps(nets: list[MLP]) -> MLP:
    """One stacked MLP from networks of identical shape; narrower output layers
    are padded with zero weights (their extra outputs are exactly 0)."""
    if not nets:
        raise ValueError("stack_mlps: no networks")
    depth = len(nets[0].weights)
    if any(len(n.weights) != depth or n.activation != nets[0].activation for n in nets):
        raise ValueError("stack_mlps: networks differ in depth or activation")
    n_out = max(n.n_out for n in nets)
    weights, biases = [], []
    for layer in range(depth):
        ws = [n.weights[layer] for n in nets]
        bs = [n.biases[layer] for n in nets]
        if layer == depth - 1:
            ws = [np.pad(w, ((0, 0), (0, n_out - w.shape[1]))) for w in ws]
            bs = [np.pad(b, (0, n_out - b.shape[0])) for b in bs]
        if len({w.shape for w in ws}) != 1:
            raise ValueError(f"stack_mlps: layer {layer} shapes differ: {sorted({w.shape for w in ws})}")
        weights.append(np.stack(ws))
        biases.append(np.stack(bs))
    return MLP(tuple(weights), tuple(biases), nets[0].activation)


# -- training ------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train_mlp`.

    hidden         widths of the hidden layers
    activation     'tanh' or 'silu'
    optimizer      'lbfgs' or 'adam'
    epochs         L-BFGS iterations, or Adam passes over the training set
    learning_rate  Adam step size (decays by 10x at 60 % and 85 % of the epochs)
    batch_size     Adam mini-batch size
    weight_decay   L2 penalty on the weights (not the biases), per weight
    patience       stop after this many validation checks without improvement
    check_every    iterations (L-BFGS) or epochs (Adam) between validation checks
    seed           random seed of the initial weights and of the batch order
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    optimizer: str = "lbfgs"
    epochs: int = 3000
    learning_rate: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 1e-7
    patience: int = 100
    check_every: int = 50
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"network optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"network activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if not self.hidden or any(int(w) < 1 for w in self.hidden):
            raise ValueError(f"network hidden: need at least one layer of positive width, got {self.hidden}")
        for name in ("epochs", "batch_size", "patience", "check_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"network {name} must be a positive integer, got {getattr(self, name)}")
        for name in ("learning_rate",):
            if not getattr(self, name) > 0:
                raise ValueError(f"network {name} must be positive, got {getattr(self, name)}")
        if not self.weight_decay >= 0:
            raise ValueError(f"network weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class TrainReport:
    """What happened during training: losses are mean squared errors of the
    (standardised) outputs; ``val_loss`` is None without a validation set."""

    train_loss: float
    val_loss: float | None
    iterations: int
    best_iteration: int
    seconds: float
    history: tuple = field(default=(), repr=False)


def _shapes(n_in: int, hidden: tuple[int, ...], n_out: int) -> list[tuple[int, int]]:
    widths = [n_in, *map(int, hidden), n_out]
    return list(zip(widths[:-1], widths[1:]))


def _init(shapes, rng) -> np.ndarray:
    # Glorot-uniform weights, zero biases, flattened into one parameter vector.
    parts = []
    for n_in, n_out in shapes:
        limit = np.sqrt(6.0 / (n_in + n_out))
        parts.append(rng.uniform(-limit, limit, size=(n_in, n_out)).ravel())
        parts.append(np.zeros(n_out))
    return np.concatenate(parts)


def _unpack(theta: np.ndarray, shapes) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ws, bs, i = [], [], 0
    for n_in, n_out in shapes:
        ws.append(theta[i:i + n_in * n_out].reshape(n_in, n_out))
        i += n_in * n_out
        bs.append(theta[i:i + n_out])
        i += n_out
    return ws, bs


def _loss_and_grad(theta, shapes, x, y, activation, weight_decay, want_grad=True):
    """Mean squared error / 2 plus the L2 penalty, and its gradient (backprop)."""
    ws, bs = _unpack(theta, shapes)
    n = x.shape[0]
    hs = [x]
    pre = []
    h = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        a = h @ w + b
        if i < len(ws) - 1:
            pre.append(a)
            h = np.tanh(a) if activation == "tanh" else a / (1.0 + np.exp(-a))
        else:
            h = a
        hs.append(h)
    resid = h - y
    scale = 1.0 / (n * y.shape[1])
    loss = 0.5 * scale * float(np.sum(resid * resid)) + 0.5 * weight_decay * sum(float(np.sum(w * w)) for w in ws)
    if not want_grad:
        return loss, None
    grads_w, grads_b = [None] * len(ws), [None] * len(ws)
    delta = resid * scale
    for i in range(len(ws) - 1, -1, -1):
        grads_w[i] = hs[i].T @ delta + weight_decay * ws[i]
        grads_b[i] = delta.sum(axis=0)
        if i:
            back = delta @ ws[i].T
            if activation == "tanh":
                delta = back * _tanh_grad(hs[i])
            else:
                s = 1.0 / (1.0 + np.exp(-pre[i - 1]))
                delta = back * (s * (1.0 + pre[i - 1] * (1.0 - s)))
    grad = np.concatenate([g for pair in zip(grads_w, grads_b) for g in (pair[0].ravel(), pair[1])])
    return loss, grad


def _mse(theta, shapes, x, y, activation) -> float:
    return 2.0 * _loss_and_grad(theta, shapes, x, y, activation, 0.0, want_grad=False)[0]


def train_mlp(x: np.ndarray, y: np.ndarray, config: TrainConfig = TrainConfig(),
              x_val: np.ndarray | None = None, y_val: np.ndarray | None = None) -> tuple[MLP, TrainReport]:
    """Fit an MLP mapping ``x`` (n, n_in) to ``y`` (n, n_out).

    Inputs should be scaled to O(1) (the emulators use [-1, 1]) and outputs
    standardised.  With a validation set the returned weights are those of
    the lowest validation loss (early stopping).  Returns (network, report).
    """
    x = np.ascontiguousarray(x, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"train_mlp: x must be (n, n_in) and y (n, n_out) with the same n, got {x.shape}, {y.shape}")
    if x.shape[0] < 1:
        raise ValueError("train_mlp: no training samples")
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if has_val:
        x_val = np.ascontiguousarray(x_val, dtype=float)
        y_val = np.ascontiguousarray(y_val, dtype=float)
    shapes = _shapes(x.shape[1], config.hidden, y.shape[1])
    rng = np.random.default_rng(config.seed)
    theta = _init(shapes, rng)
    t0 = time.perf_counter()
    if config.optimizer == "lbfgs":
        theta, iterations, history = _fit_lbfgs(theta, shapes, x, y, x_val, y_val, config, has_val)
    else:
        theta, iterations, history = _fit_adam(theta, shapes, x, y, x_val, y_val, config, has_val, rng)
    best_iteration = int(min(history, key=lambda h: h[1])[0]) if history else iterations
    seconds = time.perf_counter() - t0
    ws, bs = _unpack(theta, shapes)
    net = MLP(tuple(w.copy() for w in ws), tuple(b.copy() for b in bs), config.activation)
    report = TrainReport(train_loss=_mse(theta, shapes, x, y, config.activation),
                         val_loss=_mse(theta, shapes, x_val, y_val, config.activation) if has_val else None,
                         iterations=iterations, best_iteration=best_iteration, seconds=seconds,
                         history=tuple(history))
    return net, report


class _EarlyStop(Exception):
    pass


def _fit_lbfgs(theta, shapes, x, y, x_val, y_val, config, has_val):
    from scipy.optimize import minimize

    best = {"theta": theta.copy(), "val": np.inf, "since": 0, "it": 0}
    history = []

    def callback(intermediate):
        best["it"] += 1
        if not has_val or best["it"] % config.check_every:
            return
        val = _mse(intermediate, shapes, x_val, y_val, config.activation)
        history.append((best["it"], val))
        if val < best["val"]:
            best.update(theta=intermediate.copy(), val=val, since=0)
        else:
            best["since"] += 1
            if best["since"] >= config.patience:
                raise _EarlyStop

    fun = lambda t: _loss_and_grad(t, shapes, x, y, config.activation, config.weight_decay)  # noqa: E731
    try:
        res = minimize(fun, theta, jac=True, method="L-BFGS-B", callback=callback,
                       options={"maxiter": config.epochs, "maxcor": 30, "ftol": 0.0, "gtol": 1e-12})
        final = res.x
    except _EarlyStop:
        final = best["theta"]
    if has_val:
        val = _mse(final, shapes, x_val, y_val, config.activation)
        if val > best["val"]:
            final = best["theta"]
    return final, best["it"], history


def _fit_adam(theta, shapes, x, y, x_val, y_val, config, has_val, rng):
    n = x.shape[0]
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    best_theta, best_val, since = theta.copy(), np.inf, 0
    history = []
    step = 0
    batch = min(config.batch_size, n)
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        frac = epoch / config.epochs
        lr = config.learning_rate * (0.1 if frac > 0.6 else 1.0) * (0.1 if frac > 0.85 else 1.0)
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            _, g = _loss_and_grad(theta, shapes, x[idx], y[idx], config.activation, config.weight_decay)
            step += 1
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            theta = theta - lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
        if has_val and epoch % config.check_every == 0:
            val = _mse(theta, shapes, x_val, y_val, config.activation)
            history.append((epoch, val))
            if val < best_val:
                best_theta, best_val, since = theta.copy(), val, 0
            else:
                since += 1
                if since >= config.patience:
                    break
    if has_val and _mse(theta, shapes, x_val, y_val, config.activation) > best_val:
        theta = best_theta
    return theta, epoch, history
