"""The lecture's view of a convolution: y = T(w) x with T(w) an explicit banded Toeplitz matrix.

``impl: toeplitz`` builds T(w) from the kernel inside the graph (the ``toeplitz``
primitive) and multiplies by it; ``impl: fast`` runs strided windows times one
matrix product. Same weights, same numbers: forward and every gradient agree to
rounding in float64, in 1-D and 2-D, with stride, dilation and padding.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpcli
from bpcli.engine import PRIMITIVES, backward, evaluate

TOL = 1e-12
toeplitz = PRIMITIVES["toeplitz"].impl


def spec(sample, layer, fields):
    return {"name": "t", "input": list(sample), "dtype": "float64", "layers": [{layer: fields}],
            "loss": "mse"}


def loss_grads(model, X, Y):
    """L = mean((f - Y)^2), and dL/d(every parameter) and dL/dX by one backward pass."""
    env = evaluate(model.program, dict(model.params, X=X, y=Y))
    grads = backward(model.program, env, "loss", list(model.params) + ["X"])
    return float(env[model.program.outputs["loss"].id]), grads


GEOMETRIES = [
    # (id, layer, sample shape, fields)
    ("1d-same", "conv1d", [2, 9], {"channels": 3, "kernel": 3, "pad": "same"}),
    ("1d-even-kernel-same", "conv1d", [8], {"channels": 2, "kernel": 4, "pad": "same"}),
    ("1d-stride-dilation-pad", "conv1d", [2, 13],
     {"channels": 2, "kernel": 3, "stride": 2, "dilation": 3, "pad": 2}),
    ("1d-valid-nobias", "conv1d", [3, 7], {"channels": 1, "kernel": 5, "bias": False}),
    ("2d-same", "conv2d", [2, 5, 6], {"channels": 3, "kernel": 3, "pad": "same"}),
    ("2d-pairs", "conv2d", [2, 8, 9],
     {"channels": 2, "kernel": [3, 2], "stride": [2, 1], "dilation": [1, 3], "pad": [2, 1]}),
    ("2d-hw-input-even-same", "conv2d", [6, 5], {"channels": 2, "kernel": [2, 4], "pad": "same"}),
    ("2d-strided-valid", "conv2d", [1, 9, 9], {"channels": 2, "kernel": 3, "stride": 3, "bias": False}),
]


@pytest.mark.parametrize("layer,sample,fields", [g[1:] for g in GEOMETRIES],
                         ids=[g[0] for g in GEOMETRIES])
def test_toeplitz_and_fast_convolutions_agree_to_rounding(layer, sample, fields):
    fast = bpcli.build(spec(sample, layer, dict(fields, impl="fast")))
    slow = bpcli.build(spec(sample, layer, dict(fields, impl="toeplitz")))
    rng = np.random.default_rng(0)
    for name, w in fast.params.items():
        w[...] = rng.standard_normal(w.shape)
        slow.params[name][...] = w
    X = rng.standard_normal((4, *sample))
    np.testing.assert_allclose(slow.forward(X), fast.forward(X), rtol=TOL, atol=TOL)
    Y = rng.standard_normal((4, *fast.output_shape[1:]))
    L_fast, g_fast = loss_grads(fast, X, Y)
    L_slow, g_slow = loss_grads(slow, X, Y)
    assert L_slow == pytest.approx(L_fast, rel=TOL)
    assert set(g_slow) == set(g_fast)
    for name in g_fast:
        np.testing.assert_allclose(g_slow[name], g_fast[name], rtol=TOL, atol=TOL, err_msg=name)


def test_toeplitz_matrix_of_a_same_padded_kernel_is_the_lectures_banded_matrix():
    # kernel [a, b, c], pad same, length 5: the taps that fall on padding zeros are left out
    a, b, c = 0.5, -2.0, 3.0
    T = np.array([[b, c, 0, 0, 0],
                  [a, b, c, 0, 0],
                  [0, a, b, c, 0],
                  [0, 0, a, b, c],
                  [0, 0, 0, a, b]])
    w = np.array([[[a, b, c]]])
    np.testing.assert_array_equal(toeplitz(w, size=(5,), pad=((1, 1),), stride=(1,), dilation=(1,)), T)


def test_toeplitz_matrix_with_stride_and_dilation_written_out():
    # kernel [a, b], stride 2, dilation 2, no padding, length 7: y_t = a x_2t + b x_2t+2
    a, b = 1.5, -0.25
    M = np.array([[a, 0, b, 0, 0, 0, 0],
                  [0, 0, a, 0, b, 0, 0],
                  [0, 0, 0, 0, a, 0, b]])
    got = toeplitz(np.array([[[a, b]]]), size=(7,), pad=((0, 0),), stride=(2,), dilation=(2,))
    np.testing.assert_array_equal(got, M)


def test_2d_toeplitz_matrix_is_doubly_block_toeplitz():
    # a 2x2 kernel on a 3x3 image, no padding: T is a 2x3 grid of 2x3 blocks, block (i, j) the
    # banded row-convolution by kernel row j - i (zero outside the band): Toeplitz blocks, in a
    # block-Toeplitz pattern
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    T = toeplitz(w, size=(3, 3), pad=((0, 0), (0, 0)), stride=(1, 1), dilation=(1, 1))
    row0 = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]])      # kernel row 0 as a banded matrix
    row1 = np.array([[3.0, 4.0, 0.0], [0.0, 3.0, 4.0]])      # kernel row 1
    zero = np.zeros((2, 3))
    np.testing.assert_array_equal(T, np.block([[row0, row1, zero],
                                               [zero, row0, row1]]))


@st.composite
def conv_geometry(draw):
    nd = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pad = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    size = tuple(max(1, d * (k - 1) + 1 - lo - hi + draw(st.integers(0, 3)))
                 for k, d, (lo, hi) in zip(kernel, dilation, pad))
    channels = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))   # out, in
    return nd, channels, kernel, stride, dilation, pad, size


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(geometry=conv_geometry())
def test_toeplitz_matrix_times_x_is_the_convolution_for_random_geometry(geometry):
    # T(w) x == conv(pad(x), w) for one sample, and T(w)^T g is the convolution's input gradient
    nd, (c_out, c_in), kernel, stride, dilation, pad, size = geometry
    rng = np.random.default_rng(len(kernel) * 100 + sum(size))
    w = rng.standard_normal((c_out, c_in, *kernel))
    x = rng.standard_normal((1, c_in, *size))
    T = toeplitz(w, size=size, pad=pad, stride=stride, dilation=dilation)
    xp = PRIMITIVES["pad"].impl(x, widths=((0, 0), (0, 0)) + pad)
    y, saved = PRIMITIVES["conv"].impl(xp, w, stride=stride, dilation=dilation)
    assert T.shape == (y.size, x.size)
    np.testing.assert_allclose(T @ x.reshape(-1), y.reshape(-1), rtol=TOL, atol=TOL)
    g = rng.standard_normal(y.shape)
    gx = PRIMITIVES["conv"].vjp[0](g, y, xp, w, stride=stride, dilation=dilation, saved=saved)
    gx = PRIMITIVES["pad"].vjp[0](gx, xp, x, widths=((0, 0), (0, 0)) + pad)
    np.testing.assert_allclose(T.T @ g.reshape(-1), gx.reshape(-1), rtol=TOL, atol=TOL)
