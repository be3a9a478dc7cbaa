"""Primitives: each one's forward, shape rule, reverse rule (VJP), forward rule (JVP) and facts, side by side.

A primitive is a name plus rules, as in JAX. Everything known about one
primitive sits in its ``defprim`` call, so that a reader checks the derivative
against the forward at a glance and a new primitive cannot miss a fact:

- ``impl(*xs, **p)``                -> y, the forward computation on arrays;
- ``shape(*shapes, **p)``           -> y's shape; ``None`` stands for the batch size,
  unknown until data arrives, so every shape is inferred before data is read;
- ``vjp[i](g, y, *xs, **p)``        -> the adjoint of input ``i``: local derivative times
  the upstream gradient ``g`` (the lecture's "local x upstream");
- ``jvp[i](t, y, *xs, **p)``        -> the tangent of ``y`` caused by the tangent ``t``
  of input ``i``; the engine sums these over inputs (the lecture's forward tangent trace).
  A primitive declared ``linear`` (in each input, the others held fixed) gets its JVP
  from its forward, as HIPS autograd's ``def_linear``: ``jvp[i](t) = impl(..., t, ...)``;
- ``notation``: how the lecture writes it, the primal form and one term per input,
  the local derivative times the upstream symbol ``{d}``: ``Notation("ln {0}", "{d} / {0}")``.
  ``{0}, {1}`` are the inputs, ``{y}`` the output, ``{p}`` etc. the params. Traces,
  graph pictures and the printed program read it;
- ``flops(out, *ins, **p)``         -> floating-point operations per sample, from the
  equation's shapes (batch axis first), by the convention documented in
  ``bpcli.explain.layer_table``;
- ``branch(*xs, **p)``              -> which branch each element takes, for primitives
  with a kink (gradcheck reports a tie crossed between W - h and W + h); ``None``
  for smooth ones;
- ``names``: the names under which a scalar function is offered to expressions
  (``bpcli trace``) and ``bpcli.engine.api`` (``ad.log``); ``()`` for none;
- ``batchwise``: whether each sample of the output depends on that sample of the batched
  inputs alone (the others, weights and constants, shared), so that the program runs it on
  batch slices in parallel threads (``bpcli.engine.threads``): ``"all"`` the forward and the
  VJPs of batched inputs, ``"forward"`` the forward only (VJPs that hand out a view of the
  upstream gradient, which slicing would only copy), ``False`` neither; or a function of the
  first input's ``ndim`` and the params that says which (a reduction over the batch axis is
  not batchwise). A batchwise rule that saves a value saves one with the batch axis first.
  Convolutions and batch norm thread their own slices instead.

Conventions at the kinks, all PyTorch's: ``relu``'s derivative at exactly 0
is 0 (the lecture's ``I[h > 0]``), ``leaky_relu``'s is ``slope`` and ``elu``'s
is ``alpha``; ``maximum(x, y)`` sends the gradient to ``x`` where ``x > y`` and
to ``y`` elsewhere, ties included; the reduction ``max`` sends all of it to one
element, the first maximum in C order over the reduced axes (window order, for
pooling), as PyTorch's max_pool does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from . import backend, threads


class Notation(NamedTuple):
    """The lecture's writing of a primitive: ``primal`` form and, per input, its adjoint term."""

    primal: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Primitive:
    name: str
    impl: Callable
    shape: Callable
    vjp: tuple[Callable | None, ...]
    jvp: tuple[Callable | None, ...]
    notation: Notation
    flops: Callable
    branch: Callable | None
    names: tuple[str, ...] = ()
    linear: bool = False
    saves: bool = False  # impl returns (y, saved); the VJPs receive saved=... (e.g. im2col columns)
    batchwise: Callable | str | bool = False  # "all", "forward", False, or f(ndim, **params)

    def split(self, ndim: int, params: dict):
        """How the equation may run on batch slices: ``"all"``, ``"forward"`` or False."""
        b = self.batchwise
        return b(ndim, **params) if callable(b) else b


PRIMITIVES: dict[str, Primitive] = {}
_MISSING = object()


def _linear_jvp(impl, i, saves):
    """def_linear: for y linear in input i, the tangent of y is the map applied to the tangent."""
    def jvp(t, y, *xs, **p):
        r = impl(*xs[:i], t, *xs[i + 1:], **p)
        return r[0] if saves else r
    return jvp


def defprim(name, impl, shape, vjp, jvp=None, *, notation=_MISSING, flops=_MISSING,
            branch=_MISSING, names=(), linear=False, saves=False, batchwise=False):
    """Register primitive ``name``; ``notation``, ``flops`` and ``branch`` (None when smooth)
    must be given. Raises TypeError naming the primitive and the fact that is missing."""
    missing = [k for k, v in (("notation", notation), ("flops", flops), ("branch", branch))
               if v is _MISSING]
    if missing:
        raise TypeError(f"primitive {name!r}: no {', '.join(missing)} in its defprim")
    if linear == (jvp is not None):
        raise TypeError(f"primitive {name!r}: give jvp rules, or linear=True to derive them "
                        f"from the forward, not both")
    if linear:
        jvp = [_linear_jvp(impl, i, saves) for i in range(len(vjp))]
    if len(jvp) != len(vjp) or len(notation[1]) != len(vjp):
        raise TypeError(f"primitive {name!r}: {len(vjp)} VJPs, {len(jvp)} JVPs and "
                        f"{len(notation[1])} notation terms; one of each per input")
    PRIMITIVES[name] = Primitive(name, impl, shape, tuple(vjp), tuple(jvp),
                                 Notation(notation[0], tuple(notation[1])), flops, branch,
                                 tuple(names), linear, saves, batchwise)


def _n(primal, *terms):
    return Notation(primal, terms)


# ---------------------------------------------------------------- helpers
def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def broadcast_shapes(*shapes):
    """``np.broadcast_shapes`` that lets ``None`` (the batch size) stand for any length."""
    ndim = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (ndim - len(s)) + tuple(s) for s in shapes]):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(f"shapes {' and '.join(map(str, shapes))} do not broadcast")
        if None in dims:
            out.append(None if not known else known.pop())
        else:
            out.append(known.pop() if known else 1)
    return tuple(out)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axis)


def _reduced_shape(shape, axis, keepdims):
    axes = _axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _expand(g, shape, axis, keepdims):
    """Undo a reduction's shape change: put back the reduced axes as length 1."""
    if not keepdims:
        g = np.expand_dims(g, _axes(axis, len(shape)))
    return g


def _inverse(perm):
    """The permutation that undoes ``perm``, as a tuple of ints (shape arithmetic, on the host)."""
    return tuple(int(i) for i in np.argsort(perm))


