"""Spec -> static graph: one :class:`~bpcli.engine.Program` with inputs X, y and the parameters.

Each layer's builder emits primitives tagged with the layer they came from
(``layers[2] (conv1d)``), so pictures and errors can name it. Every shape is
known when this returns; a layer that cannot take its input is reported at its
line in the spec, with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import Builder, Program
from .layers import LAYERS
from .losses import LOSSES, absolute
from .schema import Invalid
from .spec import Spec


@dataclass(frozen=True)
class ParamInfo:
    name: str
    shape: tuple
    fan_in: int | None  # None: a bias, initialized to zero
    layer: int


class _LayerContext:
    def __init__(self, b: Builder, index: int, params: list):
        self.b, self.index, self._params = b, index, params

    def param(self, pname, shape, fan_in):
        name = f"layers.{self.index}.{pname}"
        self._params.append(ParamInfo(name, tuple(shape), fan_in, self.index))
        return self.b.input(name, shape)


def _penalty(b, weights, l2, l1):
    """l2 Σ w² + l1 Σ |w| over every entry of every weight tensor (not biases)."""
    terms = []
    for w in weights:
        if l2:
            terms.append(l2 * (w ** 2).sum())
        if l1:
            terms.append(l1 * absolute(b, w).sum())
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def compile_spec(spec: Spec) -> tuple[Program, list[ParamInfo]]:
    """The spec's network and loss as one program: outputs ``output`` (N, ...), ``data_loss``
    (the loss's value), ``loss`` (the scalar trained on) and, with regularization, ``reg_loss``.

    The penalty is built from primitives like the loss, so its gradient comes from the same
    backward pass; without regularization ``loss`` is ``data_loss`` and no equation is added.
    """
    b = Builder()
    params: list[ParamInfo] = []
    x = b.input("X", (None, *spec.data["input"]))
    for i, (lname, cfg) in enumerate(spec.layer_list()):
        b.origin = f"layers[{i}] ({lname})"
        try:
            x = LAYERS[lname].build(_LayerContext(b, i, params), x, cfg)
        except (Invalid, ValueError) as e:
            key = getattr(e, "key", None)
            raise spec.error(f"layers[{i}].{lname}.{key}" if key else f"layers[{i}]",
                             f"{lname} cannot take its input of shape {tuple(x.shape[1:])}: {e}") from None
    b.output("output", x)
    loss = LOSSES[spec.data["loss"]["name"]]
    b.origin = f"loss ({loss.name})"
    try:
        loss.check_output(x.shape)
    except Invalid as e:
        raise spec.error("loss", f"{loss.name} {e}") from None
    label_shape = loss.label_shape(x.shape)
    y = b.input("y", label_shape) if label_shape is not None else None
    data_loss = loss.build(b, x, y, spec.data["loss"])
    b.output("data_loss", data_loss)
    reg = spec.data["regularization"]
    weights = [b.inputs[p.name] for p in params if p.fan_in is not None]
    if (reg["l2"] or reg["l1"]) and weights:
        b.origin = "regularization"
        reg_loss = _penalty(b, weights, reg["l2"], reg["l1"])
        b.output("reg_loss", reg_loss)
        b.output("loss", data_loss + reg_loss)
    else:
        b.output("loss", data_loss)
    return b.program(), params
