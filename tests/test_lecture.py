"""The lecture's specs against the lecture's own formulas, written out by hand in NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bpcli
from bpcli.train.data import pulses

SPECS = Path(__file__).resolve().parent.parent / "specs"


# ---------------------------------------------------------------- (a) the 3-layer lecture CNN
def toeplitz(kernel, n):
    """The n x n banded Toeplitz matrix of a 1-channel conv1d with pad same:
    row t holds the kernel starting lo = (k-1)//2 places left of t, T[t, j] = kernel[j - t + lo]."""
    k = len(kernel)
    lo = (k - 1) // 2
    T = np.zeros((n, n))
    for t in range(n):
        for j in range(n):
            if 0 <= j - t + lo < k:
                T[t, j] = kernel[j - t + lo]
    return T


def kernel_gradient(dT, k):
    """dL/dkernel[m] = sum of dL/dT[t, j] over the band entries that hold kernel[m], j - t + lo = m."""
    lo = (k - 1) // 2
    n = dT.shape[0]
    return np.array([sum(dT[t, t + m - lo] for t in range(n) if 0 <= t + m - lo < n) for m in range(k)])


def lecture_loss(W1, W2, W3, X, y):
    """L = 1/N sum_i ln(1 + exp(-y_i max(0, W3 max(0, W2 max(0, W1 x_i)))))."""
    total = 0.0
    for x_i, y_i in zip(X, y):
        f = max(0.0, (W3 @ np.maximum(0, W2 @ np.maximum(0, W1 @ x_i))).item())  # W3: one row
        total += np.log(1 + np.exp(-y_i * f))
    return total / len(X)


def lecture_backprop(W1, W2, W3, X, y):
    """Forward then backward, local derivative times upstream gradient, one line per step (rows = samples)."""
    N = len(X)
    z1 = X @ W1.T
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2.T
    h2 = np.maximum(z2, 0)
    z3 = h2 @ W3.T                                # (N, 1)
    f = np.maximum(z3, 0)
    L = np.mean(np.log(1 + np.exp(-y * f)))
    # d/df ln(1 + e^{-y f}) = -y e^{-y f} / (1 + e^{-y f})
    df = -y * np.exp(-y * f) / (1 + np.exp(-y * f)) / N
    dz3 = df * (z3 > 0)
    dW3 = dz3.T @ h2
    dh2 = dz3 @ W3
    dz2 = dh2 * (z2 > 0)
    dW2 = dz2.T @ h1
    dh1 = dz2 @ W2
    dz1 = dh1 * (z1 > 0)
    dW1 = dz1.T @ X
    return L, dW1, dW2, dW3, z3


@pytest.fixture(scope="module")
def lecture_setup():
    model = bpcli.build(SPECS / "lecture_cnn.yaml", dtype="float64")
    data = pulses(24, (64,), seed=3)
    rng = np.random.default_rng(12)
    # W3 random with both signs, shifted down a little since h2 >= 0: the final ReLU is then
    # active for some samples (9 of 24) and not for the others, so neither branch is trivial
    model.params["layers.4.weight"][...] = rng.standard_normal((1, 64)) - 0.2
    return model, data.X, data.y


def test_lecture_cnn_parameters_are_two_kernels_and_a_full_matrix(lecture_setup):
    model, _, _ = lecture_setup
    assert {k: v.shape for k, v in model.params.items()} == {
        "layers.0.weight": (1, 1, 5), "layers.2.weight": (1, 1, 5), "layers.4.weight": (1, 64)}
    assert all(v.dtype == np.float64 for v in model.params.values())


def test_lecture_formula_matches_toeplitz_matrices(lecture_setup):
    model, X, labels = lecture_setup
    p = model.params
    W1, W2, W3 = toeplitz(p["layers.0.weight"][0, 0], 64), toeplitz(p["layers.2.weight"][0, 0], 64), \
        p["layers.4.weight"]
    y = np.where(labels > 0, 1.0, -1.0)               # labels 0/1 are read as -1/+1

    L_hand, dW1, dW2, dW3, z3 = lecture_backprop(W1, W2, W3, X, y[:, None])
    assert (z3 > 0).sum() >= 5 and (z3 < 0).sum() >= 5  # both sides of the final ReLU are exercised

    # the network is the formula: output = max(0, W3 max(0, W2 max(0, W1 x)))
    np.testing.assert_allclose(model.forward(X), np.maximum(z3, 0), rtol=1e-12, atol=1e-14)
    L, grads = model.loss_and_grad(X, labels)
    np.testing.assert_allclose(L, lecture_loss(W1, W2, W3, X, y), rtol=1e-12)
    np.testing.assert_allclose(L, L_hand, rtol=1e-12)

    np.testing.assert_allclose(grads["layers.4.weight"], dW3, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["layers.2.weight"][0, 0], kernel_gradient(dW2, 5), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["layers.0.weight"][0, 0], kernel_gradient(dW1, 5), rtol=1e-10, atol=1e-14)
    assert np.abs(grads["layers.0.weight"]).max() > 1e-4  # not trivially zero


