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

from .table import LAYERS, LayerDef, layer
# each module registers its layers in LAYERS as it is imported; this order is the table's
from . import conv, pool, dense, activations, modal, resample  # noqa: E402,F401
from . import merge  # noqa: E402,F401

__all__ = ["LAYERS", "LayerDef", "layer"]
