"""Layers that merge branches: ``add`` (a residual block's skip connection) and ``concat`` (a
U-Net's). Each takes its input and the outputs its ``with`` field names
(:mod:`bpcli.nn.network` wires them), so its builder gets the list of them."""

from __future__ import annotations

import re

from ...core.fields import Invalid, Param, quoted, with_json_schema
from .table import layer

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_\-]*"   # a layer's name (the JSON Schema's too)
_NAME = re.compile(NAME_PATTERN + r"\Z")


@with_json_schema({"type": "string", "pattern": f"^{NAME_PATTERN}$"})
def layer_name(v):
    """A layer's name: letters, digits, _ and -, starting with a letter or _."""
    if not isinstance(v, str) or not _NAME.match(v):
        raise Invalid(f"must be a name of letters, digits, _ and - starting with a letter "
                      f"(enc1, skip_2), got {quoted(v)}")
    return v


@with_json_schema({"type": "array", "items": {"type": "string"}, "minItems": 1})
def layer_names(v):
    """A non-empty list of layer names (one name alone is a list of one)."""
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items:
        raise Invalid(f"must be a non-empty list of layer names, [enc1, ...], got {quoted(v)}")
    for item in items:
        layer_name(item)
    return list(items)


WITH = Param("with", layer_names, doc="the earlier layers whose outputs it takes besides its "
             "input, by name (input is the network's input): a list, [enc1, ...]")


def _add_onnx(g, xs, cfg, params):
    """ONNX ``Add``, one node per input after the first."""
    y = xs[0]
    for x in xs[1:]:
        y = g.op("Add", y, x)
    return y


@layer("add",
       "Elementwise sum of its input and the outputs ``with`` names, as a residual block's "
       "skip connection (He et al., 2016: y = F(x) + x); the shapes must agree exactly (no "
       "broadcasting). Its gradient reaches every input unchanged.",
       "add: {with: [block1]}", WITH, merges=True, onnx=_add_onnx)
def add(ctx, xs, cfg):
    if any(x.shape != xs[0].shape for x in xs[1:]):
        # compilation's message names the shapes: "add cannot take its inputs of shapes ..."
        raise Invalid("shapes must agree entry for entry (add does not broadcast)", key="with")
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return y


@layer("concat",
       "Its input, then the outputs ``with`` names in the order given, joined along the channel "
       "axis (the first axis of a sample: channels of (C, H, W), features of (F,)), as a "
       "U-Net's skip connections (Ronneberger et al., 2015) and torch.cat(dim=1); every other "
       "axis must agree.",
       "concat: {with: [enc1]}", WITH, merges=True,
       onnx=lambda g, xs, cfg, params: g.op("Concat", *xs, axis=1))
def concat(ctx, xs, cfg):
    if any(x.ndim != xs[0].ndim or x.shape[2:] != xs[0].shape[2:] for x in xs[1:]):
        raise Invalid("every axis but the channel axis (the first of a sample) must agree",
                      key="with")
    y = xs[0]
    for x in xs[1:]:
        y = ctx.b.apply("concat", y, x, axis=1)
    return y
