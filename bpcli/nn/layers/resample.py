"""Layers that enlarge: transposed convolution and upsampling, as PyTorch's ConvTranspose and interpolate.

A transposed convolution's matrix is the transpose of the matching convolution's banded Toeplitz
matrix (the lecture's view, ``impl: toeplitz``); an upsampling is a fixed sparse matrix U.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...engine.resample_rules import interpolation_matrix
from ...engine.rules import PRIMITIVES
from ...core.fields import Invalid, Param, boolean, nonneg_int, one_of, positive_int
from .conv import GROUPS, check_groups
from .geometry import AXES, int_or_pair, per_axis
from .table import layer


# ---------------------------------------------------------------- transposed convolution
class TransposedGeometry(NamedTuple):
    """A transposed convolution on one sample (in_channels, *size), with PyTorch's padding and
    output_padding per axis."""

    in_channels: int
    size: tuple
    kernel: tuple
    stride: tuple
    dilation: tuple
    pad: tuple
    output_pad: tuple
    groups: int

    @property
    def out_size(self) -> tuple:
        """(n - 1)·stride - 2·pad + dilation·(kernel - 1) + output_pad + 1 per axis (PyTorch's
        ConvTranspose1d/2d docs)."""
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, d, p, op
                     in zip(self.size, self.kernel, self.stride, self.dilation, self.pad,
                            self.output_pad))

    @property
    def conv_pad(self) -> tuple:
        """(lo, hi) zeros of the convolution it transposes, which maps out_size back to size:
        pad at both ends, less the output_pad positions at the end (hi < 0 shortens)."""
        return tuple((p, p - op) for p, op in zip(self.pad, self.output_pad))

    @property
    def grouped(self) -> dict:
        return {"groups": self.groups} if self.groups > 1 else {}


def transposed_geometry(nd: int, cfg: dict, sample_shape) -> TransposedGeometry:
    """The geometry of an nd-dimensional transposed convolution with fields ``cfg``; a sample
    with one axis fewer than (channels, *spatial) has one channel. Errors are :class:`Invalid`
    naming the field at fault, with PyTorch's rules: output_pad smaller than stride or dilation."""
    sample = tuple(sample_shape)
    if len(sample) == nd:
        sample = (1, *sample)
    if len(sample) != nd + 1:
        want = "(channels, length)" if nd == 1 else "(channels, height, width) or (height, width)"
        raise Invalid(f"needs input of shape {want}, got {tuple(sample_shape)}")
    kernel, stride, dilation, pad, output_pad = (
        per_axis(cfg[k], nd) for k in ("kernel", "stride", "dilation", "pad", "output_pad"))
    check_groups(cfg["groups"], sample[0], cfg["channels"])
    for axis, op, s, d in zip(AXES[nd], output_pad, stride, dilation):
        if op >= s and op >= d:
            raise Invalid(f"output_pad{axis} {op} must be smaller than the stride ({s}) or the "
                          f"dilation ({d}), as in PyTorch", key="output_pad")
    g = TransposedGeometry(sample[0], sample[1:], kernel, stride, dilation, pad, output_pad,
                           cfg["groups"])
    for axis, n in zip(AXES[nd], g.out_size):
        if n < 1:
            raise Invalid(f"pad crops the whole output{axis}: {n} positions would be left",
                          key="pad")
    return g


def _conv_transpose(ctx, x, cfg, nd):
    """PyTorch's conv_transpose1d/2d with a weight (in, out/groups, *kernel).

    impl fast: the conv_transpose primitive (conv's input gradient). impl toeplitz: y = T(w)ᵀ x
    with T(w) the banded Toeplitz matrix of the convolution it transposes, built in the graph."""
    g = transposed_geometry(nd, cfg, x.shape[1:])
    if x.ndim == nd + 1:  # no channel axis: one channel
        x = x.reshape(None, 1, *g.size)
    out_group = cfg["channels"] // g.groups
    w = ctx.param("weight", (g.in_channels, out_group, *g.kernel),
                  fan_in=out_group * int(np.prod(g.kernel)))   # torch's fan_in: weight.size(1)·K
    if cfg["impl"] == "toeplitz":
        T = ctx.b.apply("toeplitz", w, size=g.out_size, pad=g.conv_pad, stride=g.stride,
                        dilation=g.dilation, **g.grouped)          # (in·positions, out·out_size)
        y = x.reshape(None, g.in_channels * int(np.prod(g.size))) @ T
        y = y.reshape(None, cfg["channels"], *g.out_size)
    else:
        y = ctx.b.apply("conv_transpose", x, w, stride=g.stride, dilation=g.dilation, pad=g.pad,
                        output_pad=g.output_pad, **g.grouped)
    if cfg["bias"]:
        b = ctx.param("bias", (cfg["channels"],), fan_in=None)
        y = y + b.reshape(cfg["channels"], *(1,) * nd)
    return y