def _count(shape, axis):
    return int(np.prod([shape[a] for a in _axes(axis, len(shape))]))


# FLOPs per sample by layer_table's convention; shapes have the batch axis first
def _per_sample(shape):
    return int(np.prod(shape[1:], dtype=np.int64))


def _each_output(out, *ins, **p):
    return _per_sample(out)  # 1 per output element, however costly the function


def _each_read(out, x, **p):
    return _per_sample(x)  # a reduction: 1 per element it reads


def _free(out, *ins, **p):
    return 0  # layout moves numbers and computes none


# ---------------------------------------------------------------- elementwise, two inputs
_bshape = broadcast_shapes

defprim("add", np.add, _bshape,
        vjp=[lambda g, y, a, b: unbroadcast(g, np.shape(a)),
             lambda g, y, a, b: unbroadcast(g, np.shape(b))],
        jvp=[lambda t, y, a, b: np.broadcast_to(t, y.shape),
             lambda t, y, a, b: np.broadcast_to(t, y.shape)],
        notation=_n("{0} + {1}", "{d}", "{d}"), flops=_each_output, branch=None,
        batchwise="forward")
defprim("sub", np.subtract, _bshape,
        vjp=[lambda g, y, a, b: unbroadcast(g, np.shape(a)),
             lambda g, y, a, b: unbroadcast(-g, np.shape(b))],
        jvp=[lambda t, y, a, b: np.broadcast_to(t, y.shape),
             lambda t, y, a, b: np.broadcast_to(-t, y.shape)],
        notation=_n("{0} − {1}", "{d}", "−{d}"), flops=_each_output, branch=None,
        batchwise="forward")
defprim("mul", np.multiply, _bshape,
        vjp=[lambda g, y, a, b: unbroadcast(g * b, np.shape(a)),
             lambda g, y, a, b: unbroadcast(g * a, np.shape(b))],
        notation=_n("{0} × {1}", "{d} × {1}", "{d} × {0}"), flops=_each_output, branch=None,
        linear=True,
        batchwise="all")
defprim("div", np.divide, _bshape,
        vjp=[lambda g, y, a, b: unbroadcast(g / b, np.shape(a)),
             lambda g, y, a, b: unbroadcast(-g * y / b, np.shape(b))],
        jvp=[lambda t, y, a, b: np.broadcast_to(t / b, y.shape),
             lambda t, y, a, b: -t * y / b],
        notation=_n("{0} / {1}", "{d} / {1}", "−{d} × {0} / {1}²"), flops=_each_output,
        branch=None,
        batchwise="all")
defprim("maximum", np.maximum, _bshape,
        vjp=[lambda g, y, a, b: unbroadcast(g * (a > b), np.shape(a)),
             lambda g, y, a, b: unbroadcast(g * (a <= b), np.shape(b))],
        jvp=[lambda t, y, a, b: t * (a > b),
             lambda t, y, a, b: t * (a <= b)],
        notation=_n("max({0}, {1})", "{d} × I[{0} > {1}]", "{d} × I[{0} ≤ {1}]"),
        flops=_each_output, branch=np.greater,
        names=("max", "maximum"),
        batchwise="all")

defprim("logaddexp", np.logaddexp, _bshape,
        # d/da ln(e^a + e^b) = e^(a - y): the softmax weight of a, finite for any a, b
        vjp=[lambda g, y, a, b: unbroadcast(g * np.exp(a - y), np.shape(a)),
             lambda g, y, a, b: unbroadcast(g * np.exp(b - y), np.shape(b))],
        jvp=[lambda t, y, a, b: t * np.exp(a - y), lambda t, y, a, b: t * np.exp(b - y)],
        notation=_n("ln(exp {0} + exp {1})", "{d} × exp({0} − {y})", "{d} × exp({1} − {y})"),
        flops=_each_output, branch=None, names=("logaddexp",),
        batchwise="all")

# ---------------------------------------------------------------- elementwise, one input
_same = lambda s, **p: tuple(s)  # noqa: E731

defprim("neg", np.negative, _same, vjp=[lambda g, y, x: -g],
        notation=_n("−{0}", "−{d}"), flops=_each_output, branch=None, linear=True,
        batchwise="all")
defprim("exp", np.exp, _same,
        vjp=[lambda g, y, x: g * y], jvp=[lambda t, y, x: t * y],
        notation=_n("exp {0}", "{d} × exp {0}"), flops=_each_output, branch=None,
        names=("exp",),
        batchwise="all")
defprim("log", np.log, _same,
        vjp=[lambda g, y, x: g / x], jvp=[lambda t, y, x: t / x],
        notation=_n("ln {0}", "{d} / {0}"), flops=_each_output, branch=None, names=("ln", "log"),
        batchwise="all")
defprim("sin", np.sin, _same,
        vjp=[lambda g, y, x: g * np.cos(x)], jvp=[lambda t, y, x: t * np.cos(x)],
        notation=_n("sin {0}", "{d} × cos {0}"), flops=_each_output, branch=None, names=("sin",),
        batchwise="all")
defprim("cos", np.cos, _same,
        vjp=[lambda g, y, x: -g * np.sin(x)], jvp=[lambda t, y, x: -t * np.sin(x)],
        notation=_n("cos {0}", "−{d} × sin {0}"), flops=_each_output, branch=None,
        names=("cos",),
        batchwise="all")
defprim("tanh", np.tanh, _same,
        vjp=[lambda g, y, x: g * (1 - y * y)], jvp=[lambda t, y, x: t * (1 - y * y)],
        notation=_n("tanh {0}", "{d} × (1 − {y}²)"), flops=_each_output, branch=None,
        names=("tanh",),
        batchwise="all")
# relu stays a primitive though maximum(x, 0) equals it, kink included: it is the lecture's
# elementary I[h > 0], the op that traces, pictures and gradcheck's kink reports name
def _relu(x, out=None):
    return np.maximum(x, 0, out=out)


def _relu_vjp(g, y, x, out=None):
    return np.multiply(g, x > 0, out=out)


defprim("relu", _relu, _same,
        vjp=[_relu_vjp], jvp=[lambda t, y, x: t * (x > 0)],
        notation=_n("max(0, {0})", "{d} × I[{0} > 0]"), flops=_each_output,
        branch=lambda x: x > 0, names=("relu",),
        batchwise="all")
