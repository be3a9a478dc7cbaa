"""Spec -> static graph: one :class:`~bpcli.engine.Program` with inputs X, y and the parameters.

Each layer's builder emits primitives tagged with the layer they came from
(``layers[2] (conv1d)``), so pictures and errors can name it. Every shape is
known when this returns; a layer that cannot take its input is reported at its
line in the spec, with the numbers.

A spec compiles to two programs when a layer behaves differently while training
(dropout, batchnorm): the evaluation program (validation, ``bpcli eval``,
gradcheck) and the training program, which takes a random input per dropout
layer (its mask, drawn by the trainer) and outputs the batch statistics that
update batchnorm's running statistics after each step. Both read the same
parameters and the same model state (``buffers``: running statistics, the
preprocessing statistics), so the engine itself stays deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..engine.program import Builder, Origin, Program, check
from .losses import LOSSES, absolute
from .network import NETWORK_INPUT
from .preprocess import stat_shape
from ..errors import InputError
from ..core.fields import Invalid
from ..core.document import Spec


@dataclass(frozen=True)
class ParamInfo:
    name: str
    shape: tuple
    fan_in: int | None  # None: not drawn by the initializer (a bias, batchnorm's scale)
    layer: int
    start: float = 0.0  # the value an undrawn parameter starts at: 0 for biases, 1 for a scale


@dataclass(frozen=True)
class BufferInfo:
    """Model state that is not trained: read by the graph, saved with the weights, never
    optimized or gradient-checked (batchnorm's running statistics, preprocessing statistics)."""

    name: str
    shape: tuple
    start: float


@dataclass(frozen=True)
class NoiseInfo:
    """A random input of the training program, drawn afresh every step: ``draw(rng, shape)``
    with shape (batch, *shape[1:]) (dropout's keep mask)."""

    name: str
    shape: tuple
    draw: Callable


@dataclass(frozen=True)
class UpdateInfo:
    """After each training step on n samples: ``rule(buffers, stats, n)`` updates this layer's
    buffers in place (by short name) from the training program's outputs ``stats`` (short name
    -> output name); a step needs at least ``min_batch`` samples for it."""

    layer: int
    rule: Callable
    stats: dict
    min_batch: int = 1


@dataclass
class Compiled:
    """What a compiled program needs around it: its parameters, state, random inputs, updates."""

    params: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    noise: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    shapes: list = field(default_factory=list)   # LayerShapes of each layer, in spec order


class _LayerContext:
    """What a layer's builder can declare besides equations: parameters, buffers, random
    inputs (training program only) and updates of its buffers after a training step."""

    def __init__(self, b: Builder, index: int, compiled: Compiled, training: bool):
        self.b, self.index, self.c, self.training = b, index, compiled, training

    def _name(self, pname):
        return f"layers.{self.index}.{pname}"

    def param(self, pname, shape, fan_in, start=0.0):
        name = self._name(pname)
        self.c.params.append(ParamInfo(name, tuple(shape), fan_in, self.index, start))
        return self.b.input(name, shape)

    def buffer(self, pname, shape, start):
        name = self._name(pname)
        self.c.buffers.append(BufferInfo(name, tuple(shape), start))
        return self.b.input(name, shape)

    def noise(self, pname, shape, draw):
        name = self._name(pname)
        self.c.noise.append(NoiseInfo(name, tuple(shape), draw))
        return self.b.input(name, shape)

    def after_step(self, rule, min_batch=1, **stats):
        names = {}
        for short, var in stats.items():
            names[short] = self._name(f"batch_{short}")
            self.b.output(names[short], var)
        self.c.updates.append(UpdateInfo(self.index, rule, names, min_batch))


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


def modal(spec: Spec) -> bool:
    """Whether some layer computes differently while training (dropout, batchnorm)."""
    return any(layer.definition.modal for layer in spec.network)


@dataclass(frozen=True)
class LayerShapes:
    """A compiled layer's shapes (batch axis first, None): its inputs' (its input, then
    ``with``'s) and its output's; and the ids of those values in the program."""

    inputs: tuple
    output: tuple
    input_ids: tuple
    output_id: int


def compile_spec(spec: Spec, training: bool = False,
                 every_error: bool = False) -> tuple[Program, Compiled]:
    """The spec's network and loss as one program: outputs ``output`` (N, ...), ``data_loss``
    (the loss's value), ``loss`` (the scalar trained on) and, with regularization, ``reg_loss``.

    The layers are compiled in spec order, each on the outputs its sources gave
    (:class:`~bpcli.nn.network.Network`), and every layer's input and output shapes are
    recorded in ``Compiled.shapes``, the one place readers (inspect, export, gradcheck) take
    them from. The penalty is built from primitives like the loss, so its gradient comes from
    the same backward pass; without regularization ``loss`` is ``data_loss`` and no equation
    is added. With a ``preprocess`` other than none, the input first becomes
    (X - shift) / scale, the two statistics being buffers. ``training`` compiles the training
    program (module docstring). A layer that cannot take its input raises :class:`InputError`
    at its line; with ``every_error``, every such layer whose inputs are known raises together
    (a graph's independent branches each report theirs). The program is checked (:func:`~bpcli.engine.program.check`)
    before it is returned.
    """
    b = Builder()
    c = Compiled()
    x = b.input("X", (None, *spec.data["input"]))
    if spec.data["preprocess"] != "none":
        b.origin = Origin("preprocess", None, spec.data["preprocess"])
        shape = stat_shape(spec.data["input"])
        c.buffers += [BufferInfo("preprocess.shift", shape, 0.0),
                      BufferInfo("preprocess.scale", shape, 1.0)]
        x = (x - b.input("preprocess.shift", shape)) / b.input("preprocess.scale", shape)
    values, failed = {NETWORK_INPUT: x}, []
    for layer in spec.network:
        b.origin = Origin("layers", layer.index, layer.kind)
        if any(s not in values for s in layer.sources):
            continue  # it takes the output of a layer that failed, reported already
        inputs = [values[s] for s in layer.sources]
        try:
            x = layer.definition.build(_LayerContext(b, layer.index, c, training),
                                       inputs if layer.definition.merges else inputs[0],
                                       layer.fields)
        except (Invalid, ValueError) as e:
            key = getattr(e, "key", None)
            shapes = " and ".join(str(tuple(v.shape[1:])) for v in inputs)
            taken = "its inputs of shapes" if len(inputs) > 1 else "its input of shape"
            failed.append(spec.error(layer.field_path(key), f"{layer.kind} cannot take {taken} "
                                                            f"{shapes}: {e}"))
            if not every_error:
                raise failed[0] from None
            continue
        values[layer.index] = x
        c.shapes.append(LayerShapes(tuple(v.shape for v in inputs), x.shape,
                                    tuple(v.id for v in inputs), x.id))
    if failed:  # every layer that could not take its input, each one whose inputs were known
        raise InputError.several(failed)
    b.output("output", x)
    loss = LOSSES[spec.data["loss"]["name"]]
    b.origin = Origin("loss", None, loss.name)
    try:
        loss.check_output(x.shape)
        label_shape = loss.label_shape(x.shape)
        y = b.input("y", label_shape) if label_shape is not None else None
        data_loss = loss.build(b, x, y, spec.data["loss"])  # fields that must fit the output
    except Invalid as e:
        raise spec.error("loss" if e.key is None else f"loss.{e.key}", f"{loss.name} {e}") from None
    b.output("data_loss", data_loss)
    reg = spec.data["regularization"]
    weights = [b.inputs[p.name] for p in c.params if p.fan_in is not None]
    if (reg["l2"] or reg["l1"]) and weights:
        b.origin = Origin("regularization")
        reg_loss = _penalty(b, weights, reg["l2"], reg["l1"])
        b.output("reg_loss", reg_loss)
        b.output("loss", data_loss + reg_loss)
    else:
        b.output("loss", data_loss)
    prog = b.program(training=training)
    check(prog)
    return prog, c
