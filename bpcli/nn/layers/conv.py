"""Convolutions: cross-correlation as PyTorch's, and its banded Toeplitz matrix (the lecture's W1)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...engine.rules import PRIMITIVES
from ...core.fields import Invalid, Param, boolean, int_or, one_of, positive_int
from .geometry import AXES, int_or_pair, per_axis, same_pad
from .table import layer


class ConvGeometry(NamedTuple):
    """A convolution layer on one sample: input (channels, *size), zeros pad[i] = (lo, hi) per axis."""

    in_channels: int
    size: tuple
    kernel: tuple
    stride: tuple
    dilation: tuple
    pad: tuple
    groups: int = 1

    @property
    def out_size(self) -> tuple:
        """Output positions per axis: (n + lo + hi - dilation·(kernel - 1) - 1) // stride + 1."""
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d
                     in zip(self.size, self.pad, self.kernel, self.stride, self.dilation))

    @property
    def grouped(self) -> dict:
        """The primitives' groups parameter: none for 1, so an ungrouped program is as before."""
        return {"groups": self.groups} if self.groups > 1 else {}


def check_groups(groups: int, in_channels: int, channels: int) -> None:
    """PyTorch's rule: groups divides both the input channels and the output channels."""
    for what, n in (("input channels", in_channels), ("channels", channels)):
        if n % groups:
            raise Invalid(f"groups {groups} does not divide the {n} {what}", key="groups")


def conv_geometry(nd: int, cfg: dict, sample_shape) -> ConvGeometry:
    """The geometry of an nd-dimensional convolution with fields ``cfg`` on one sample.

    A sample with one axis fewer than (channels, *spatial) has one channel. Shape
    errors are :class:`Invalid` naming the field at fault.
    """
    sample = tuple(sample_shape)
    if len(sample) == nd:
        sample = (1, *sample)
    if len(sample) != nd + 1:
        want = "(channels, length)" if nd == 1 else "(channels, height, width) or (height, width)"
        raise Invalid(f"needs input of shape {want}, got {tuple(sample_shape)}")
    kernel, stride, dilation = (per_axis(cfg[k], nd) for k in ("kernel", "stride", "dilation"))
    if cfg["pad"] == "same":
        if any(s != 1 for s in stride):
            raise Invalid(f"pad: same needs stride 1 (as in PyTorch), got stride {cfg['stride']}",
                          key="pad")
        pad = tuple(same_pad(k, d) for k, d in zip(kernel, dilation))
    else:
        pad = tuple((p, p) for p in per_axis(0 if cfg["pad"] == "valid" else cfg["pad"], nd))
    for axis, n, (lo, hi), k, d in zip(AXES[nd], sample[1:], pad, kernel, dilation):
        if n + lo + hi < d * (k - 1) + 1:
            raise Invalid(f"kernel{axis} {k} (dilation {d}) is longer than its padded input{axis} "
                          f"({n} + {lo + hi} padding = {n + lo + hi})", key="kernel")
    groups = cfg.get("groups", 1)
    check_groups(groups, sample[0], cfg["channels"])
    return ConvGeometry(sample[0], sample[1:], kernel, stride, dilation, pad, groups)


def _conv(ctx, x, cfg, nd):
    """Cross-correlation with a weight (out, in/groups, *kernel), as PyTorch's conv1d/conv2d.

    impl fast: pad, then the conv primitive (strided windows times one matrix
    product). impl toeplitz: the lecture's y = T(w) x, with the explicit banded
    matrix T(w) built from the kernel inside the graph, so backpropagation runs
    through the matrix product and then through the matrix's construction.
    """
    g = conv_geometry(nd, cfg, x.shape[1:])
    if x.ndim == len(g.size) + 1:  # no channel axis: one channel
        x = x.reshape(None, 1, *g.size)
    in_group = g.in_channels // g.groups
    w = ctx.param("weight", (cfg["channels"], in_group, *g.kernel),
                  fan_in=in_group * int(np.prod(g.kernel)))
    if cfg["impl"] == "toeplitz":
        T = ctx.b.apply("toeplitz", w, size=g.size, pad=g.pad, stride=g.stride, dilation=g.dilation,
                        **g.grouped)
        y = x.reshape(None, g.in_channels * int(np.prod(g.size))) @ T.T     # (N, out·positions)
        y = y.reshape(None, cfg["channels"], *g.out_size)
    else:
        if any(lo or hi for lo, hi in g.pad):
            x = ctx.b.apply("pad", x, widths=((0, 0), (0, 0)) + g.pad)
        y = ctx.b.apply("conv", x, w, stride=g.stride, dilation=g.dilation,
                        **g.grouped)                                       # (N, out, *out_size)
    if cfg["bias"]:
        b = ctx.param("bias", (cfg["channels"],), fan_in=None)
        y = y + b.reshape(cfg["channels"], *(1,) * len(g.size))
    return y


