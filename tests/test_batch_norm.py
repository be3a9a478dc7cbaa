"""batch_norm and batch_norm_affine, the primitives of batchnorm's training program, against
torch.nn.functional.batch_norm(training=True): y, dx, dweight and dbias for an arbitrary upstream
gradient, and the running statistics after a step, in float64 (to 1e-12 for y, 1e-10 for the
gradients) and float32 (to 1e-5, every number computed in float32), on (N, C), (N, C, L) and
(N, C, H, W), with and without the affine scale and shift. The float32 cases also run with a
cache of a few hundred bytes, so that the batch goes in slices of one sample
(``backend.batch_slices``): the slices change where sums are split, never the answer.
"""

from __future__ import annotations

import numpy as np
import pytest

import bpcli
from bpcli.engine import PRIMITIVES, backend
from bpcli.engine.program import Builder



@pytest.fixture
def torch():
    """PyTorch, the reference: only the tests that compare with it ask for it (and skip without it)."""
    return pytest.importorskip("torch")

SHAPES = {"features": (64, 5), "channels-length": (8, 3, 33), "images": (6, 4, 9, 11)}
TOLERANCE = {np.float64: (1e-12, 1e-10), np.float32: (1e-5, 1e-5)}  # (y, gradients)


def draw(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)       # mean far from 0
    g = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    return x, g, rng.uniform(0.5, 2, c).astype(dtype), rng.standard_normal(c).astype(dtype)


def close(actual, expected, rtol):
    """Each number to rtol of the reference's largest magnitude (a gradient's entries near 0)."""
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.fixture(params=["whole", "slices"])
def slices(request, monkeypatch):
    if request.param == "slices":
        monkeypatch.setattr(backend, "CACHE_BYTES", 256)
    return request.param


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_batch_norm_forward_and_gradients_match_torch(shape, dtype, affine, slices, torch):
    x, g, w, b = draw(shape, dtype, seed=len(shape))
    eps = 1e-5
    x_t = torch.tensor(x, requires_grad=True)
    w_t, b_t = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    y_t = torch.nn.functional.batch_norm(x_t, None, None, w_t if affine else None,
                                         b_t if affine else None, training=True, eps=eps)
    y_t.backward(torch.tensor(g))
    prim = PRIMITIVES["batch_norm_affine" if affine else "batch_norm"]
    args = (x, w, b) if affine else (x,)
    y, moments = prim.impl(*args, eps=eps)
    y_rtol, g_rtol = TOLERANCE[dtype]
    close(y, y_t, y_rtol)
    assert moments.dtype == dtype and moments.shape == (2, shape[1])
    axes = (0,) + tuple(range(2, len(shape)))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(moments, [x64.mean(axis=axes), x64.var(axis=axes)], rtol=y_rtol)
    grads = [vjp(g, y, *args, eps=eps, saved=moments) for vjp in prim.vjp]
    close(grads[0], x_t.grad, g_rtol)
    if affine:
        close(grads[1], w_t.grad, g_rtol)
        close(grads[2], b_t.grad, g_rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_a_training_step_moves_the_running_statistics_as_torch(shape, dtype, slices, torch):
    x, _, w, b = draw(shape, dtype, seed=7)
    spec = {"name": "t", "input": list(shape[1:]), "dtype": dtype, "seed": 0,
            "layers": [{"batchnorm": {"momentum": 0.3}}], "loss": "sum_squares"}
    model = bpcli.build(spec)
    model.params["layers.0.weight"][...] = w
    model.params["layers.0.bias"][...] = b
    bn = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        shape[1], momentum=0.3, dtype=getattr(torch, dtype))
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(w))
        bn.bias.copy_(torch.tensor(b))
    x_t = torch.tensor(x, requires_grad=True)
    (bn(x_t) ** 2).sum().backward()
    s = model.step(x, None, train=True, masks={})
    model.update_buffers(s.batch_stats, len(x))
    rtol = TOLERANCE[np.dtype(dtype).type][1]
    close(model.buffers["layers.0.running_mean"], bn.running_mean, rtol)
    close(model.buffers["layers.0.running_var"], bn.running_var, rtol)
    close(s.grads["layers.0.weight"], bn.weight.grad, rtol)
    close(s.grads["layers.0.bias"], bn.bias.grad, rtol)


def test_the_training_program_has_one_batch_norm_equation_that_hands_out_its_moments():
    spec = {"name": "t", "input": [3, 8, 8], "dtype": "float32", "seed": 0,
            "layers": [{"conv2d": {"channels": 4, "kernel": 3}}, "batchnorm", "relu",
                       {"dense": {"units": 2}}], "loss": "mse"}
    prog = bpcli.build(spec).train_program
    layer = [e for e in prog.eqns if e.origin.layer() == 1]
    assert [e.prim.name for e in layer] == ["batch_norm_affine"]
    assert prog.outputs["layers.1.batch_moments"] is layer[0].saved
    assert f"saves v{layer[0].saved.id} = batch_norm_affine" in prog.pretty()


def test_builder_saved_refuses_a_value_whose_equation_saves_none():
    b = Builder()
    x = b.input("x", (None, 3))
    with pytest.raises(ValueError, match="saves"):
        b.saved(x * 2.0)