# a primitive, not maximum(x, slope·x): that composition is wrong for slope > 1, and
# slope·x + (1 - slope)·relu(x) rounds differently from PyTorch's x for x > 0.
# np.where(x > 0, g, slope * g) rather than g * where(x > 0, 1, slope): a float32 g stays float32
defprim("leaky_relu", lambda x, *, slope: np.where(x > 0, x, slope * x), _same,
        vjp=[lambda g, y, x, *, slope: np.where(x > 0, g, slope * g)],
        jvp=[lambda t, y, x, *, slope: np.where(x > 0, t, slope * t)],
        notation=_n("leaky_relu {0}", "{d} × (I[{0} > 0] + {slope} × I[{0} ≤ 0])"),
        flops=_each_output, branch=lambda x, **p: x > 0,
        batchwise="all")
# a primitive, not alpha·(exp(x) - 1) composed: exp(x) - 1 loses all digits near 0, expm1 none.
# minimum(x, 0) keeps expm1 from overflowing in the branch np.where throws away;
# for x <= 0 the derivative alpha·e^x is y + alpha, read off the output
defprim("elu", lambda x, *, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), _same,
        vjp=[lambda g, y, x, *, alpha: np.where(x > 0, g, g * (y + alpha))],
        jvp=[lambda t, y, x, *, alpha: np.where(x > 0, t, t * (y + alpha))],
        notation=_n("elu {0}", "{d} × (I[{0} > 0] + ({y} + {alpha}) × I[{0} ≤ 0])"),
        flops=_each_output, branch=lambda x, **p: x > 0,
        batchwise="all")


def _pow_local(x, p):
    # p·x^(p-1), and 0 for p = 0: x^0 is constant, also at x = 0 where 0·0^(-1) would be nan
    return p * np.power(x, p - 1) if p else np.zeros_like(x)


defprim("pow", lambda x, *, p: np.power(x, p), _same,
        vjp=[lambda g, y, x, *, p: g * _pow_local(x, p)],
        jvp=[lambda t, y, x, *, p: t * _pow_local(x, p)],
        notation=_n("{0}^{p}", "{d} × {p} × {0}^({p} − 1)"), flops=_each_output, branch=None,
        batchwise="all")


# ---------------------------------------------------------------- reductions and softmax
def _not_over_batch(ndim, *, axis=None, keepdims=False):
    """Batchwise ("all") for a reduction or softmax that leaves the batch axis out."""
    return "all" if axis is not None and 0 not in _axes(axis, ndim) else False


def _log_softmax(x, *, axis):
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


defprim("sum", lambda x, *, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
        lambda s, *, axis=None, keepdims=False: _reduced_shape(s, axis, keepdims),
        vjp=[lambda g, y, x, *, axis=None, keepdims=False:
             np.broadcast_to(_expand(g, x.shape, axis, keepdims), x.shape)],
        notation=_n("sum {0}", "{d} copied over the summed axes"), flops=_each_read, branch=None,
        linear=True)


def _mean(x, *, axis=None, keepdims=False):
    # the sum method skips np.mean's Python wrapper (~15 µs a call); float32 stays float32
    return x.sum(axis=axis, keepdims=keepdims) / _count(x.shape, axis)


defprim("mean", _mean,
        lambda s, *, axis=None, keepdims=False: _reduced_shape(s, axis, keepdims),
        vjp=[lambda g, y, x, *, axis=None, keepdims=False:
             np.broadcast_to(_expand(g, x.shape, axis, keepdims) / _count(x.shape, axis), x.shape)],
        notation=_n("mean {0}", "{d} / n copied over the averaged axes"), flops=_each_read,
        branch=None, linear=True)


# max: the forward keeps, for every output, which element won (the first
# maximum in C order over the reduced axes, as np.argmax and PyTorch's max_pool
# choose); the VJP puts the whole upstream gradient on that one element, the
# JVP reads the tangent there. A long reduction moves the reduced axes last and
# flattens them: one argmax, one take/put along the last axis. A pooling window
# (at most 16 elements) is walked position by position on strided views, with
# no copy of the windows, in both passes.
def _reduced_last(x, axes):
    """x as (kept axes..., R): the reduced axes moved last and flattened in C order."""
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    return x.transpose(kept + axes).reshape(tuple(x.shape[a] for a in kept) + (-1,))


def _positions(x, axes):
    """One strided view of x per position of the reduced axes (C order), each of the kept
    axes' shape: writing into them writes x."""
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    view = x.transpose(kept + axes)
    return [view[(Ellipsis,) + spot] for spot in np.ndindex(*view.shape[len(kept):])]


WINDOW = 16  # the most elements a reduction walks position by position


