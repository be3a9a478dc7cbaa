"""Layers: the names a spec's ``layers:`` list uses, each a table entry of fields and a builder.

A builder receives the layer's input :class:`~bpcli.engine.Var` (batch axis
first, ``None`` as its size) and emits primitives; shapes are inferred as it
goes, so an impossible layer is reported before any data is read. Weights are
laid out as PyTorch's and named ``layers.<i>.weight`` / ``layers.<i>.bias``.

A *modal* layer (dropout, batchnorm) computes differently while training: its
builder reads ``ctx.training`` and is run once for each of the two programs a
spec then compiles to (see :mod:`bpcli.graph`).

Each layer also says how it is written as standard ONNX operators (``onnx``, for
``bpcli export``): a lowering ``(g, x, fields, params) -> y`` of its evaluation
program. ``x`` has ``.name`` and ``.shape`` (batch axis first, ``None``), ``params``
holds the layer's arrays by short name (``weight``, ``running_mean``, ...), and ``g``
is the exporter's graph writer (:class:`bpcli.export.writer.GraphWriter`):
``g.op(op_type, *inputs, **attributes) -> name`` adds a node, ``g.const(array, name)``
an initializer (floating arrays in the model's dtype), ``g.exact(v)`` says whether a
float attribute holds v exactly in the model's dtype. This module never imports onnx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..engine.rules import PRIMITIVES
from ..spec.fields import (Invalid, Param, Table, with_json_schema, number_json, quoted, boolean, fraction,
                           int_or, nonneg_float, nonneg_int, one_of, optional, positive_float,
                           positive_int)


@dataclass(frozen=True)
class LayerDef:
    name: str
    doc: str
    example: str
    build: Callable       # (ctx, x, fields) -> output Var: emits the layer's primitives
    params: tuple[Param, ...] = ()
    modal: bool = False   # computes differently while training (ctx.training)
    linear: bool = False  # with its bias zeroed, a linear map of its input: gradcheck's dot-test
    matrix: Callable | None = None  # (fields, sample shape, weight) -> the explicit matrix T with
    #                                 y = T x for one flattened sample (bias left out), if it has one
    onnx: Callable | str | None = None  # (g, x, fields, params) -> y: the layer as ONNX operators
    #                                     (module docstring); a str says why it has no ONNX form


LAYERS = Table("layer")


def layer(name, doc, example, *params, **facts):
    """Decorate a builder ``build(ctx, x, fields)`` to add it to ``LAYERS`` as ``name``; ``facts``
    are the other :class:`LayerDef` fields (modal, linear, matrix, onnx)."""
    def register(build):
        LAYERS.add(LayerDef(name, doc, example, build, tuple(params), **facts))
        return build
    return register


def _is_int(v, minimum):
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def int_or_pair(*words, minimum=1):
    """An integer >= minimum (the same along both axes), a pair [height, width] of them, or a word."""
    def check(v):
        if _is_int(v, minimum) or v in words:
            return v
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(n, minimum) for n in v):
            return list(v)
        raise Invalid(f"must be an integer >= {minimum}, a pair [height, width] of them"
                      + "".join(f" or {w}" for w in words) + f", got {v!r}")
    return check


def _per_axis(v, nd):
    return tuple(v) if isinstance(v, list) else (v,) * nd


def _same_pad(kernel, dilation):
    # PyTorch's padding='same': the extra zero, when the total is odd, goes on the right
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


class ConvGeometry(NamedTuple):
    """A convolution layer on one sample: input (channels, *size), zeros pad[i] = (lo, hi) per axis."""

    in_channels: int
    size: tuple
    kernel: tuple
    stride: tuple
    dilation: tuple
    pad: tuple

    @property
    def out_size(self) -> tuple:
        """Output positions per axis: (n + lo + hi - dilation·(kernel - 1) - 1) // stride + 1."""
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d
                     in zip(self.size, self.pad, self.kernel, self.stride, self.dilation))


