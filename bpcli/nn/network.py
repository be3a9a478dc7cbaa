"""The network a spec describes, typed: each layer's index, kind, name, inputs and fields.

A spec's ``layers:`` list is read once into a :class:`Network` (by :func:`network_of`,
during validation), and everything downstream (compilation, ``inspect``, ``gradcheck``,
``export``, the run's messages) reads it instead of the YAML entries, so no reader parses
``layers[3]`` or ``layers.3.weight`` back from a string.

Wiring, as the spec writes it:

- ``name: NAME`` gives a layer's output a name; ``from: NAME`` takes another layer's output
  as the layer's input instead of the previous layer's; ``input`` is the network's input;
- a layer that merges (``add``, ``concat``: ``LayerDef.merges``) also takes the outputs its
  ``with: [NAME, ...]`` names, after its own input;
- a name refers only to an earlier layer, so a network cannot hold a cycle, and the last
  layer's output is the network's output.

A chain (no ``name``, ``from`` or ``with``) reads as it always has: each layer takes the one
before it, the first takes the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.fields import Invalid, Param, did_you_mean
from .layers import LAYERS
from .layers.merge import layer_name

INPUT = "input"  # the name of the network's input
NETWORK_INPUT = -1  # its index among a layer's sources

# the keys every layer may take besides its own fields: how it is wired, not what it computes
WIRING = (
    Param("name", layer_name, None, "a name for this layer's output, so that a later layer's "
          "from or with can take it", implicit=True),
    Param("from", layer_name, None, "the layer whose output this layer takes: an earlier "
          "layer's name, or input (the network's input); default: the previous layer",
          implicit=True),
)
WIRING_KEYS = ("name", "from", "with")  # read into a Layer's name and sources, not its fields


@dataclass(frozen=True)
class Layer:
    """One layer of a :class:`Network`.

    ``kind`` names its definition in ``LAYERS``; ``fields`` are its own fields, every default
    filled in (wiring keys left out); ``sources`` the layers whose outputs it takes, in order
    (:data:`NETWORK_INPUT` for the network's input): its input, then ``with``'s.
    """

    index: int
    kind: str
    fields: dict
    name: str | None = None
    sources: tuple[int, ...] = (NETWORK_INPUT,)

    @property
    def definition(self):
        return LAYERS[self.kind]

    @property
    def path(self) -> str:
        """Its key path in the spec: ``layers[3]``."""
        return f"layers[{self.index}]"

    @property
    def prefix(self) -> str:
        """What its parameters' and buffers' names start with: ``layers.3.``."""
        return f"layers.{self.index}."

    def field_path(self, key: str | None = None) -> str:
        """The key path of one of its fields (``layers[3].conv2d.kernel``), or of the layer."""
        return f"{self.path}.{self.kind}.{key}" if key else self.path

    def __str__(self) -> str:
        """``layers[3] (conv2d)``, or ``layers[3] enc1 (conv2d)`` for a named layer."""
        return f"{self.path} {self.name} ({self.kind})" if self.name else f"{self.path} ({self.kind})"


@dataclass(frozen=True)
class Network:
    """The layers in spec order; the last one's output is the network's output."""

    layers: tuple[Layer, ...]
    names: dict = field(default_factory=dict)   # name -> index

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i) -> Layer:
        return self.layers[i]

    @property
    def is_chain(self) -> bool:
        """Whether every layer takes the one before it and nothing else."""
        return all(layer.sources == (previous(layer.index),) for layer in self.layers)

    def source_name(self, source: int) -> str:
        """How a source is named in messages: ``input``, ``enc1`` or ``layers[2]``."""
        if source == NETWORK_INPUT:
            return INPUT
        layer = self.layers[source]
        return layer.name or layer.path


def previous(index: int) -> int:
    """The source a layer takes when its spec says nothing: the layer before it, or the network's
    input for the first."""
    return index - 1 if index else NETWORK_INPUT


def entry_parts(entry) -> tuple[str, dict]:
    """A resolved ``layers:`` entry (a bare name or a one-key mapping) -> (kind, fields as given)."""
    if isinstance(entry, dict):
        kind, given = next(iter(entry.items()))
        return kind, dict(given or {})
    return entry, {}


def full_fields(kind: str, given: dict) -> dict:
    """A layer's own fields with every default filled in, its wiring keys left out.

    Fields marked ``implicit`` are left out of a resolved spec at their default (so specs
    written before the field existed keep their fingerprint); the builders get them here.
    """
    own = {k: v for k, v in given.items() if k not in WIRING_KEYS}
    defaults = {p.name: p.default for p in LAYERS[kind].params if p.implicit and p.name not in own}
    return {**own, **defaults} if defaults else own


def network_of(entries, report=None) -> Network:
    """Resolved ``layers:`` entries -> :class:`Network`, every wiring mistake reported.

    ``report(path, message)`` receives each mistake (a name defined twice or called
    ``input``, a ``from`` or ``with`` naming no earlier layer: unknown, or defined later);
    without it the first raises :class:`Invalid`. A source that is wrong stands as the
    previous layer, so one mistake is reported once.
    """
    def complain(path, message):
        if report is None:
            raise Invalid(f"{path}: {message}")
        report(path, message)

    layers, names = [], {}
    later = {}  # every name the spec defines -> its index, to tell "defined later" from "unknown"
    for i, entry in enumerate(entries):
        kind, given = entry_parts(entry)
        if given.get("name") is not None:
            later.setdefault(given["name"], i)
    for i, entry in enumerate(entries):
        kind, given = entry_parts(entry)
        path = f"layers[{i}].{kind}"

        def source(name, key):
            if name == INPUT:
                return NETWORK_INPUT
            if name in names:
                return names[name]
            if later.get(name) == i:
                complain(key, f"{name!r} is this layer's own name: a layer takes only earlier "
                              f"layers' outputs (a network holds no cycle)")
            elif name in later:
                complain(key, f"{name!r} is the name of layers[{later[name]}], which comes after "
                              f"this layer: a layer takes only earlier layers' outputs (a network "
                              f"holds no cycle)")
            else:
                complain(key, f"no earlier layer is named {name!r}{did_you_mean(name, names)}; "
                              f"named so far: {', '.join([INPUT, *names])}")
            return previous(i)

        first = (source(given["from"], f"{path}.from") if given.get("from") is not None
                 else previous(i))
        others = [source(n, f"{path}.with[{k}]") for k, n in enumerate(given.get("with") or [])]
        name = given.get("name")
        if name == INPUT:
            complain(f"{path}.name", "input is the network's input: give this layer another name")
            name = None
        elif name is not None and name in names:
            complain(f"{path}.name", f"the name {name!r} is taken by layers[{names[name]}]; "
                                     f"each layer's name is its own")
            name = None
        if name is not None:
            names[name] = i
        layers.append(Layer(i, kind, full_fields(kind, given), name, (first, *others)))
    return Network(tuple(layers), names)