def _max(x, *, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    if _count(x.shape, axis) > WINDOW:
        flat = _reduced_last(x, axes)
        winner = np.argmax(flat, axis=-1)[..., None]
        y = np.take_along_axis(flat, winner, axis=-1)
    else:
        y, winner = _by_cache_slices(_window_max, x, axes)
    return y.reshape(_reduced_shape(x.shape, axis, keepdims)), winner


def _window_max(x, axes):
    """(the maximum over each window, the position of its first maximum as uint8)."""
    windows = _positions(x, axes)
    y = windows[0].copy()
    for w in windows[1:]:
        np.maximum(y, w, out=y)
    # the winner is the first position holding the maximum: scanning back, 0 where
    # position r holds it, else 1 + the winner among the positions after r. Bytes times
    # 0/1 cost a third of a masked copy (np.copyto where=): image pooling 68 -> 17 ms
    winner = np.zeros(y.shape, dtype=np.uint8, like=x)
    for w in reversed(windows[:-1]):
        winner += 1
        winner *= w != y
    return y, winner


def _cache_slices(x, axes):
    """Batch slices for a window reduction that leaves the batch axis be: cache-sized ones
    (backend.batch_slices) when the batch is large, so that its several passes over the windows
    read from cache (image pooling of 32×16×128×128, one thread: 33 -> 12 ms forward, 21 -> 9 ms
    backward). Each sample's result is the same either way."""
    if 0 in axes:
        return [Ellipsis]   # the whole of every operand, whatever its first axis
    return backend.batch_slices(x, math.prod(x.shape[1:]) * x.dtype.itemsize)


def _by_cache_slices(fn, x, axes):
    """fn(x, axes) -> (y, winner), slice by slice (:func:`_cache_slices`) into whole arrays."""
    slices = _cache_slices(x, axes)
    if len(slices) == 1:
        return fn(x, axes)
    outs = None
    for b in slices:
        parts = fn(x[b], axes)
        if outs is None:
            outs = tuple(np.empty((x.shape[0],) + p.shape[1:], dtype=p.dtype, like=p) for p in parts)
        for o, p in zip(outs, parts):
            o[b] = p
    return outs


def _max_vjp(g, y, x, *, axis=None, keepdims=False, saved, out=None):
    axes = _axes(axis, x.ndim)
    if _count(x.shape, axis) > WINDOW:
        kept = tuple(a for a in range(x.ndim) if a not in axes)
        gx = np.zeros(saved.shape[:-1] + (_count(x.shape, axis),), dtype=g.dtype, like=saved)
        np.put_along_axis(gx, saved, np.reshape(g, saved.shape), axis=-1)
        gx = gx.reshape(tuple(x.shape[a] for a in kept + axes))
        return gx.transpose(_inverse(kept + axes))
    # each element of x sits at one position of one window: written once, in x's own layout.
    # g times 0/1 is the fast way; an inf or NaN in g would make inf * 0 = NaN where the losers'
    # gradient is exactly 0, so then the winners get g and the rest zeros, by masks
    g = np.reshape(g, saved.shape)
    # laid out as x is in memory (order K): for pooling windows that tile an image that is the
    # image's own layout, so the windows' VJP that follows is a free reshape, not a copy
    gx = np.empty_like(x, dtype=g.dtype) if out is None else out
    finite = bool(np.isfinite(g).all())
    for b in _cache_slices(x, axes):
        for r, w in enumerate(_positions(gx[b], axes)):
            if finite:
                np.multiply(g[b], saved[b] == r, out=w)
            else:
                w[...] = np.where(saved[b] == r, g[b], 0)
    return gx


def _max_jvp(t, y, x, *, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    argmax = np.argmax(_reduced_last(x, axes), axis=-1)[..., None]
    return np.take_along_axis(_reduced_last(t, axes), argmax, axis=-1).reshape(y.shape)


defprim("max", _max, lambda s, *, axis=None, keepdims=False: _reduced_shape(s, axis, keepdims),
        vjp=[_max_vjp], jvp=[_max_jvp],
        notation=_n("max {0}", "{d} at the first maximum"), flops=_each_read,
        branch=lambda x, axis=None, keepdims=False: x == np.max(x, axis=axis, keepdims=True),
        saves=True,
        batchwise=_not_over_batch)
defprim("log_softmax", _log_softmax, lambda s, *, axis: tuple(s),
        vjp=[lambda g, y, x, *, axis: g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)],
        jvp=[lambda t, y, x, *, axis: t - np.sum(np.exp(y) * t, axis=axis, keepdims=True)],
        notation=_n("log_softmax {0}", "{d} − softmax {0} × Σ {d}"), flops=_each_output,
        branch=None,
        batchwise=_not_over_batch)


# ---------------------------------------------------------------- shape and layout (linear)
def _reshape_shape(s, *, shape):
    # `shape` may hold None for the batch axis and one -1, as numpy's reshape
    if None in shape:
        return tuple(shape)
    known = [n for n in s if n is not None]
    if len(known) != len(s):
        raise ValueError(f"cannot reshape {s} to {shape} without keeping the batch axis")
    return np.empty(s, dtype=np.int8).reshape(shape).shape


def _np_shape(shape):
    return tuple(-1 if n is None else n for n in shape)


defprim("reshape", lambda x, *, shape: x.reshape(_np_shape(shape)), _reshape_shape,
        vjp=[lambda g, y, x, *, shape: g.reshape(x.shape)],
        notation=_n("reshape {0}", "{d} reshaped back"), flops=_free, branch=None, linear=True)
defprim("transpose", lambda x, *, axes: x.transpose(axes),
        lambda s, *, axes: tuple(s[a] for a in axes),
        vjp=[lambda g, y, x, *, axes: g.transpose(sorted(range(len(axes)), key=axes.__getitem__))],
        notation=_n("transpose {0}", "{d} transposed back"), flops=_free, branch=None,
        linear=True)


def _broadcast_to_shape(s, *, shape):
    if None in shape or broadcast_shapes(s, shape) != tuple(shape):
        raise ValueError(f"cannot broadcast {tuple(s)} to {tuple(shape)}")
    return tuple(shape)


defprim("broadcast_to", lambda x, *, shape: np.broadcast_to(x, shape), _broadcast_to_shape,
        vjp=[lambda g, y, x, *, shape: unbroadcast(g, np.shape(x))],
        notation=_n("broadcast {0}", "{d} summed over the copies"), flops=_free, branch=None,
        linear=True)


# concat(a, b): a then b along ``axis`` (the channel axis, for a U-Net's skip connections);
# its VJP hands each input its own part of the upstream gradient, a view. It is affine, not
# linear, in each input alone (the other's part stays), so its JVPs are written out: the
# tangent of one input beside zeros where the other is.
def _concat_shape(sa, sb, *, axis):
    if len(sa) != len(sb) or any(m != n for k, (m, n) in enumerate(zip(sa, sb)) if k != axis):
        raise ValueError(f"shapes {tuple(sa)} and {tuple(sb)} can be joined along axis {axis} "
                         f"only when every other axis agrees")
    return tuple(sa[:axis]) + (None if sa[axis] is None else sa[axis] + sb[axis],) + tuple(sa[axis + 1:])


def _part(g, axis, start, stop):
    return g[(slice(None),) * axis + (slice(start, stop),)]


defprim("concat", lambda a, b, *, axis, out=None: np.concatenate((a, b), axis=axis, out=out),
        _concat_shape,
        vjp=[lambda g, y, a, b, *, axis: _part(g, axis, 0, a.shape[axis]),
             lambda g, y, a, b, *, axis: _part(g, axis, a.shape[axis], None)],
        jvp=[lambda t, y, a, b, *, axis: np.concatenate((t, np.zeros_like(b)), axis=axis),
             lambda t, y, a, b, *, axis: np.concatenate((np.zeros_like(a), t), axis=axis)],
        notation=_n("[{0}; {1}]", "{d}'s part of {0}", "{d}'s part of {1}"), flops=_free,
        branch=None,
        batchwise=lambda ndim, *, axis: "forward" if axis % ndim else False)


def _pad(x, widths, value=0.0, out=None):
    """Constant padding, zeros unless ``value``, into ``out`` when given; np.pad costs ~40 µs of
    Python per call, this ~3 µs."""
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths))
    if out is not None:
        out[...] = value
    else:
        # full_like, not full(..., like=x): NEP 35 hands full's device=None on, which CuPy's
        # full lacks
        out = (np.zeros(shape, dtype=x.dtype, like=x) if value == 0
               else np.full_like(x, value, shape=shape))
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, widths))] = x
    return out


def _pad_shape(s, *, widths, value=0.0):
    return tuple(n if n is None else n + lo + hi for n, (lo, hi) in zip(s, widths))


def _unpad(g, widths):
    return g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))]


