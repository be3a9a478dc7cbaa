"""Batch normalization as primitives: the batch's statistics, the normalization and its closed-form
derivatives in one rule, rather than a dozen small ones (mean, subtract, square, mean, power, ...).

For x of shape (N, C, *S), a channel's m = N·prod(S) values (its samples and positions) have the
batch mean μ and biased variance σ², and x̂ = (x − μ) / sqrt(σ² + eps):

- ``batch_norm(x; eps)``                      y = x̂;
- ``batch_norm_affine(x, weight, bias; eps)`` y = x̂ · weight + bias, weight and bias (C,).

Each saves the moments (2, C), μ over σ², in x's dtype: its VJPs read them, and the training
program hands them out for the running statistics, so nothing reads x a second time for them.
With g' = g · weight per channel and sums over a channel's m values (PyTorch's closed form):

    dx      = (1/m) · (σ² + eps)^(-1/2) · (m g' − Σ g' − x̂ · Σ g' x̂)
    dweight = Σ g x̂,   dbias = Σ g

The tangent of x̂ along t is the same projection, (σ² + eps)^(-1/2) (t − mean t − x̂ · mean t x̂):
the operator is symmetric, as the adjoint test of tests/test_primitives.py sees.

Float32 stays float32, but for the per-channel sums: each row of a channel is summed pairwise in
x's dtype, and the rows' sums are added in float64, as PyTorch's CPU kernel accumulates in double
(float32 gradients of a smooth 1×128×128 network agree with float64 to about 1e-6 so; with ReLU
and max pooling a sign or a winner that flips between the two precisions moves some by up to 1%,
PyTorch's too where its flips fall elsewhere). Every pass walks
the batch in slices of about 2 MiB (``backend.batch_slices`` with ``threads.PIECE_BYTES``), on the
engine's workers (``bpcli.engine.threads``): one where each slice's mean and centred sum of
squares are made (and combined by Chan, Golub and LeVeque's update), one for
y = (x − μ) · scale + bias; the backward makes its sums and dx the same way.
So the only arrays as large as x are y (and dx): the centred values live one slice at a time.
Each slice's sums are added to the others' in slice order, on the calling thread, and the slices
are fixed by the shapes alone: the bits are the same at every thread count.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from . import backend, threads
from .rules import Notation, defprim


def _rows(x):
    """x (N, C, *S) as (N, C, prod(S)), a view: a channel's values are its rows of each sample."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _slices(x):
    """The batch slices whose centred values (one x-sized temporary) take about
    ``threads.PIECE_BYTES``: fixed by the shapes, and enough of them for every worker on
    imaging-size batches."""
    return backend.batch_slices(x, math.prod(x.shape[1:]) * x.dtype.itemsize,
                                size=threads.PIECE_BYTES)


def _inv_std(var, eps):
    return (var + eps) ** -0.5


def _channel_sums(rows):
    """Σ over a slice's rows (n, C, P) per channel, (C,) in float64: each row pairwise in its own
    dtype (NumPy sums a contiguous row pairwise; summed over several axes at once it may not),
    then the n rows added in float64, as PyTorch's CPU batch norm accumulates in double."""
    return rows.sum(axis=2).sum(axis=0, dtype=np.float64)


def _centred_sums(x3, mean, b, weights=None):
    """Σ (x − μ)² over a slice b's rows per channel (μ: ``mean``, (C,) in x's dtype), or
    Σ weights · (x − μ) when weights are given."""
    out = np.subtract(x3[b], mean[:, None])
    np.multiply(out, weights[b] if weights is not None else out, out=out)
    return _channel_sums(out)


def _slice_moments(x3, b):
    """(count, μ, Σ (x − μ)²) per channel of one slice's rows, μ and the sum in float64: the
    slice is read twice while it is in cache."""
    xs = x3[b]
    count = xs.shape[0] * xs.shape[2]
    mean = _channel_sums(xs) / count
    return count, mean, _centred_sums(x3, mean.astype(xs.dtype), b)


def _combined(parts):
    """The moments of the slices together, (μ, Σ (x − μ)²), from each slice's: Chan, Golub and
    LeVeque's pairwise update (1979), applied in slice order, in float64."""
    n, mean, m2 = parts[0]
    for nb, mb, m2b in parts[1:]:
        total = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta * delta * (n * nb / total)
        n = total
    return mean, m2


def _moments(x):
    """(2, C): μ and the biased σ² of each channel, in x's dtype, from one pass over x: each
    slice's mean and centred sum of squares (safe in float32 whatever the mean), combined."""
    x3 = _rows(x)
    mean, m2 = _combined(threads.run(lambda b: _slice_moments(x3, b), _slices(x)))
    moments = np.empty((2, x.shape[1]), dtype=x.dtype, like=x)
    moments[0], moments[1] = mean, m2 / (x3.shape[0] * x3.shape[2])
    return moments


def _per_channel(v, ndim):
    return v.reshape((-1,) + (1,) * (ndim - 2))


def _affine(x, weight, bias, *, eps):
    """(y, moments): y = (x − μ) · scale + bias with scale = weight (σ² + eps)^(-1/2), written
    slice by slice into one new array."""
    moments = _moments(x)
    mean, scale = moments[0][:, None], _inv_std(moments[1], eps)
    if weight is not None:
        scale = scale * weight
    scale = scale[:, None]
    y = np.empty(x.shape, dtype=x.dtype, like=x)  # C order, so that its rows are views
    x3, y3 = _rows(x), _rows(y)

    def one(b):
        ys = y3[b]
        np.subtract(x3[b], mean, out=ys)
        ys *= scale
        if bias is not None:
            ys += bias[:, None]
    threads.run(one, _slices(x))
    return y, moments