def _conv_transpose_matrix(nd):
    """T(w)ᵀ: the transpose of the matching convolution's banded Toeplitz matrix."""
    def matrix(cfg, sample_shape, weight):
        g = transposed_geometry(nd, cfg, sample_shape)
        return PRIMITIVES["toeplitz"].impl(weight, size=g.out_size, pad=g.conv_pad,
                                           stride=g.stride, dilation=g.dilation, **g.grouped).T
    return matrix


def _conv_transpose_onnx(nd):
    """ONNX ``ConvTranspose`` with explicit strides, dilations and group; ``Unsqueeze`` adds a
    missing channel axis, and ``impl: toeplitz`` is the same operator. ONNX Runtime and the
    onnx reference refuse an output_padding of stride or more, which PyTorch allows under a
    larger dilation, so output_pad goes first into a smaller end pad (pads [pad, pad -
    output_pad]), the rest into output_padding, or where that is stride or more into zeros
    added by ``Pad`` before the bias is added (``Add``)."""
    def lower(g, x, cfg, params):
        geo = transposed_geometry(nd, cfg, x.shape[1:])
        if len(x.shape) == nd + 1:
            x = g.op("Unsqueeze", x, g.const(np.array([1], np.int64), "axes"))
        extra = [max(op - p, 0) for p, op in zip(geo.pad, geo.output_pad)]
        fits = all(e < s for e, s in zip(extra, geo.stride))
        bias = [g.const(params["bias"], "bias")] if cfg["bias"] else []
        y = g.op("ConvTranspose", x, g.const(params["weight"], "weight"), *(bias if fits else []),
                 kernel_shape=geo.kernel, strides=geo.stride, dilations=geo.dilation,
                 pads=list(geo.pad) + [max(p - op, 0) for p, op in zip(geo.pad, geo.output_pad)],
                 output_padding=extra if fits else [0] * nd,
                 **({"group": geo.groups} if geo.groups > 1 else {}))
        if fits:
            return y
        ends = [0, 0] + extra                    # pads: every axis's begin, then every end
        y = g.op("Pad", y, g.const(np.array([0] * (nd + 2) + ends, np.int64), "pads"))
        if bias:
            y = g.op("Add", y, g.const(params["bias"].reshape(-1, *(1,) * nd), "bias"))
        return y
    return lower


def _transposed_fields(nd):
    pair = "" if nd == 1 else ", or [height, width]"
    size, zeros = (positive_int, nonneg_int) if nd == 1 else (int_or_pair(), int_or_pair(minimum=0))
    return (Param("channels", positive_int, doc="output channels"),
            Param("kernel", size, doc=f"kernel size{pair}"),
            Param("stride", size, 1, f"step between input positions in the output{pair}"),
            Param("pad", zeros, 0, f"positions cropped at each edge of the output (PyTorch's "
                                   f"padding){pair}"),
            Param("output_pad", zeros, 0, f"positions added at the end of the output (PyTorch's "
                                          f"output_padding), smaller than stride or dilation{pair}"),
            Param("dilation", size, 1, f"spacing between kernel taps{pair}"),
            Param("bias", boolean, True, "add a learned bias per output channel"),
            GROUPS,
            Param("impl", one_of("fast", "toeplitz"), "fast",
                  "fast: the convolution's input gradient (strided windows and one matrix "
                  "product); toeplitz: y = T(w)ᵀ x with T(w) the explicit banded Toeplitz matrix "
                  "of the convolution it transposes (the lecture's view: slow, same numbers)"))


@layer("conv1d_transpose",
       "1-D transposed convolution, as PyTorch's ConvTranspose1d: multiplication by the transpose "
       "of a convolution's banded Toeplitz matrix (the gradient of conv1d with respect to its "
       "input). Output length (n - 1)·stride - 2·pad + dilation·(kernel - 1) + output_pad + 1. "
       "Weight (in, out/groups, kernel).",
       "conv1d_transpose: {channels: 8, kernel: 4, stride: 2, pad: 1}",
       *_transposed_fields(1), weight_axes=(1, 0), linear=True,
       matrix=_conv_transpose_matrix(1), onnx=_conv_transpose_onnx(1))