# value: the fill, 0 for convolutions and average pooling, -inf for max pooling
# (a padded element never wins). The fill is a constant, so the tangent is
# padded with zeros whatever the value: pad is affine, not linear, and its JVP is written out.
defprim("pad", lambda x, *, widths, value=0.0, out=None: _pad(x, widths, value, out), _pad_shape,
        vjp=[lambda g, y, x, *, widths, value=0.0: _unpad(g, widths)],
        jvp=[lambda t, y, x, *, widths, value=0.0: _pad(t, widths)],
        notation=_n("pad {0}", "{d} cropped"), flops=_free, branch=None,
        batchwise=lambda ndim, *, widths, value=0.0: "forward" if tuple(widths[0]) == (0, 0) else False)


# Strided windows: the last len(kernel) axes of x are spatial; the result has
# shape (..., *out_spatial, *kernel), a view (no copy) of x. Followed by a
# matrix product, it is convolution; its transpose scatters window gradients
# back with one slice-add per kernel offset (never np.add.at).
def _window_out(n, k, s, d):
    return None if n is None else (n - d * (k - 1) - 1) // s + 1


def _windows(x, *, kernel, stride, dilation):
    nd = len(kernel)
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    out = tuple(_window_out(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation))
    st = x.strides
    strides = (st[:-nd] + tuple(st[-nd + i] * stride[i] for i in range(nd))
               + tuple(st[-nd + i] * dilation[i] for i in range(nd)))
    return backend.as_strided(x, lead + out + tuple(kernel), strides)


def _windows_shape(s, *, kernel, stride, dilation):
    nd = len(kernel)
    out = tuple(_window_out(n, k, st, d)
                for n, k, st, d in zip(s[-nd:], kernel, stride, dilation))
    if any(o is not None and o < 1 for o in out):
        raise ValueError(f"kernel {tuple(kernel)} with dilation {tuple(dilation)} "
                         f"does not fit in spatial size {tuple(s[-nd:])}")
    return tuple(s[:-nd]) + out + tuple(kernel)


def _windows_transpose(g, x_shape, kernel, stride, dilation):
    nd = len(kernel)
    out = g.shape[-2 * nd:-nd]
    lead = g.ndim - 2 * nd
    if tuple(stride) == tuple(kernel) and all(d == 1 for d in dilation):
        # windows that tile the input (pooling's default): each element sits in at most one
        # window, so the transpose is a reshuffle of g, not a sum: interleave (out, kernel) axes
        perm = tuple(range(lead)) + tuple(a for i in range(nd) for a in (lead + i, lead + nd + i))
        tiled = g.transpose(perm).reshape(g.shape[:lead] + tuple(o * k for o, k in zip(out, kernel)))
        if tiled.shape == tuple(x_shape):
            return tiled
        gx = np.zeros(x_shape, dtype=g.dtype, like=g)  # a remainder no window covers gets zero
        gx[(Ellipsis,) + tuple(slice(0, n) for n in tiled.shape[lead:])] = tiled
        return gx
    gx = np.zeros(x_shape, dtype=g.dtype, like=g)
    for offset in np.ndindex(*kernel):
        sl = tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                   for o, d, s, n in zip(offset, dilation, stride, out))
        gx[(Ellipsis,) + sl] += g[(Ellipsis,) + tuple(slice(None) for _ in out) + offset]
    return gx


defprim("windows", _windows, _windows_shape,
        vjp=[lambda g, y, x, **p: _windows_transpose(g, x.shape, **p)],
        notation=_n("windows {0}", "{d} scatter-added back"), flops=_free, branch=None,
        linear=True)


# ---------------------------------------------------------------- matrix product
# np.matmul: the last two axes multiply, leading axes broadcast. A 2-D weight
# times a stack (N, C*K, L) of im2col matrices is a convolution; its weight
# gradient sums the per-sample products over the stack (unbroadcast), which
# measured faster than folding the stack into one GEMM (tensordot or einsum),
# because folding needs a transposed copy of both operands.
def _swap(x):
    return np.swapaxes(x, -1, -2)


def _as_matrices(g, a, b):
    """Promote 1-D operands as np.matmul does (a row, b a column), and g to match."""
    if a.ndim == 1:
        a, g = a[None, :], g[..., None, :]
    if b.ndim == 1:
        b, g = b[:, None], g[..., None]
    return g, a, b


def _matmul_vjp_a(g, y, a, b):
    g, a2, b2 = _as_matrices(g, backend.as_array(a), backend.as_array(b))
    return unbroadcast(g @ _swap(b2), a2.shape).reshape(np.shape(a))


def _matmul_vjp_b(g, y, a, b):
    g, a2, b2 = _as_matrices(g, backend.as_array(a), backend.as_array(b))
    return unbroadcast(_swap(a2) @ g, b2.shape).reshape(np.shape(b))


def _matmul_shape(sa, sb):
    sa2 = (1,) + tuple(sa) if len(sa) == 1 else tuple(sa)
    sb2 = tuple(sb) + (1,) if len(sb) == 1 else tuple(sb)
    if not sa or not sb or sa2[-1] != sb2[-2]:
        raise ValueError(f"matmul of shapes {tuple(sa)} and {tuple(sb)}: inner sizes differ")
    out = broadcast_shapes(sa2[:-2], sb2[:-2]) + (sa2[-2], sb2[-1])
    if len(sa) == 1:
        out = out[:-2] + out[-1:]
    if len(sb) == 1:
        out = out[:-1]
    return out


defprim("matmul", np.matmul, _matmul_shape,
        vjp=[_matmul_vjp_a, _matmul_vjp_b],
        notation=_n("{0} @ {1}", "{d} @ {1}ᵀ", "{0}ᵀ @ {d}"),
        # a multiply-add per output and inner index
        flops=lambda out, a, b: 2 * _per_sample(out) * a[-1], branch=None, linear=True)