def _plain(x, *, eps):
    return _affine(x, None, None, eps=eps)


# The three VJPs of one equation need the same two sums, and the engine calls them one after
# another with the very same g, x and moments: the last sums are kept for those three objects,
# by weak references (nothing stays alive for it); anything else computes them afresh.
_last_sums: tuple = ()


def _weak(a):
    try:
        return weakref.ref(a)
    except TypeError:  # an array type without weak references: no sharing, same numbers
        return None


def _sums(g, x, moments):
    """Σ g and Σ g (x − μ) per channel, over the batch in slices."""
    global _last_sums
    last = _last_sums
    if last and all(r is not None and r() is a for r, a in zip(last[0], (g, x, moments))):
        return last[1]
    sums = _slice_sums(g, x, moments)
    _last_sums = (tuple(_weak(a) for a in (g, x, moments)), sums)
    return sums


def _slice_sums(g, x, moments):
    g3, x3, mean = _rows(g), _rows(x), moments[0]
    sums = threads.sum_in_order(threads.run(
        lambda b: (_channel_sums(g3[b]), _centred_sums(x3, mean, b, weights=g3)), _slices(x)))
    return tuple(s.astype(g.dtype) for s in sums)


def _dx(g, x, weight, moments, eps):
    """dx = scale · (g − Σg/m − (x − μ) · Σ g (x − μ) / (m (σ² + eps))), scale = weight (σ² +
    eps)^(-1/2): the closed form with x̂ = (x − μ)(σ² + eps)^(-1/2) written out."""
    g3, x3 = _rows(g), _rows(x)
    m = x3.shape[0] * x3.shape[2]
    inv_std = _inv_std(moments[1], eps)
    sum_g, sum_gc = _sums(g, x, moments)
    scale = inv_std if weight is None else inv_std * weight
    mean, k = moments[0][:, None], (sum_gc * inv_std * inv_std / m)[:, None]
    shift, scale = (sum_g / m)[:, None], scale[:, None]
    dx = np.empty(x.shape, dtype=g.dtype, like=x)
    dx3 = _rows(dx)

    def one(b):
        d = dx3[b]
        np.subtract(x3[b], mean, out=d)
        d *= k
        np.subtract(g3[b], d, out=d)
        d -= shift
        d *= scale
    threads.run(one, _slices(x))
    return dx


def _dweight(g, x, moments, eps):
    """Σ g x̂ per channel."""
    return _sums(g, x, moments)[1] * _inv_std(moments[1], eps)


def _xhat(x, eps):
    """x̂ and the moments, for the JVPs (forward mode is not timed: plain whole-batch NumPy)."""
    moments = _moments(x)
    shape = _per_channel(moments[0], x.ndim).shape
    return (x - moments[0].reshape(shape)) * _inv_std(moments[1], eps).reshape(shape), moments


def _channel_mean(v):
    axes = (0,) + tuple(range(2, v.ndim))
    return v.mean(axis=axes, keepdims=True)


def _dxhat(t, x, eps):
    """The tangent of x̂ along t: (σ² + eps)^(-1/2) (t − mean t − x̂ · mean t x̂) per channel."""
    xhat, moments = _xhat(x, eps)
    inv_std = _per_channel(_inv_std(moments[1], eps), x.ndim)
    return inv_std * (t - _channel_mean(t) - xhat * _channel_mean(t * xhat))


def _shape(sx, *ss, eps):
    if len(sx) < 2:
        raise ValueError(f"batch norm needs (N, C, ...), got shape {tuple(sx)}")
    c = sx[1]
    for s in ss:
        if tuple(s) != (c,):
            raise ValueError(f"batch norm of {tuple(sx)}: weight and bias must be ({c},), got "
                             f"{tuple(s)}")
    return tuple(sx)


def _flops(out, *ins, eps):
    """Per element: the sum for μ, x − μ, its square, their sum, the scale (and the shift)."""
    return (5 + (len(ins) > 1)) * int(np.prod(out[1:], dtype=np.int64))


XHAT = "({0} − μ) / σ"
DX = "(σ² + eps)^(-1/2) × ({d}' − mean {d}' − x̂ mean({d}' x̂))"

defprim("batch_norm", _plain, _shape,
        vjp=[lambda g, y, x, *, eps, saved: _dx(g, x, None, saved, eps)],
        jvp=[lambda t, y, x, *, eps: _dxhat(t, x, eps)],
        notation=Notation(XHAT, (DX.replace("{d}'", "{d}"),)), flops=_flops, branch=None,
        saves=True)
defprim("batch_norm_affine", _affine, _shape,
        vjp=[lambda g, y, x, w, b, *, eps, saved: _dx(g, x, w, saved, eps),
             lambda g, y, x, w, b, *, eps, saved: _dweight(g, x, saved, eps),
             lambda g, y, x, w, b, *, eps, saved: _sums(g, x, saved)[0].copy()],
        jvp=[lambda t, y, x, w, b, *, eps: _dxhat(t, x, eps) * _per_channel(w, x.ndim),
             lambda t, y, x, w, b, *, eps: _xhat(x, eps)[0] * _per_channel(t, x.ndim),
             lambda t, y, x, w, b, *, eps: np.broadcast_to(_per_channel(t, x.ndim), y.shape)],
        notation=Notation(XHAT + " × {1} + {2}",
                          (DX.replace("{d}'", "({d} × {1})"), "Σ {d} × x̂", "Σ {d}")),
        flops=_flops, branch=None, saves=True)