def conv1d_transpose(ctx, x, cfg):
    return _conv_transpose(ctx, x, cfg, 1)


@layer("conv2d_transpose",
       "2-D transposed convolution, as PyTorch's ConvTranspose2d: multiplication by the transpose "
       "of a convolution's doubly block-Toeplitz matrix. Input (channels, height, width), or "
       "(height, width) as one channel; output size per axis (n - 1)·stride - 2·pad + "
       "dilation·(kernel - 1) + output_pad + 1. Weight (in, out/groups, kernel height, kernel "
       "width).",
       "conv2d_transpose: {channels: 8, kernel: 2, stride: 2}",
       *_transposed_fields(2), weight_axes=(1, 0), linear=True,
       matrix=_conv_transpose_matrix(2), onnx=_conv_transpose_onnx(2))
def conv2d_transpose(ctx, x, cfg):
    return _conv_transpose(ctx, x, cfg, 2)


# ---------------------------------------------------------------- upsampling
_MODE = {"nearest": "nearest", "bilinear": "linear"}   # the field's word -> the primitive's


def _upsample(ctx, x, cfg, nd):
    """The last nd axes enlarged by scale (the upsample primitive), any axes before them kept."""
    if x.ndim - 1 < nd:
        raise Invalid(f"needs input with at least {nd} axes, got {tuple(x.shape[1:])}")
    return ctx.b.apply("upsample", x, scale=per_axis(cfg["scale"], nd), mode=_MODE[cfg["mode"]])


def _upsample_matrix(nd):
    """U for one flattened sample: the identity on the leading axes ⊗ one interpolation matrix
    per enlarged axis (Kronecker products in C order)."""
    def matrix(cfg, sample_shape, weight=None):
        U = np.eye(int(np.prod(sample_shape[:-nd], dtype=np.int64)))
        for n, s in zip(sample_shape[-nd:], per_axis(cfg["scale"], nd)):
            U = np.kron(U, interpolation_matrix(n, s, _MODE[cfg["mode"]]))
        return U
    return matrix


def _upsample_onnx(nd):
    """ONNX ``Resize`` (opset 13: roi left out) with its scales, 1 on the leading axes: nearest
    as floor(i / scale) (asymmetric, nearest_mode floor), bilinear as half_pixel linear, both
    PyTorch's. Resize takes its scales in float32 only: a ``Cast`` makes them so in float64."""
    def lower(g, x, cfg, params):
        scale = per_axis(cfg["scale"], nd)
        scales = g.const(np.array([1.0] * (len(x.shape) - nd) + list(scale)), "scales")
        if g.dtype != np.float32:
            scales = g.op("Cast", scales, to=1)   # TensorProto.FLOAT
        if cfg["mode"] == "nearest":
            return g.op("Resize", x, "", scales, mode="nearest", nearest_mode="floor",
                        coordinate_transformation_mode="asymmetric")
        return g.op("Resize", x, "", scales, mode="linear",
                    coordinate_transformation_mode="half_pixel")
    return lower


def _upsample_fields(nd):
    scale = positive_int if nd == 1 else int_or_pair()
    what = "the length" if nd == 1 else "height and width: an integer, or [height, width]"
    return (Param("scale", scale, 2, f"whole factor to enlarge {what}"),
            Param("mode", one_of("nearest", "bilinear"), "nearest",
                  "nearest: each element copied scale times; bilinear: interpolated between the "
                  "two nearest (per axis), as PyTorch's interpolate with align_corners=False "
                  + ("(its mode 'linear')" if nd == 1 else "")))


@layer("upsample1d",
       "Enlarges the last axis by a whole factor, as PyTorch's interpolate (nn.Upsample): a fixed "
       "sparse matrix U, y = U x. Any axes before it (channels) are kept.",
       "upsample1d: {scale: 2}", *_upsample_fields(1), linear=True,
       matrix=_upsample_matrix(1), onnx=_upsample_onnx(1))
def upsample1d(ctx, x, cfg):
    return _upsample(ctx, x, cfg, 1)


@layer("upsample2d",
       "Enlarges the last two axes (height, width) by whole factors, as PyTorch's interpolate "
       "(nn.Upsample): a fixed sparse matrix U, y = U x, one interpolation matrix per axis. Any "
       "axes before them (channels) are kept.",
       "upsample2d: {scale: 2, mode: bilinear}", *_upsample_fields(2), linear=True,
       matrix=_upsample_matrix(2), onnx=_upsample_onnx(2))
def upsample2d(ctx, x, cfg):
    return _upsample(ctx, x, cfg, 2)