def test_lecture_gradient_matches_central_differences_of_the_hand_formula(lecture_setup):
    # the lecture's numerical gradient, entry by entry, on the formula itself (no bpcli in it)
    model, X, labels = lecture_setup
    p = {k: v.copy() for k, v in model.params.items()}
    y = np.where(labels > 0, 1.0, -1.0)
    _, grads = model.loss_and_grad(X, labels)

    def L_of(k1, k2, W3):
        return lecture_loss(toeplitz(k1, 64), toeplitz(k2, 64), W3, X, y)

    h = 1e-6
    k1, k2, W3 = p["layers.0.weight"][0, 0], p["layers.2.weight"][0, 0], p["layers.4.weight"]
    for name, arr, wrap in [("layers.0.weight", k1, lambda a: L_of(a, k2, W3)),
                            ("layers.2.weight", k2, lambda a: L_of(k1, a, W3)),
                            ("layers.4.weight", W3, lambda a: L_of(k1, k2, a))]:
        numeric = np.zeros_like(arr)
        for j in np.ndindex(arr.shape):
            e = np.zeros_like(arr)
            e[j] = h
            numeric[j] = (wrap(arr + e) - wrap(arr - e)) / (2 * h)
        np.testing.assert_allclose(grads[name].reshape(arr.shape), numeric, rtol=1e-6, atol=1e-9,
                                   err_msg=name)


# ---------------------------------------------------------------- (b) L = ||W2 ReLU(W1 X)||^2
def test_two_layer_sumsq_matches_the_lectures_numpy_backprop():
    model = bpcli.build(SPECS / "two_layer_sumsq.yaml")
    X = np.random.default_rng(13).standard_normal((10, 16))
    # bpcli stores dense weights (units, in): the lecture's W is the transpose
    W_1 = model.params["layers.0.weight"].T           # (16, 32)
    W_2 = model.params["layers.2.weight"].T           # (32, 4)

    # the lecture's code, verbatim (its dz1[z1 < 0] reads z_1)
    # forward prop
    z_1 = np.dot(X, W_1)
    h_1 = np.maximum(z_1, 0)
    y_hat = np.dot(h_1, W_2)
    L = np.sum(y_hat**2)
    # backward prop
    dy_hat = 2.0*y_hat
    dW2 = h_1.T.dot(dy_hat)
    dh1 = dy_hat.dot(W_2.T)
    dz1 = dh1.copy()
    dz1[z_1 < 0] = 0
    dW1 = X.T.dot(dz1)

    loss, grads = model.loss_and_grad(X)
    np.testing.assert_allclose(loss, L, rtol=1e-13)
    np.testing.assert_allclose(grads["layers.2.weight"], dW2.T, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["layers.0.weight"], dW1.T, rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- (c) linear least squares
def test_linear_regression_matches_analytic_gradient():
    # L = 1/N sum_i (w^T x_i - y_i)^2,  grad L(w) = 2/N X^T (X w - y)
    model = bpcli.build(SPECS / "linear_regression.yaml")
    rng = np.random.default_rng(14)
    N = 40
    X = rng.standard_normal((N, 8))
    y = X @ rng.standard_normal(8) + 0.1 * rng.standard_normal(N)
    w = model.params["layers.0.weight"].ravel()        # weight (1, 8): w^T as a row
    L, grads = model.loss_and_grad(X, y)
    np.testing.assert_allclose(L, np.mean((X @ w - y) ** 2), rtol=1e-13)
    np.testing.assert_allclose(grads["layers.0.weight"].ravel(), 2 / N * X.T @ (X @ w - y), rtol=1e-12)
    # at the least-squares solution the gradient vanishes
    model.params["layers.0.weight"][0] = np.linalg.lstsq(X, y, rcond=None)[0]
    _, grads = model.loss_and_grad(X, y)
    np.testing.assert_allclose(grads["layers.0.weight"], 0, atol=1e-13)


# ---------------------------------------------------------------- (d) forward mode = <grad, v>
def test_lecture_directional_derivative_equals_reverse_mode_gradient_along_v(lecture_setup):
    # dL/dW along v, from one forward-tangent pass, == <grad L, v> from one backward pass
    # == (L(W + h v) - L(W - h v)) / 2h, the lecture's numerical gradient along v
    model, X, labels = lecture_setup
    rng = np.random.default_rng(15)
    v = {k: rng.standard_normal(w.shape) for k, w in model.params.items()}
    L, grads = model.loss_and_grad(X, labels)
    value, dL_v = model.directional_derivative(X, labels, v)
    inner = sum(float(np.sum(grads[k] * v[k])) for k in v)
    assert value == L
    assert abs(dL_v - inner) <= 1e-10 * max(1.0, abs(inner))
    assert abs(inner) > 1e-3

    h = 1e-6
    base = {k: w.copy() for k, w in model.params.items()}
    try:
        for k in v:
            model.params[k][...] = base[k] + h * v[k]
        up = model.loss(X, labels)
        for k in v:
            model.params[k][...] = base[k] - h * v[k]
        down = model.loss(X, labels)
    finally:
        for k in v:
            model.params[k][...] = base[k]
    np.testing.assert_allclose(dL_v, (up - down) / (2 * h), rtol=1e-6)
