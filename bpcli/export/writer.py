"""The graph writer the layers' ONNX lowerings emit nodes through (``LayerDef.onnx``).

It wraps the ``onnx`` package's helpers (``onnx.helper.make_node``, ``numpy_helper.from_array``)
so that :mod:`bpcli.nn` never imports onnx, names what it adds after the layer it is writing
(``layers.2.weight``, as bpcli's own parameter names), and remembers which layer wrote each
node, so an opset too old for one of them is refused naming the operator and the layer.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import InputError

# The ONNX opset a node needs is its operator's first version, or later where bpcli relies on an
# input or attribute added since: count_include_pad (AveragePool 7), Gemm without C (11),
# BatchNormalization without is_test (9), Reshape's shape and Unsqueeze's axes as inputs (5, 13),
# multidirectional broadcasting (Add, Sub, Mul, Div 7; Min 8); "Op.attribute": an attribute's own
# first opset, asked for only by a node that sets it (the pools' ceil_mode, 10).
FORM_SINCE = {"AveragePool": 7, "Gemm": 11, "BatchNormalization": 9, "Reshape": 5,
              "Unsqueeze": 13, "Add": 7, "Sub": 7, "Mul": 7, "Div": 7, "Min": 8, "Greater": 7,
              "MaxPool.ceil_mode": 10, "AveragePool.ceil_mode": 10,
              "Resize": 13, "Pad": 11}  # Resize without its roi, Pad's pads as an input


class Value(NamedTuple):
    """A tensor of the graph: its name and shape (batch axis first, ``None``)."""

    name: str
    shape: tuple


@cache
def first_opset(op_type: str) -> int:
    """The first opset of the default domain with operator ``op_type``."""
    return min(s.since_version for s in onnx.defs.get_all_schemas_with_history()
               if s.name == op_type and s.domain == "")


class GraphWriter:
    """Nodes and initializers of one ONNX graph, for a model of ``dtype`` at ``opset``."""

    def __init__(self, dtype, opset: int):
        self.dtype, self.opset = np.dtype(dtype), opset
        self.nodes, self.initializers, self.origins, self.since = [], [], [], []
        self.prefix, self.origin = "", ""
        self._names: set[str] = set()

    def scope(self, prefix: str, origin: str) -> None:
        """Name what follows ``prefix`` + name (``layers.2.``) and credit it to ``origin``."""
        self.prefix, self.origin = prefix, origin

    def _fresh(self, name: str) -> str:
        name, k = self.prefix + name, 1
        unique = name
        while unique in self._names:
            k += 1
            unique = f"{name}_{k}"
        self._names.add(unique)
        return unique

    def op(self, op_type: str, *inputs, since: int = 1, **attributes) -> str:
        """Add a node ``op_type(*inputs)`` (names or :class:`Value`) and return its output's name.
        ``since``: the opset the form written here needs, where the caller knows better than
        ``FORM_SINCE`` (Softmax on axis 1 of a per-pixel output: 13, when it became one axis's)."""
        out = self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, [getattr(v, "name", v) for v in inputs], [out],
                                           name=out, **attributes))
        self.origins.append(self.origin)
        self.since.append(since)
        return out

    def const(self, array, name: str) -> str:
        """Add an initializer holding ``array`` (floating arrays in the model's dtype)."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(self.dtype)
        unique = self._fresh(name)
        self.initializers.append(numpy_helper.from_array(array, unique))
        return unique

    def exact(self, value: float) -> bool:
        """Whether ONNX's float32 attribute holds ``value`` as the model computes with it: always
        in float32, in float64 only if float32 represents ``value`` exactly."""
        return self.dtype == np.float32 or float(np.float32(value)) == float(value)

    def rename(self, name: str, new: str) -> str:
        """Give the tensor ``name`` the name ``new`` (a graph output's); a graph input or an
        initializer is passed on by an ``Identity`` node instead."""
        for node in self.nodes:
            if name in node.output:
                node.output[list(node.output).index(name)] = new
                for other in self.nodes:
                    other.input[:] = [new if i == name else i for i in other.input]
                return new
        self.nodes.append(helper.make_node("Identity", [name], [new], name=new))
        self.origins.append(self.origin)
        self.since.append(1)
        return new

    def check_opset(self) -> None:
        """Refuse an opset too old for a node written, naming the operator and its layer."""
        for node, origin, since in zip(self.nodes, self.origins, self.since):
            needs = max(first_opset(node.op_type), FORM_SINCE.get(node.op_type, 1), since,
                        *(FORM_SINCE.get(f"{node.op_type}.{a.name}", 1) for a in node.attribute))
            if needs > self.opset:
                raise InputError(f"opset {self.opset} is too old for the ONNX operator "
                                 f"{node.op_type} that {origin} is written with: it needs opset "
                                 f"{needs} or newer", path="--opset")