# ---------------------------------------------------------------- convolution
# conv(x, w): cross-correlation of a padded x (N, C, *S) with w (O, C/groups, *K), as
# PyTorch's conv1d/conv2d with padding 0. It is multiplication by a banded
# (block-)Toeplitz matrix; it runs as im2col (strided windows copied into a
# (N, C*K, P) stack) and one product with w (O, C*K) per sample. The weight
# gradient multiplies the upstream gradient by the same columns. The input
# gradient, for stride 1, is the full correlation of the upstream gradient with
# the flipped, transposed kernel (the transposed Toeplitz matrix is again
# Toeplitz): one more im2col and product. For conv1d that is 1.4 to 2.4 times as
# fast here as scattering columns back tap by tap (col2im), which strided
# convolutions do; a 3×3 conv2d of 16 -> 32 channels scattered 15% faster, too
# little for a second route.
# A batch whose columns outgrow the cache is walked in slices that fit
# (backend.batch_slices), and its columns are made again for the weight gradient
# rather than kept: 1×64×64 images, 16 -> 32 channels, batch 100, a step of that
# conv went from 90 to 70 ms, and the forward no longer keeps 59 MB of columns.
# Each sample's products are the same whatever the slices, so are the bits.
# groups (PyTorch's; depthwise when groups = C): output block j of O/groups channels sees only
# input block j of C/groups, so the columns' C*K rows split into (groups, C/groups*K) and w into
# (groups, O/groups, C/groups*K): one product per group, by matmul's broadcasting. groups = 1 is
# never passed, and takes the plain products: an ungrouped program and its bits are as before.
def _im2col(x, kernel, stride, dilation, out=None):
    """The columns (N, C*K, P) of x (N, C, *S): each output position's window, (c, *k) order;
    written into ``out`` when given."""
    nd = len(kernel)
    win = _windows(x, kernel=kernel, stride=stride, dilation=dilation)  # (N, C, *So, *K)
    perm = (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd))
    win = win.transpose(perm)
    if out is None:
        return win.reshape(x.shape[0], x.shape[1] * math.prod(kernel), -1)
    np.copyto(out.reshape(win.shape), win)
    return out


def _column_bytes(x, rows, out_shape):
    return rows * math.prod(out_shape[2:]) * x.dtype.itemsize


def _batch_slices(x, rows, out_shape):
    """Slices of x's batch axis whose columns (rows × output positions a sample) fit in cache
    (backend.batch_slices); a batch that fits whole is cut for the workers instead
    (threads.pieces: each sample's products are the same whatever its slice)."""
    sample = _column_bytes(x, rows, out_shape)
    slices = backend.batch_slices(x, sample)
    if len(slices) == 1:
        return threads.pieces(x, sample)
    return slices


def _by_slices(fn, slices, shape, *operands):
    """fn(b) for each batch slice b, on the engine's workers, written into one array of
    ``shape`` as they come, of the dtype a product of ``operands`` has (as one call on the
    whole batch would give)."""
    if len(slices) == 1:
        return fn(slices[0])
    out = np.empty(shape, dtype=np.result_type(*(a.dtype for a in operands)), like=operands[0])

    def one(b):
        out[b] = fn(b)
    threads.run(one, slices)
    return out