_AXES = {1: ("",), 2: (" height", " width")}


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
    kernel, stride, dilation = (_per_axis(cfg[k], nd) for k in ("kernel", "stride", "dilation"))
    if cfg["pad"] == "same":
        if any(s != 1 for s in stride):
            raise Invalid(f"pad: same needs stride 1 (as in PyTorch), got stride {cfg['stride']}",
                          key="pad")
        pad = tuple(_same_pad(k, d) for k, d in zip(kernel, dilation))
    else:
        pad = tuple((p, p) for p in _per_axis(0 if cfg["pad"] == "valid" else cfg["pad"], nd))
    for axis, n, (lo, hi), k, d in zip(_AXES[nd], sample[1:], pad, kernel, dilation):
        if n + lo + hi < d * (k - 1) + 1:
            raise Invalid(f"kernel{axis} {k} (dilation {d}) is longer than its padded input{axis} "
                          f"({n} + {lo + hi} padding = {n + lo + hi})", key="kernel")
    return ConvGeometry(sample[0], sample[1:], kernel, stride, dilation, pad)


def _conv(ctx, x, cfg, nd):
    """Cross-correlation with a weight (out, in, *kernel), as PyTorch's conv1d/conv2d.

    impl fast: pad, then the conv primitive (strided windows times one matrix
    product). impl toeplitz: the lecture's y = T(w) x, with the explicit banded
    matrix T(w) built from the kernel inside the graph, so backpropagation runs
    through the matrix product and then through the matrix's construction.
    """
    g = conv_geometry(nd, cfg, x.shape[1:])
    if x.ndim == len(g.size) + 1:  # no channel axis: one channel
        x = x.reshape(None, 1, *g.size)
    w = ctx.param("weight", (cfg["channels"], g.in_channels, *g.kernel),
                  fan_in=g.in_channels * int(np.prod(g.kernel)))
    if cfg["impl"] == "toeplitz":
        T = ctx.b.apply("toeplitz", w, size=g.size, pad=g.pad, stride=g.stride, dilation=g.dilation)
        y = x.reshape(None, g.in_channels * int(np.prod(g.size))) @ T.T     # (N, out·positions)
        y = y.reshape(None, cfg["channels"], *g.out_size)
    else:
        if any(lo or hi for lo, hi in g.pad):
            x = ctx.b.apply("pad", x, widths=((0, 0), (0, 0)) + g.pad)
        y = ctx.b.apply("conv", x, w, stride=g.stride, dilation=g.dilation)  # (N, out, *out_size)
    if cfg["bias"]:
        b = ctx.param("bias", (cfg["channels"],), fan_in=None)
        y = y + b.reshape(cfg["channels"], *(1,) * len(g.size))
    return y


def _conv_onnx(nd):
    """ONNX ``Conv`` with explicit ``pads`` (begins, then ends: same's odd extra zero at the end,
    as PyTorch; never auto_pad), strides, dilations and the bias as its third input. A sample
    without a channel axis gets one by ``Unsqueeze``, as the builder does. ``impl: toeplitz`` is
    the same operator, so it exports the same."""
    def lower(g, x, cfg, params):
        geo = conv_geometry(nd, cfg, x.shape[1:])
        if len(x.shape) == nd + 1:
            x = g.op("Unsqueeze", x, g.const(np.array([1], np.int64), "axes"))
        bias = [g.const(params["bias"], "bias")] if cfg["bias"] else []
        return g.op("Conv", x, g.const(params["weight"], "weight"), *bias,
                    kernel_shape=geo.kernel, strides=geo.stride, dilations=geo.dilation,
                    pads=[lo for lo, _ in geo.pad] + [hi for _, hi in geo.pad])
    return lower


def _toeplitz_of(nd):
    """The layer's explicit banded (block-)Toeplitz matrix T(w), built by the toeplitz primitive."""
    def matrix(cfg, sample_shape, weight):
        g = conv_geometry(nd, cfg, sample_shape)
        return PRIMITIVES["toeplitz"].impl(weight, size=g.size, pad=g.pad, stride=g.stride,
                                           dilation=g.dilation)
    return matrix


_IMPL = Param("impl", one_of("fast", "toeplitz"), "fast",
              "fast: strided windows times one matrix product; toeplitz: build the explicit banded "
              "Toeplitz matrix T(w) from the kernel and compute y = T(w) x (the lecture's view: "
              "slow, same numbers)")


