"""Layers: the names a spec's ``layers:`` list uses, each a table entry of fields and a builder.

A builder receives the layer's input :class:`~bpcli.engine.Var` (batch axis
first, ``None`` as its size) and emits primitives; shapes are inferred as it
goes, so an impossible layer is reported before any data is read. Weights are
laid out as PyTorch's and named ``layers.<i>.weight`` / ``layers.<i>.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .schema import Invalid, Param, boolean, int_or, positive_int


@dataclass(frozen=True)
class LayerDef:
    name: str
    params: tuple[Param, ...]
    doc: str
    example: str
    build: Callable


LAYERS: dict[str, LayerDef] = {}


def layer(name, doc, example, *params):
    def register(build):
        LAYERS[name] = LayerDef(name, tuple(params), doc, example, build)
        return build
    return register


def _same_pad(kernel, dilation):
    # PyTorch's padding='same': the extra zero, when the total is odd, goes on the right
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


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
       Param("bias", boolean, True, "add a learned bias per output channel"))
def conv1d(ctx, x, cfg):
    if x.ndim == 2:  # input [length]: one channel
        x = x.reshape(None, 1, x.shape[1])
    if x.ndim != 3:
        raise Invalid(f"needs input of shape (channels, length), got {x.shape[1:]}")
    c_in, k, s, d = x.shape[1], cfg["kernel"], cfg["stride"], cfg["dilation"]
    pad = cfg["pad"]
    if pad == "same":
        if s != 1:
            raise Invalid(f"pad: same needs stride 1 (as in PyTorch), got stride {s}", key="pad")
        lo, hi = _same_pad(k, d)
    else:
        lo = hi = 0 if pad == "valid" else pad
    if x.shape[2] + lo + hi < d * (k - 1) + 1:
        raise Invalid(f"kernel {k} (dilation {d}) is longer than its padded input "
                      f"({x.shape[2]} + {lo + hi} padding = {x.shape[2] + lo + hi})", key="kernel")
    w = ctx.param("weight", (cfg["channels"], c_in, k), fan_in=c_in * k)
    if lo or hi:
        x = ctx.b.apply("pad", x, widths=((0, 0), (0, 0), (lo, hi)))
    y = ctx.b.apply("conv", x, w, stride=(s,), dilation=(d,))               # (N, out, Lo)
    if cfg["bias"]:
        y = y + ctx.param("bias", (cfg["channels"],), fan_in=None).reshape(cfg["channels"], 1)
    return y


@layer("dense",
       "Fully connected: y = W h + b with W a full matrix (units, in_features), the lecture's W3; "
       "the input is flattened in C order first, as PyTorch's reshape(N, -1).",
       "dense: {units: 10}",
       Param("units", positive_int, doc="output features"),
       Param("bias", boolean, True, "add a learned bias per unit"))
def dense(ctx, x, cfg):
    if x.ndim != 2:
        x = flatten(ctx, x, {})
    w = ctx.param("weight", (cfg["units"], x.shape[1]), fan_in=x.shape[1])
    y = x @ w.T
    if cfg["bias"]:
        y = y + ctx.param("bias", (cfg["units"],), fan_in=None)
    return y


@layer("flatten", "Flatten each sample to a vector, in C order (channels first).", "flatten")
def flatten(ctx, x, cfg):
    return x.reshape(None, int(np.prod(x.shape[1:])))


def _elementwise(name, doc):
    @layer(name, doc, name)
    def build(ctx, x, cfg):
        return ctx.b.apply(name, x)
    return build


_elementwise("relu", "max(0, x), elementwise; derivative I[x > 0] (0 at exactly 0, as PyTorch).")
_elementwise("sigmoid", "1 / (1 + exp(-x)), elementwise.")
_elementwise("tanh", "tanh(x), elementwise.")
_elementwise("softplus", "ln(1 + exp(x)), elementwise, computed without overflow.")
