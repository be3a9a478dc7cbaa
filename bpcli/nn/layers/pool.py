"""Pooling: max and mean over sliding windows, as PyTorch's max_pool and avg_pool."""

from __future__ import annotations

import numpy as np

from ...spec.fields import Invalid, Param, nonneg_int, optional, positive_int
from .geometry import AXES, int_or_pair, per_axis
from .table import layer


def _pool_geometry(cfg, nd) -> tuple:
    """(window, stride, pad) per axis of an nd-dimensional pooling layer's fields."""
    size = per_axis(cfg["size"], nd)
    stride = size if cfg["stride"] is None else per_axis(cfg["stride"], nd)
    return size, stride, per_axis(cfg["pad"], nd)


def _pool(ctx, x, cfg, nd, reduce):
    """Windows of the last nd axes (a strided view), reduced by max or mean: pooling as PyTorch's."""
    size, stride, pad = _pool_geometry(cfg, nd)
    if x.ndim - 1 < nd:
        raise Invalid(f"needs input with at least {nd} axes, got {tuple(x.shape[1:])}")
    for axis, n, p, k in zip(AXES[nd], x.shape[-nd:], pad, size):
        # PyTorch's rule too: every window then holds at least one input element
        if 2 * p > k:
            raise Invalid(f"pad{axis} {p} is more than half the window{axis} {k}", key="pad")
        if n + 2 * p < k:
            raise Invalid(f"window{axis} {k} is longer than its padded input{axis} "
                          f"({n} + {2 * p} padding = {n + 2 * p})", key="size")
    if any(pad):
        # max pooling pads with -inf, so padding never wins; average pooling with zeros that
        # count in the mean (PyTorch's count_include_pad=True)
        x = ctx.b.apply("pad", x, widths=((0, 0),) * (x.ndim - nd) + tuple((p, p) for p in pad),
                        value=-np.inf if reduce == "max" else 0.0)
    win = ctx.b.apply("windows", x, kernel=size, stride=stride, dilation=(1,) * nd)
    return ctx.b.apply(reduce, win, axis=tuple(range(win.ndim - nd, win.ndim)))


def _pool_onnx(nd, op, **attributes):
    """ONNX ``MaxPool`` (padding never wins) or ``AveragePool`` with ``count_include_pad=1``, on
    the last nd axes. ONNX pools (N, C, *spatial): other leading axes are folded into C by
    ``Reshape`` (0 keeps the batch size symbolic) and unfolded after."""
    def lower(g, x, cfg, params):
        size, stride, pad = _pool_geometry(cfg, nd)
        lead, spatial = x.shape[1:-nd], x.shape[-nd:]
        out = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(spatial, pad, size, stride)]
        if len(lead) != 1:
            x = g.op("Reshape", x, g.const(np.array([0, -1, *spatial], np.int64), "shape"))
        y = g.op(op, x, kernel_shape=size, strides=stride, pads=list(pad) * 2, **attributes)
        if len(lead) != 1:
            y = g.op("Reshape", y, g.const(np.array([0, *lead, *out], np.int64), "shape"))
        return y
    return lower


def _pool_fields(nd):
    pair = "" if nd == 1 else ", or [height, width]"
    size = positive_int if nd == 1 else int_or_pair()
    return (Param("size", size, doc=f"window size{pair}"),
            Param("stride", optional(size), None, f"step between windows{pair}; default: size"),
            Param("pad", nonneg_int if nd == 1 else int_or_pair(minimum=0), 0,
                  f"padding at each edge{pair}, at most half the window"))


_MAX_TIES = ("the gradient goes to one element per window, the first maximum in window order "
             "(as PyTorch); padding counts as -inf")
_AVG_PAD = "padding zeros count in the mean (PyTorch's default count_include_pad=True)"


@layer("maxpool1d", f"Maximum over sliding windows of the last axis, as PyTorch's max_pool1d; "
       f"{_MAX_TIES}.", "maxpool1d: {size: 2}", *_pool_fields(1),
       onnx=_pool_onnx(1, "MaxPool"))
def maxpool1d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 1, "max")


@layer("maxpool2d", f"Maximum over sliding windows of the last two axes (height, width), as "
       f"PyTorch's max_pool2d; {_MAX_TIES}.", "maxpool2d: {size: 2}", *_pool_fields(2),
       onnx=_pool_onnx(2, "MaxPool"))
def maxpool2d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 2, "max")


@layer("avgpool1d", f"Mean over sliding windows of the last axis, as PyTorch's avg_pool1d; "
       f"{_AVG_PAD}.", "avgpool1d: {size: 2}", *_pool_fields(1),
       linear=True, onnx=_pool_onnx(1, "AveragePool", count_include_pad=1))
def avgpool1d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 1, "mean")


@layer("avgpool2d", f"Mean over sliding windows of the last two axes (height, width), as "
       f"PyTorch's avg_pool2d; {_AVG_PAD}.", "avgpool2d: {size: 2}", *_pool_fields(2),
       linear=True, onnx=_pool_onnx(2, "AveragePool", count_include_pad=1))
def avgpool2d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 2, "mean")