@layer("conv1d",
       "1-D cross-correlation, as PyTorch's conv1d: multiplication by a banded (block-)Toeplitz "
       "matrix, computed as strided windows times one matrix product. Weight (out, in, kernel).",
       "conv1d: {channels: 8, kernel: 9, pad: same}",
       Param("channels", positive_int, doc="output channels"),
       Param("kernel", positive_int, doc="kernel length"),
       Param("stride", positive_int, 1, "step between outputs"),
       Param("pad", int_or("same", "valid", minimum=0), 0,
             "zeros added at each end: an integer, same (output length = input length, stride 1) "
             "or valid (= 0)"),
       Param("dilation", positive_int, 1, "spacing between kernel taps"),
       Param("bias", boolean, True, "add a learned bias per output channel"),
       _IMPL, linear=True, matrix=_toeplitz_of(1), onnx=_conv_onnx(1))
def conv1d(ctx, x, cfg):
    return _conv(ctx, x, cfg, 1)


@layer("conv2d",
       "2-D cross-correlation, as PyTorch's conv2d: multiplication by a doubly block-Toeplitz "
       "matrix. Input (channels, height, width), or (height, width) as one channel. "
       "Weight (out, in, kernel height, kernel width).",
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
       _IMPL, linear=True, matrix=_toeplitz_of(2), onnx=_conv_onnx(2))
def conv2d(ctx, x, cfg):
    return _conv(ctx, x, cfg, 2)


def _pool_geometry(cfg, nd) -> tuple:
    """(window, stride, pad) per axis of an nd-dimensional pooling layer's fields."""
    size = _per_axis(cfg["size"], nd)
    stride = size if cfg["stride"] is None else _per_axis(cfg["stride"], nd)
    return size, stride, _per_axis(cfg["pad"], nd)


def _pool(ctx, x, cfg, nd, reduce):
    """Windows of the last nd axes (a strided view), reduced by max or mean: pooling as PyTorch's."""
    size, stride, pad = _pool_geometry(cfg, nd)
    if x.ndim - 1 < nd:
        raise Invalid(f"needs input with at least {nd} axes, got {tuple(x.shape[1:])}")
    for axis, n, p, k in zip(_AXES[nd], x.shape[-nd:], pad, size):
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


def _dense_onnx(g, x, cfg, params):
    """ONNX ``Gemm`` with transB=1 (the weight is (units, in), as PyTorch's), after ``Flatten``."""
    if len(x.shape) != 2:
        x = g.op("Flatten", x, axis=1)
    bias = [g.const(params["bias"], "bias")] if cfg["bias"] else []
    return g.op("Gemm", x, g.const(params["weight"], "weight"), *bias, transB=1)


@layer("dense",
       "Fully connected: y = W h + b with W a full matrix (units, in_features), the lecture's W3; "
       "the input is flattened in C order first, as PyTorch's reshape(N, -1).",
       "dense: {units: 10}",
       Param("units", positive_int, doc="output features"),
       Param("bias", boolean, True, "add a learned bias per unit"),
       linear=True, matrix=lambda cfg, sample_shape, weight: weight,
       onnx=_dense_onnx)
def dense(ctx, x, cfg):
    if x.ndim != 2:
        x = flatten(ctx, x, {})
    w = ctx.param("weight", (cfg["units"], x.shape[1]), fan_in=x.shape[1])
    y = x @ w.T
    if cfg["bias"]:
        y = y + ctx.param("bias", (cfg["units"],), fan_in=None)
    return y


@layer("flatten", "Flatten each sample to a vector, in C order (channels first).", "flatten",
       linear=True, onnx=lambda g, x, cfg, params: g.op("Flatten", x, axis=1))
def flatten(ctx, x, cfg):
    return x.reshape(None, int(np.prod(x.shape[1:])))