def _conv_onnx(nd):
    """ONNX ``Conv`` with explicit ``pads`` (begins, then ends: same's odd extra zero at the end,
    as PyTorch; never auto_pad), strides, dilations, group and the bias as its third input. A sample
    without a channel axis gets one by ``Unsqueeze``, as the builder does. ``impl: toeplitz`` is
    the same operator, so it exports the same."""
    def lower(g, x, cfg, params):
        geo = conv_geometry(nd, cfg, x.shape[1:])
        if len(x.shape) == nd + 1:
            x = g.op("Unsqueeze", x, g.const(np.array([1], np.int64), "axes"))
        bias = [g.const(params["bias"], "bias")] if cfg["bias"] else []
        return g.op("Conv", x, g.const(params["weight"], "weight"), *bias,
                    kernel_shape=geo.kernel, strides=geo.stride, dilations=geo.dilation,
                    pads=[lo for lo, _ in geo.pad] + [hi for _, hi in geo.pad],
                    **({"group": geo.groups} if geo.groups > 1 else {}))
    return lower


def _toeplitz_of(nd):
    """The layer's explicit banded (block-)Toeplitz matrix T(w), built by the toeplitz primitive."""
    def matrix(cfg, sample_shape, weight):
        g = conv_geometry(nd, cfg, sample_shape)
        return PRIMITIVES["toeplitz"].impl(weight, size=g.size, pad=g.pad, stride=g.stride,
                                           dilation=g.dilation, **g.grouped)
    return matrix


_IMPL = Param("impl", one_of("fast", "toeplitz"), "fast",
              "fast: strided windows times one matrix product; toeplitz: build the explicit banded "
              "Toeplitz matrix T(w) from the kernel and compute y = T(w) x (the lecture's view: "
              "slow, same numbers)")
# implicit: groups came after specs were written without it, and those keep their fingerprint
GROUPS = Param("groups", positive_int, 1,
               "split the channels into this many groups, each output group computed from its own "
               "input group (PyTorch's groups; depthwise when it equals the input channels); it "
               "must divide the input channels and channels", implicit=True)


@layer("conv1d",
       "1-D cross-correlation, as PyTorch's conv1d: multiplication by a banded (block-)Toeplitz "
       "matrix, computed as strided windows times one matrix product. Weight (out, in/groups, "
       "kernel).",
       "conv1d: {channels: 8, kernel: 9, pad: same}",
       Param("channels", positive_int, doc="output channels"),
       Param("kernel", positive_int, doc="kernel length"),
       Param("stride", positive_int, 1, "step between outputs"),
       Param("pad", int_or("same", "valid", minimum=0), 0,
             "zeros added at each end: an integer, same (output length = input length, stride 1) "
             "or valid (= 0)"),
       Param("dilation", positive_int, 1, "spacing between kernel taps"),
       Param("bias", boolean, True, "add a learned bias per output channel"),
       GROUPS, _IMPL, linear=True, matrix=_toeplitz_of(1), onnx=_conv_onnx(1))
def conv1d(ctx, x, cfg):
    return _conv(ctx, x, cfg, 1)


@layer("conv2d",
       "2-D cross-correlation, as PyTorch's conv2d: multiplication by a doubly block-Toeplitz "
       "matrix. Input (channels, height, width), or (height, width) as one channel. "
       "Weight (out, in/groups, kernel height, kernel width).",
       "conv2d: {channels: 8, kernel: 3, pad: same}",
       Param("channels", positive_int, doc="output channels"),
       Param("kernel", int_or_pair(), doc="kernel size: an integer, or [height, width]"),
       Param("stride", int_or_pair(), 1, "step between outputs: an integer, or [height, width]"),
       Param("pad", int_or_pair("same", "valid", minimum=0), 0,
             "zeros added at each edge: an integer, [height, width], same (output size = input "
             "size, stride 1; an odd extra zero goes bottom and right, as PyTorch) or valid (= 0)"),
       Param("dilation", int_or_pair(), 1, "spacing between kernel taps: an integer, or "
             "[height, width]"),
       Param("bias", boolean, True, "add a learned bias per output channel"),
       GROUPS, _IMPL, linear=True, matrix=_toeplitz_of(2), onnx=_conv_onnx(2))
def conv2d(ctx, x, cfg):
    return _conv(ctx, x, cfg, 2)

