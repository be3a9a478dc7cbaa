"""Pooling: max and mean over sliding windows, as PyTorch's max_pool and avg_pool, and over every
spatial axis at once (global pooling, as PyTorch's adaptive pooling to size 1)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...core.fields import Invalid, Param, boolean, nonneg_int, optional, positive_int
from .geometry import AXES, int_or_pair, per_axis
from .table import layer


class PoolGeometry(NamedTuple):
    """A pooling layer on the last nd axes of a sample: windows ``size`` every ``stride``,
    ``pad`` elements at each edge, ``extra`` more at the end for ceil_mode's last window."""

    size: tuple
    stride: tuple
    pad: tuple
    extra: tuple
    out: tuple

    def counts(self, spatial, include_pad: bool) -> np.ndarray:
        """Each output position's divisor, shape ``out``, as PyTorch's avg_pool computes it: the
        window [o·stride − pad, o·stride − pad + size) cut at the end of the padding (never
        counting ceil_mode's extra), then, without ``include_pad``, cut to the input [0, n)."""
        per_axis_counts = []
        for n, k, s, p, m in zip(spatial, self.size, self.stride, self.pad, self.out):
            start = np.arange(m) * s - p
            end = np.minimum(start + k, n + p)
            if not include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, n)
            per_axis_counts.append(end - start)
        # small integers: exact in float32, which keeps a float32 model float32 and promotes
        # exactly in a float64 one
        grid = np.meshgrid(*per_axis_counts, indexing="ij")
        return np.prod(grid, axis=0).astype(np.float32)


def pool_geometry(nd: int, cfg: dict, spatial) -> PoolGeometry:
    """The geometry of an nd-dimensional pooling layer with fields ``cfg`` on spatial sizes
    ``spatial``. Output positions per axis, as PyTorch's pooling_output_shape:
    (n + 2·pad − size) // stride + 1, rounded up instead with ``ceil_mode``, where the last
    window must then start inside the input or its left padding (else it is dropped).
    Errors are :class:`Invalid` naming the field at fault."""
    size = per_axis(cfg["size"], nd)
    stride = size if cfg["stride"] is None else per_axis(cfg["stride"], nd)
    pad = per_axis(cfg["pad"], nd)
    out, extra = [], []
    for axis, n, p, k, s in zip(AXES[nd], spatial, pad, size, stride):
        # PyTorch's rule too: every window then holds at least one input element
        if 2 * p > k:
            raise Invalid(f"pad{axis} {p} is more than half the window{axis} {k}", key="pad")
        if n + 2 * p < k:
            raise Invalid(f"window{axis} {k} is longer than its padded input{axis} "
                          f"({n} + {2 * p} padding = {n + 2 * p})", key="size")
        m = (n + 2 * p - k) // s + 1
        if cfg["ceil_mode"]:
            m = -(-(n + 2 * p - k) // s) + 1
            if (m - 1) * s >= n + p:
                m -= 1
        out.append(m)
        extra.append(max(0, (m - 1) * s + k - (n + 2 * p)))
    return PoolGeometry(size, stride, pad, tuple(extra), tuple(out))


def _pool(ctx, x, cfg, nd, reduce):
    """Windows of the last nd axes (a strided view), reduced by max or mean, as PyTorch's pools."""
    if x.ndim - 1 < nd:
        raise Invalid(f"needs input with at least {nd} axes, got {tuple(x.shape[1:])}")
    spatial = x.shape[-nd:]
    g = pool_geometry(nd, cfg, spatial)
    widths = tuple((p, p + e) for p, e in zip(g.pad, g.extra))
    if any(hi for _, hi in widths):
        # max pooling pads with -inf, so padding never wins; average pooling with zeros, whose
        # share of the mean the divisor below decides
        x = ctx.b.apply("pad", x, widths=((0, 0),) * (x.ndim - nd) + widths,
                        value=-np.inf if reduce == "max" else 0.0)
    win = ctx.b.apply("windows", x, kernel=g.size, stride=g.stride, dilation=(1,) * nd)
    axes = tuple(range(win.ndim - nd, win.ndim))
    if reduce == "max":
        return ctx.b.apply("max", win, axis=axes)
    counts = g.counts(spatial, cfg["count_include_pad"])
    if (counts == np.prod(g.size)).all():  # every window counts whole: the plain mean
        return ctx.b.apply("mean", win, axis=axes)
    return ctx.b.apply("sum", win, axis=axes) / counts


def _pool_onnx(nd, op):
    """ONNX ``MaxPool`` (padding never wins) or ``AveragePool`` (``count_include_pad`` as the
    field), with ``ceil_mode`` where the field is set, on the last nd axes. ONNX pools
    (N, C, *spatial): other leading axes are folded into C by ``Reshape`` (0 keeps the batch size
    symbolic) and unfolded after."""
    def lower(g, x, cfg, params):
        lead, spatial = x.shape[1:-nd], x.shape[-nd:]
        geo = pool_geometry(nd, cfg, spatial)
        attributes = {"ceil_mode": 1} if cfg["ceil_mode"] else {}
        if op == "AveragePool":
            attributes["count_include_pad"] = int(cfg["count_include_pad"])
        if len(lead) != 1:
            x = g.op("Reshape", x, g.const(np.array([0, -1, *spatial], np.int64), "shape"))
        y = g.op(op, x, kernel_shape=geo.size, strides=geo.stride, pads=list(geo.pad) * 2,
                 **attributes)
        if len(lead) != 1:
            y = g.op("Reshape", y, g.const(np.array([0, *lead, *geo.out], np.int64), "shape"))
        return y
    return lower


def _pool_fields(nd, average):
    pair = "" if nd == 1 else ", or [height, width]"
    size = positive_int if nd == 1 else int_or_pair()
    # ceil_mode and count_include_pad came later: implicit, so older specs keep their fingerprint
    fields = (Param("size", size, doc=f"window size{pair}"),
              Param("stride", optional(size), None, f"step between windows{pair}; default: size"),
              Param("pad", nonneg_int if nd == 1 else int_or_pair(minimum=0), 0,
                    f"padding at each edge{pair}, at most half the window"),
              Param("ceil_mode", boolean, False,
                    "round the number of windows up, as PyTorch's ceil_mode: a last, partial "
                    "window at the end, if it starts inside the input or its left padding",
                    implicit=True),)
    if average:
        fields += (Param("count_include_pad", boolean, True,
                         "padding zeros count in the mean, as PyTorch's count_include_pad; "
                         "false: each window is divided by the input elements it covers",
                         implicit=True),)
    return fields


_MAX_TIES = ("the gradient goes to one element per window, the first maximum in window order "
             "(as PyTorch); padding counts as -inf")
_AVG_PAD = ("padding zeros count in the mean unless count_include_pad is false; a ceil_mode "
            "window past the padding is divided by what it covers up to the padding's end "
            "(as PyTorch)")


@layer("maxpool1d", f"Maximum over sliding windows of the last axis, as PyTorch's max_pool1d; "
       f"{_MAX_TIES}.", "maxpool1d: {size: 2}", *_pool_fields(1, False),
       onnx=_pool_onnx(1, "MaxPool"))
def maxpool1d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 1, "max")


