"""Dense (the lecture's full matrix W3) and flatten."""

from __future__ import annotations

import numpy as np

from ...core.fields import Param, boolean, positive_int
from .table import layer


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