def _elementwise(name, doc, example=None, *params, onnx):
    """An activation: the primitive of the same name, the layer's fields passed as its parameters;
    ``onnx`` its ONNX operator's name, or a lowering."""
    lower = onnx if callable(onnx) else lambda g, x, cfg, params: g.op(onnx, x)

    @layer(name, doc, example or name, *params, onnx=lower)
    def build(ctx, x, cfg):
        return ctx.b.apply(name, x, **cfg)
    return build


def _negative_part_onnx(op, field, negative):
    """ONNX ``op`` with its float attribute ``alpha`` = the field, where the model's dtype keeps the
    field's value in ONNX's float32 attribute exactly; otherwise, so that a float64 model is not
    exported approximately, ``Where(x > 0, x, negative(g, x, alpha))`` with alpha a float64
    initializer."""
    def lower(g, x, cfg, params):
        if g.exact(cfg[field]):
            return g.op(op, x, alpha=float(cfg[field]))
        alpha = g.const(np.array(cfg[field]), field)
        zero = g.const(np.array(0.0), "zero")
        return g.op("Where", g.op("Greater", x, zero), x, negative(g, x, alpha, zero))
    return lower


_elementwise("relu", "max(0, x), elementwise; derivative I[x > 0] (0 at exactly 0, as PyTorch).",
             onnx="Relu")
_elementwise("leaky_relu", "x for x > 0, slope·x otherwise, elementwise, as PyTorch's leaky_relu; "
             "derivative slope at exactly 0.", "leaky_relu: {slope: 0.1}",
             Param("slope", nonneg_float, 0.01, "slope for x <= 0"),
             onnx=_negative_part_onnx("LeakyRelu", "slope",
                                      lambda g, x, slope, zero: g.op("Mul", x, slope)))
_elementwise("elu", "x for x > 0, alpha·(exp(x) - 1) otherwise, elementwise, as PyTorch's elu; "
             "derivative alpha at exactly 0.", "elu: {alpha: 1.0}",
             Param("alpha", nonneg_float, 1.0,
                   "scale of the negative part: elu(x) -> -alpha as x -> -inf"),
             onnx=_negative_part_onnx("Elu", "alpha", lambda g, x, alpha, zero: g.op(
                 "Mul", alpha, g.op("Sub", g.op("Exp", g.op("Min", x, zero)),
                                    g.const(np.array(1.0), "one")))))
_elementwise("sigmoid", "1 / (1 + exp(-x)), elementwise.", onnx="Sigmoid")
_elementwise("tanh", "tanh(x), elementwise.", onnx="Tanh")
_elementwise("softplus", "ln(1 + exp(x)), elementwise, computed without overflow.",
             onnx="Softplus")


# ---------------------------------------------------------------- layers that train differently
@layer("dropout",
       "Inverted dropout, as torch.nn.Dropout: while training, y = x · mask / (1 - rate) with a "
       "fresh 0/1 mask every step (each entry kept with probability 1 - rate), drawn from the "
       "run's seeded generator and fed to the graph as an input (layers.<i>.mask); in evaluation "
       "(validation, eval, gradcheck, forward) the identity.",
       "dropout: {rate: 0.5}",
       Param("rate", fraction, 0.5, "probability that an entry is zeroed while training, in "
             "[0, 1)"),
       modal=True, onnx=lambda g, x, cfg, params: x)  # evaluation: the identity, no node
def dropout(ctx, x, cfg):
    if not ctx.training or cfg["rate"] == 0:
        return x
    keep = 1.0 - cfg["rate"]
    mask = ctx.noise("mask", x.shape, lambda rng, shape: rng.random(shape) < keep)
    return x * mask * (1.0 / keep)


@with_json_schema(number_json(minimum=0, maximum=1))
def _unit(v):
    f = nonneg_float(v)
    if f > 1:
        raise Invalid(f"must be a number in [0, 1], got {quoted(v)}")
    return f


def _running_statistics(momentum, per_sample):
    """PyTorch's update after a training step on n samples, k = n · per_sample values per channel:

        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var · k / (k - 1)   (unbiased)
    """
    def update(buffers, stats, n):
        k = n * per_sample
        if k < 2:
            raise ValueError(f"batchnorm needs more than 1 value per channel to train, got {k}")
        mean, var = buffers["running_mean"], buffers["running_var"]
        mean[...] = (1 - momentum) * mean + momentum * stats["mean"]
        var[...] = (1 - momentum) * var + momentum * stats["var"] * (k / (k - 1))
    return update