# A single sample's columns can outgrow the cache too (a 3×3 conv of 16 channels on 128×128
# makes 9.4 MB of them): then its output is made in blocks of rows of the first spatial axis,
# each block's columns made from the input rows it reads and used while in cache. The weight
# gradient adds the blocks' products in block order. Blocks depend on the shapes alone.
def _row_blocks(x, rows, out_shape):
    """(first, stop) ranges of the first spatial output axis whose columns fit in cache, or
    None when one sample's columns fit whole (or x is on a GPU)."""
    per_row = rows * math.prod(out_shape[3:]) * x.dtype.itemsize
    if backend.on_device(x) or per_row * out_shape[2] <= backend.CACHE_BYTES:
        return None
    step = max(1, backend.CACHE_BYTES // per_row)
    return [(r, min(r + step, out_shape[2])) for r in range(0, out_shape[2], step)]


def _block_columns(x, first, stop, kernel, stride, dilation):
    """The columns of output rows first..stop-1 (along the first spatial axis), made from the
    rows of x they read."""
    rows = x[:, :, first * stride[0]:(stop - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1]
    return _im2col(rows, kernel, stride, dilation)


def _grouped(m, groups):
    """A stack (n, groups·a, b) as (n, groups, a, b); unchanged for groups = 1."""
    return m if groups == 1 else m.reshape(m.shape[0], groups, -1, m.shape[-1])


def _ungrouped(m, groups):
    """(n, groups, a, b) back to (n, groups·a, b); unchanged for groups = 1."""
    return m if groups == 1 else m.reshape(m.shape[0], -1, m.shape[-1])


def _kernel_matrix(w, groups):
    """w (O, C/groups, *K) as the matrix (O, C/groups·K), or (groups, O/groups, C/groups·K)."""
    return _grouped(w.reshape(1, w.shape[0], -1), groups)[0]


def _conv(x, w, *, stride, dilation, groups=1):
    """(y, the columns, or None when the batch went in cache-sized slices and they were not
    kept)."""
    kernel, w2 = w.shape[2:], _kernel_matrix(w, groups)
    shape = _conv_shape(x.shape, w.shape, stride=stride, dilation=dilation, groups=groups)
    rows = x.shape[1] * math.prod(kernel)
    y_shape = shape[:2] + (math.prod(shape[2:]),)

    def product(cols):                                                  # (n, O, P)
        return _ungrouped(w2 @ _grouped(cols, groups), groups)
    sample = _column_bytes(x, rows, shape)
    slices = backend.batch_slices(x, sample)
    if len(slices) == 1:                                # the columns fit in cache: kept
        pieces = threads.pieces(x, sample)
        if len(pieces) == 1:
            cols = _im2col(x, kernel, stride, dilation)
            return product(cols).reshape(shape), cols
        cols = np.empty((x.shape[0], rows, y_shape[2]), dtype=x.dtype, like=x)
        y = _by_slices(lambda b: product(_im2col(x[b], kernel, stride, dilation, out=cols[b])),
                       pieces, y_shape, x, w)
        return y.reshape(shape), cols
    def slice_product(b):                                               # (n, O, P)
        xb = x[b]
        blocks = _row_blocks(xb, rows, shape)
        if blocks is None:
            return product(_im2col(xb, kernel, stride, dilation))
        rest = math.prod(shape[3:])
        out = np.empty((xb.shape[0], shape[1], shape[2] * rest),
                       dtype=np.result_type(x.dtype, w.dtype), like=xb)
        for a, z in blocks:
            out[:, :, a * rest:z * rest] = product(
                _block_columns(xb, a, z, kernel, stride, dilation))
        return out
    y = _by_slices(slice_product, slices, y_shape, x, w)
    return y.reshape(shape), None


def _conv_shape(sx, sw, *, stride, dilation, groups=1):
    nd = len(sw) - 2
    if len(sx) != nd + 2 or sx[1] != sw[1] * groups or sw[0] % groups:
        raise ValueError(f"conv of input {tuple(sx)} with weight {tuple(sw)} in {groups} "
                         f"group(s): channels differ")
    out = tuple(_window_out(n, k, s, d) for n, k, s, d in zip(sx[2:], sw[2:], stride, dilation))
    if any(o is not None and o < 1 for o in out):
        raise ValueError(f"kernel {tuple(sw[2:])} with dilation {tuple(dilation)} does not fit "
                         f"in spatial size {tuple(sx[2:])}")
    return (sx[0], sw[0]) + out


def _conv_vjp_w(g, y, x, w, *, stride, dilation, saved, groups=1):
    kernel, g3 = w.shape[2:], g.reshape(g.shape[0], g.shape[1], -1)     # (N, O, P)

    def product(g3, cols):                                              # (n, O, C/groups·K)
        # made as cols @ gᵀ, (C/groups·K, O/groups) a sample and group, and handed out
        # transposed (a view): OpenBLAS is 20-30% faster with the long P axis against the wide
        # one this way round (3x3 convs of 16 -> 32 and 32 -> 64 channels, batch 32)
        return _ungrouped(_swap(_grouped(cols, groups) @ _swap(_grouped(g3, groups))), groups)
    if saved is not None:
        per_sample = _by_slices(lambda b: product(g3[b], saved[b]),
                                threads.pieces(g, saved[0].nbytes),
                                (x.shape[0], w.shape[0], math.prod(w.shape[1:])), g, x)
    else:
        rows, rest = x.shape[1] * math.prod(kernel), math.prod(g.shape[3:])

        def slice_product(b):                   # the row blocks' products added in block order
            gb, xb = g3[b], x[b]
            total = None
            for a, z in _row_blocks(xb, rows, g.shape) or [(0, g.shape[2])]:
                part = product(gb[:, :, a * rest:z * rest],
                               _block_columns(xb, a, z, kernel, stride, dilation))
                total = part if total is None else total + part
            return total
        per_sample = _by_slices(slice_product, _batch_slices(x, rows, g.shape),
                                (x.shape[0], w.shape[0], math.prod(w.shape[1:])), g, x)
    return per_sample.sum(0).reshape(w.shape)                           # (N, O, C*K) summed


def _conv_input_grad(g, w, x_shape, *, stride, dilation, groups=1):
    """The adjoint of conv(x, w) for x of shape ``x_shape``: the upstream g (N, O, *So) through
    the transposed Toeplitz matrix, (N, C, *S). It is also conv_transpose's forward."""
    kernel = tuple(w.shape[2:])
    nd, c, so = len(kernel), x_shape[1], g.shape[2:]
    if all(s == 1 for s in stride):
        widths = ((0, 0), (0, 0)) + tuple((d * (k - 1),) * 2 for k, d in zip(kernel, dilation))
        w_t = np.flip(w, axis=tuple(range(2, 2 + nd)))
        if groups == 1:
            w_t = w_t.swapaxes(0, 1)
        else:  # (groups, O/groups, C/groups, *K) -> (C, O/groups, *K): in and out swapped per group
            w_t = w_t.reshape(groups, -1, *w.shape[1:]).swapaxes(1, 2).reshape(c, -1, *kernel)
        # padded and correlated slice by slice: the padded copy of g lives one slice at a time
        return _by_slices(lambda b: _conv(_pad(g[b], widths), w_t, stride=stride,
                                          dilation=dilation, groups=groups)[0],
                          _batch_slices(g, g.shape[1] * math.prod(kernel), x_shape),
                          tuple(x_shape), g, w)
    g3, w2t = g.reshape(g.shape[0], g.shape[1], -1), _swap(_kernel_matrix(w, groups))
    # columns (n, C*K, P) back to windows (n, C, *So, *K): im2col's permutation undone
    perm = _inverse((0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)))

    def col2im(b):
        gb = g3[b]
        cols = _ungrouped(w2t @ _grouped(gb, groups), groups)           # (n, C*K, P)
        dwin = cols.reshape((gb.shape[0], c) + kernel + so).transpose(perm)
        return _windows_transpose(dwin, (gb.shape[0],) + tuple(x_shape[1:]), kernel, stride,
                                  dilation)
    return _by_slices(col2im, _batch_slices(g, c * math.prod(kernel), g.shape),
                      (g.shape[0],) + tuple(x_shape[1:]), g, w)


def _conv_vjp_x(g, y, x, w, *, stride, dilation, saved, groups=1):
    return _conv_input_grad(g, w, x.shape, stride=stride, dilation=dilation, groups=groups)


defprim("conv", _conv, _conv_shape,
        vjp=[_conv_vjp_x, _conv_vjp_w],
        notation=_n("conv({0}, {1})", "conv_transpose({d}, {1})", "corr({0}, {d})"),
        # a multiply-add per output (O·P) and kernel tap (C/groups·K)
        flops=lambda out, x, w, **p: 2 * _per_sample(out) * _per_sample((None,) + tuple(w[1:])),
        branch=None, linear=True, saves=True)


# ---------------------------------------------------------------- transposed convolution
# conv_transpose(x, w): PyTorch's conv_transpose1d/2d, x (N, C, *S), w (C, O/groups, *K). It is
# conv's input gradient for a convolution of weight w: x goes through the transposed Toeplitz
# matrix onto (S - 1)·stride + dilation·(K - 1) + 1 positions, which are then cropped by pad at
# each end; output_pad adds positions at the end that no tap reaches (zeros, bias aside).
# Being a transpose, its own rules are conv's: the input gradient is conv(g, w) of the upstream
# gradient put back on the uncropped positions, the weight gradient conv's weight gradient
# with x as the upstream.
def _transposed_out(n, k, s, d, p, op):
    return None if n is None else (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _conv_transpose_shape(sx, sw, *, stride, dilation, pad, output_pad, groups=1):
    nd = len(sw) - 2
    if len(sx) != nd + 2 or sx[1] != sw[0] or sw[0] % groups:
        raise ValueError(f"conv_transpose of input {tuple(sx)} with weight {tuple(sw)} in "
                         f"{groups} group(s): channels differ")
    out = tuple(_transposed_out(n, k, s, d, p, op) for n, k, s, d, p, op
                in zip(sx[2:], sw[2:], stride, dilation, pad, output_pad))
    if any(o is not None and o < 1 for o in out):
        raise ValueError(f"conv_transpose of spatial size {tuple(sx[2:])} cropped by pad "
                         f"{tuple(pad)} leaves no output")
    return (sx[0], sw[1] * groups) + out


def _uncropped(x_shape, kernel, stride, dilation):
    return tuple((n - 1) * s + d * (k - 1) + 1 for n, k, s, d in zip(x_shape[2:], kernel, stride,
                                                                      dilation))


def _crop(y, pad, out):
    """y[..., pad : pad + out] on each spatial axis, with zeros past y's end (output_pad)."""
    part = y[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(pad, out))]
    if part.shape[2:] == tuple(out):
        return part
    full = np.zeros(y.shape[:2] + tuple(out), dtype=y.dtype, like=y)
    full[(Ellipsis,) + tuple(slice(0, n) for n in part.shape[2:])] = part
    return full


def _uncrop(g, pad, size):
    """_crop's transpose: g put back at offset pad on ``size`` positions, zeros around."""
    full = np.zeros(g.shape[:2] + tuple(size), dtype=g.dtype, like=g)
    keep = tuple(min(n, m - p) for n, m, p in zip(g.shape[2:], size, pad))
    full[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(pad, keep))] = \
        g[(Ellipsis,) + tuple(slice(0, n) for n in keep)]
    return full


