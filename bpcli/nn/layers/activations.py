"""Activations: each the engine primitive of the same name, elementwise."""

from __future__ import annotations

import numpy as np

from ...core.fields import Param, nonneg_float
from .table import layer


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