def _batchnorm_onnx(g, x, cfg, params):
    """ONNX ``BatchNormalization`` in inference mode with the running statistics (scale 1 and bias
    0 without ``affine``), on (N, C) and (N, C, *positions) alike. Where ONNX's float32 epsilon
    attribute cannot hold eps exactly in the model's dtype (float64), the same affine map as the
    evaluation program instead: (x - running_mean) · scale + bias, scale = weight / sqrt(running_var
    + eps) per channel, as ``Sub``, ``Mul``, ``Add``."""
    mean, var = params["running_mean"], params["running_var"]
    weight, bias = ((params["weight"], params["bias"]) if cfg["affine"]
                    else (np.ones_like(var), np.zeros_like(var)))
    if g.exact(cfg["eps"]):
        return g.op("BatchNormalization", x, g.const(weight, "weight"), g.const(bias, "bias"),
                    g.const(mean, "running_mean"), g.const(var, "running_var"),
                    epsilon=float(cfg["eps"]))
    per_channel = (-1,) + (1,) * (len(x.shape) - 2)
    scale = ((var + var.dtype.type(cfg["eps"])) ** -0.5 * weight).reshape(per_channel)
    centred = g.op("Sub", x, g.const(mean.reshape(per_channel), "running_mean"))
    y = g.op("Mul", centred, g.const(scale, "scale"))
    return g.op("Add", y, g.const(bias.reshape(per_channel), "bias"))


@layer("batchnorm",
       "Batch normalization, as torch.nn.BatchNorm1d on (N, features) or (N, channels, length) "
       "and BatchNorm2d on (N, channels, height, width): per channel (axis 1), y = (x - mean) / "
       "sqrt(var + eps) · weight + bias. While training, mean and biased var are the batch's, "
       "and the running statistics layers.<i>.running_mean / running_var (start 0 and 1; saved "
       "with the weights, never trained) move toward them after each step, with the unbiased "
       "var; in evaluation the running statistics are used.",
       "batchnorm: {momentum: 0.1}",
       Param("momentum", _unit, 0.1, "weight of the batch in the running statistics, as torch's "
             "momentum: running = (1 - momentum) running + momentum batch"),
       Param("eps", positive_float, 1e-5, "added to the variance under the square root"),
       Param("affine", boolean, True, "learn a scale layers.<i>.weight (starts at 1) and a shift "
             "layers.<i>.bias (starts at 0) per channel"),
       modal=True, onnx=_batchnorm_onnx)
def batchnorm(ctx, x, cfg):
    channels = x.shape[1]
    per_channel = (channels,) + (1,) * (x.ndim - 2)    # broadcasts along axis 1
    axes = (0,) + tuple(range(2, x.ndim))              # a channel's values: samples and positions
    running_mean = ctx.buffer("running_mean", (channels,), 0.0)
    running_var = ctx.buffer("running_var", (channels,), 1.0)
    if cfg["affine"]:
        weight = ctx.param("weight", (channels,), fan_in=None, start=1.0).reshape(per_channel)
        bias = ctx.param("bias", (channels,), fan_in=None).reshape(per_channel)
    if ctx.training:
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        scale = (var + cfg["eps"]) ** -0.5
        per_sample = int(np.prod(x.shape[2:]))  # values of a channel in one sample
        ctx.after_step(_running_statistics(cfg["momentum"], per_sample),
                       min_batch=2 if per_sample == 1 else 1,   # an unbiased var needs 2 values
                       mean=mean.reshape(channels), var=var.reshape(channels))
    else:  # an affine map per channel: the scale and shift are computed on C numbers first
        scale = ((running_var + cfg["eps"]) ** -0.5).reshape(per_channel)
        centred = x - running_mean.reshape(per_channel)
    if cfg["affine"]:
        scale = scale * weight
    y = centred * scale
    return y + bias if cfg["affine"] else y