@layer("maxpool2d", f"Maximum over sliding windows of the last two axes (height, width), as "
       f"PyTorch's max_pool2d; {_MAX_TIES}.", "maxpool2d: {size: 2}", *_pool_fields(2, False),
       onnx=_pool_onnx(2, "MaxPool"))
def maxpool2d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 2, "max")


@layer("avgpool1d", f"Mean over sliding windows of the last axis, as PyTorch's avg_pool1d; "
       f"{_AVG_PAD}.", "avgpool1d: {size: 2}", *_pool_fields(1, True),
       linear=True, onnx=_pool_onnx(1, "AveragePool"))
def avgpool1d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 1, "mean")


@layer("avgpool2d", f"Mean over sliding windows of the last two axes (height, width), as "
       f"PyTorch's avg_pool2d; {_AVG_PAD}.", "avgpool2d: {size: 2}", *_pool_fields(2, True),
       linear=True, onnx=_pool_onnx(2, "AveragePool"))
def avgpool2d(ctx, x, cfg):
    return _pool(ctx, x, cfg, 2, "mean")


# ---------------------------------------------------------------- global pooling
def _spatial_axes(x) -> tuple:
    """The axes after (batch, channels) of a sample (C, *spatial) with at least one spatial axis."""
    if x.ndim < 3:
        raise Invalid(f"needs input (channels, *spatial) with at least one spatial axis, "
                      f"got {tuple(x.shape[1:])}")
    return tuple(range(2, x.ndim))


def _global_onnx(op):
    """ONNX ``op`` (``GlobalAveragePool``, ``GlobalMaxPool``: (N, C, *spatial) -> (N, C, 1, ...)),
    then ``Flatten`` to (N, C)."""
    return lambda g, x, cfg, params: g.op("Flatten", g.op(op, x), axis=1)


@layer("global_avgpool", "Mean over every spatial axis of a sample (C, *spatial) -> (C,): "
       "[C, H, W] -> [C], as PyTorch's adaptive_avg_pool to size 1, flattened.",
       "global_avgpool", linear=True, onnx=_global_onnx("GlobalAveragePool"))
def global_avgpool(ctx, x, cfg):
    return ctx.b.apply("mean", x, axis=_spatial_axes(x))


@layer("global_maxpool", "Maximum over every spatial axis of a sample (C, *spatial) -> (C,): "
       "[C, H, W] -> [C], as PyTorch's adaptive_max_pool to size 1, flattened; the gradient "
       "goes to the first maximum in C order (as PyTorch).",
       "global_maxpool", onnx=_global_onnx("GlobalMaxPool"))
def global_maxpool(ctx, x, cfg):
    return ctx.b.apply("max", x, axis=_spatial_axes(x))