def _conv_transpose(x, w, *, stride, dilation, pad, output_pad, groups=1):
    shape = _conv_transpose_shape(x.shape, w.shape, stride=stride, dilation=dilation, pad=pad,
                                  output_pad=output_pad, groups=groups)
    full = _uncropped(x.shape, w.shape[2:], stride, dilation)
    y = _conv_input_grad(x, w, shape[:2] + full, stride=stride, dilation=dilation, groups=groups)
    return _crop(y, pad, shape[2:])


def _conv_transpose_vjp_x(g, y, x, w, *, stride, dilation, pad, output_pad, groups=1):
    g = _uncrop(g, pad, _uncropped(x.shape, w.shape[2:], stride, dilation))
    return _conv(g, w, stride=stride, dilation=dilation, groups=groups)[0]


def _conv_transpose_vjp_w(g, y, x, w, *, stride, dilation, pad, output_pad, groups=1):
    g = _uncrop(g, pad, _uncropped(x.shape, w.shape[2:], stride, dilation))
    return _conv_vjp_w(x, None, g, w, stride=stride, dilation=dilation, saved=None,
                       groups=groups)


defprim("conv_transpose", _conv_transpose, _conv_transpose_shape,
        vjp=[_conv_transpose_vjp_x, _conv_transpose_vjp_w],
        notation=_n("conv_transpose({0}, {1})", "conv({d}, {1})", "corr({d}, {0})"),
        # a multiply-add per input element (C·S) and kernel tap of its row (O/groups·K)
        flops=lambda out, x, w, **p: 2 * _per_sample(x) * _per_sample((None,) + tuple(w[1:])),
        branch=None, linear=True)


# ---------------------------------------------------------------- the Toeplitz matrix of a convolution
# toeplitz(w): the matrix T(w) with conv(pad(x), w) = T(w) x for one sample x of
# shape (C, *size) flattened in C order: the lecture's banded W1 (doubly block
# Toeplitz in 2-D). Row (o, p) for output channel o at output position p,
# column (c, j) for input channel c at input position j, and
#     T[(o, p), (c, j)] = w[o, c, k]   where j = p·stride + k·dilation - pad_lo, per axis;
# taps that land on padding zeros are left out, so T acts on the unpadded input.
# With groups, output block g only reads input block g: c = g·C/groups + (w's channel), and T is
# block diagonal, one block per group. A negative pad_hi (a transposed convolution's output_pad
# beyond its pad) only shortens the output.
# T is linear in w: the forward scatters kernel entries into a zero matrix (no
# two taps share an entry), the VJP gathers the matrix gradient back and sums
# it over the positions each kernel entry fills, and the JVP is T(tangent).
def _ravel(index, shape):
    """C-order flat position of a multi-index (one array per axis; they broadcast)."""
    flat = 0
    for i, n in zip(index, shape):
        flat = flat * n + i
    return flat


@functools.lru_cache(maxsize=64)
def _toeplitz_index(w_shape, size, pad, stride, dilation, groups=1):
    """Where each kernel entry goes: (rows, cols, flat kernel index) of every tap inside the input."""
    nd = len(size)
    kernel = w_shape[2:]
    out = tuple(_window_out(n + lo + hi, k, s, d)
                for n, (lo, hi), k, s, d in zip(size, pad, kernel, stride, dilation))
    o, c, *pk = np.indices(w_shape[:2] + out + kernel, sparse=True)
    p, k = pk[:nd], pk[nd:]
    j = [pi * s + ki * d - lo for pi, ki, s, d, (lo, _) in zip(p, k, stride, dilation, pad)]
    inside = functools.reduce(np.logical_and, [(ji >= 0) & (ji < n) for ji, n in zip(j, size)])
    c_in = c if groups == 1 else o // (w_shape[0] // groups) * w_shape[1] + c  # its group's block
    rows = _ravel([o] + p, w_shape[:1] + out)
    cols = _ravel([c_in] + j, (w_shape[1] * groups,) + size)
    taps = _ravel([o, c] + k, w_shape)
    rows, cols, taps, inside = np.broadcast_arrays(rows, cols, taps, inside)
    return rows[inside], cols[inside], taps[inside]


def _toeplitz_shape(sw, *, size, pad, stride, dilation, groups=1):
    out = tuple(_window_out(n + lo + hi, k, s, d)
                for n, (lo, hi), k, s, d in zip(size, pad, sw[2:], stride, dilation))
    if len(sw) != len(size) + 2 or any(o < 1 for o in out):
        raise ValueError(f"kernel {tuple(sw[2:])} with dilation {tuple(dilation)} does not fit "
                         f"in spatial size {tuple(size)} padded by {tuple(pad)}")
    return sw[0] * int(np.prod(out)), sw[1] * groups * int(np.prod(size))


def _toeplitz(w, *, size, pad, stride, dilation, groups=1):
    rows, cols, taps = (backend.like(i, w) for i in _toeplitz_index(w.shape, size, pad, stride,
                                                                     dilation, groups))
    T = np.zeros(_toeplitz_shape(w.shape, size=size, pad=pad, stride=stride, dilation=dilation,
                                 groups=groups), dtype=w.dtype, like=w)
    T[rows, cols] = w.reshape(-1)[taps]
    return T


def _toeplitz_vjp(g, y, w, *, size, pad, stride, dilation, groups=1):
    rows, cols, taps = (backend.like(i, g) for i in _toeplitz_index(w.shape, size, pad, stride,
                                                                     dilation, groups))
    gw = np.bincount(taps, weights=g[rows, cols], minlength=w.size)
    return gw.reshape(w.shape).astype(g.dtype, copy=False)


defprim("toeplitz", _toeplitz, _toeplitz_shape,
        vjp=[_toeplitz_vjp], notation=_n("T({0})", "{d} gathered, summed over the band"),
        flops=_free, branch=None, linear=True)
