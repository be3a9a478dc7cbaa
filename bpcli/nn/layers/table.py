"""The layer table: :class:`LayerDef` (a layer's fields, builder and facts) and ``LAYERS``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...core.fields import Param, Table


@dataclass(frozen=True)
class LayerDef:
    name: str
    doc: str
    example: str
    build: Callable       # (ctx, x, fields) -> output Var: emits the layer's primitives; a layer
    #                       that merges (``merges``) gets the list of its inputs as x
    params: tuple[Param, ...] = ()
    merges: bool = False  # takes its input and the outputs its ``with`` field names (add, concat)
    weight_axes: tuple[int, int] = (0, 1)  # the (out, in) axes of its weight: (1, 0) for a
    #                                        transposed convolution's (in, out, *kernel), as PyTorch
    modal: bool = False   # computes differently while training (ctx.training)
    linear: bool = False  # with its bias zeroed, a linear map of its input: gradcheck's dot-test
    matrix: Callable | None = None  # (fields, sample shape, weight) -> the explicit matrix T with
    #                                 y = T x for one flattened sample (bias left out), if it has one
    onnx: Callable | str | None = None  # (g, x, fields, params) -> y: the layer as ONNX operators
    #                                     (module docstring); a str says why it has no ONNX form


LAYERS = Table("layer")


def layer(name, doc, example, *params, **facts):
    """Decorate a builder ``build(ctx, x, fields)`` to add it to ``LAYERS`` as ``name``; ``facts``
    are the other :class:`LayerDef` fields (merges, weight_axes, modal, linear, matrix, onnx)."""
    def register(build):
        LAYERS.add(LayerDef(name, doc, example, build, tuple(params), **facts))
        return build
    return register
