"""Primitives that read class labels: gather (a value at the label), lookup (a table row at the
label) and weigh (a constant per class), what per-pixel losses are made of.

Labels arrive as arrays of class indices, floating in the model's dtype (``Model.prepare`` casts
them), with the class axis kept as an axis of length 1: (N, 1, *S) against scores (N, K, *S). An
index outside 0..K-1 (an ignored pixel: bpcli's prepared labels write -1) picks nothing: 0, and
sends no gradient. Labels are data: their derivative is 0 wherever it exists (the functions are
piecewise constant in them), which is what the index rules below return.

- ``gather(x, index; axis)``: ``y = x`` at ``index`` along ``axis``, as ``np.take_along_axis`` and
  PyTorch's ``torch.gather`` (``nll_loss`` is ``-gather(log_softmax(f), y)``); linear in x, its
  VJP puts ``g`` back at the index in zeros (the transpose of picking), no one-hot copy of the
  labels is kept between the passes;
- ``lookup(index; table, axis)``: row ``table[index]`` (a constant, K rows of D numbers) laid
  along ``axis`` in the index's dtype: the class weight of each pixel (D = 1, as PyTorch's
  ``weight.gather(0, target)`` in ``cross_entropy``), or a one-hot indicator (the identity);
- ``weigh(x; weights, axis)``: x times a constant vector laid along ``axis``, in x's dtype (class
  weights on log-probabilities); linear.

Constants are parameters cast to the data's dtype, so a float32 model stays float32.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .rules import Notation, defprim


def _along(axis: int, ndim: int) -> tuple:
    """The shape that lays a vector along ``axis`` of an ndim array."""
    return tuple(-1 if a == axis else 1 for a in range(ndim))


def _valid(index, k: int):
    """(index as int64 with every index outside 0..k-1 read as 0, mask of those inside); a
    floating index is rounded, so a label never drops a class by a rounding error."""
    i = np.rint(index).astype(np.int64)
    inside = (i >= 0) & (i < k)
    return np.where(inside, i, 0), inside


def _gather(x, index, *, axis):
    i, inside = _valid(index, x.shape[axis])
    return np.where(inside, np.take_along_axis(x, i, axis=axis), 0)


def _scatter(g, x, index, *, axis):
    """gather's transpose: g at the index along ``axis`` of zeros shaped as x (an index outside
    matches no class, so its g goes nowhere)."""
    classes = backend.like(np.arange(x.shape[axis]), index).reshape(_along(axis, x.ndim))
    return np.where(np.rint(index) == classes, g, 0).astype(g.dtype, copy=False)


def _gather_shape(sx, si, *, axis):
    if len(sx) != len(si) or si[axis] != 1 or any(
            a is not None and b is not None and a != b
            for k, (a, b) in enumerate(zip(sx, si)) if k != axis):
        raise ValueError(f"gather along axis {axis}: index of shape {tuple(si)} must be x's "
                         f"{tuple(sx)} with 1 along the axis")
    return tuple(si)


defprim("gather", _gather, _gather_shape,
        vjp=[lambda g, y, x, index, *, axis: _scatter(g, x, index, axis=axis),
             lambda g, y, x, index, *, axis: np.zeros_like(index)],
        jvp=[lambda t, y, x, index, *, axis: _gather(t, index, axis=axis),
             lambda t, y, x, index, *, axis: np.zeros_like(y)],
        notation=Notation("{0}[{1}]", ("{d} put at {1}", "0")),
        flops=lambda out, x, index, **p: 0, branch=None)


def _table(table, index):
    """The constant table (K, D) as an array beside ``index``, in its dtype if floating."""
    t = np.asarray(table, dtype=np.float64)
    t = t.reshape(len(t), -1)
    dtype = index.dtype if np.issubdtype(index.dtype, np.floating) else np.float64
    return backend.like(t, index).astype(dtype, copy=False)


def _lookup(index, *, table, axis):
    t = _table(table, index)
    i, inside = _valid(index, t.shape[0])
    rows = np.take(t.T, np.squeeze(i, axis), axis=1)   # (D, *index without axis)
    return np.where(inside, np.moveaxis(rows, 0, axis), 0).astype(t.dtype, copy=False)


def _lookup_shape(si, *, table, axis):
    if si[axis] != 1:
        raise ValueError(f"lookup along axis {axis}: the index {tuple(si)} has 1 there")
    d = int(np.prod(np.shape(table)[1:], dtype=np.int64))
    return tuple(si[:axis]) + (d,) + tuple(si[axis + 1:])


defprim("lookup", _lookup, _lookup_shape,
        vjp=[lambda g, y, index, **p: np.zeros_like(index)],
        jvp=[lambda t, y, index, **p: np.zeros_like(y)],
        notation=Notation("table[{0}]", ("0",)),
        flops=lambda out, index, **p: 0, branch=None)


def _weigh(x, *, weights, axis):
    w = backend.like(np.asarray(weights, dtype=np.float64), x).astype(x.dtype, copy=False)
    return x * w.reshape(_along(axis, x.ndim))


def _weigh_shape(s, *, weights, axis):
    if s[axis] is not None and s[axis] != len(weights):
        raise ValueError(f"weigh along axis {axis}: {len(weights)} weights for {s[axis]} values")
    return tuple(s)


defprim("weigh", _weigh, _weigh_shape,
        vjp=[lambda g, y, x, *, weights, axis: _weigh(g, weights=weights, axis=axis)],
        notation=Notation("{0} × w", ("{d} × w",)),
        flops=lambda out, x, **p: int(np.prod(out[1:], dtype=np.int64)), branch=None,
        linear=True)
