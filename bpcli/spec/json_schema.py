"""The spec as a JSON Schema (draft 2020-12), generated from the field tables: ``bpcli schema``.

An editor given this schema (the VS Code YAML extension, or any client of
yaml-language-server) completes keys and names and flags a wrong value while a
spec is typed. It is written from the same :class:`~bpcli.schema.Param` tables
the validator reads, each check contributing the JSON Schema of what it accepts,
so the two cannot drift apart. What a schema cannot say (shapes, a field that
depends on another) is left to ``bpcli validate``.
"""

from __future__ import annotations

import inspect
import json

from .. import __version__
from ..nn.initializers import INITIALIZERS
from ..nn.layers import LAYERS
from ..nn.layers.merge import NAME_PATTERN
from ..nn.network import WIRING
from ..core.fields import Param
from .sections import NAMED, SECTIONS, TOP

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_WHAT = {"init": "initializer", "loss": "loss", "optimizer": "optimizer", "schedule": "schedule"}


def check_json(check) -> dict:
    """The JSON Schema of the values ``check`` accepts; {} (anything) when it declares none."""
    if hasattr(check, "inner"):  # optional(inner)
        return {"anyOf": [check_json(check.inner), {"type": "null"}]}
    if hasattr(check, "json"):
        return dict(check.json)
    if check.__qualname__.startswith("int_or_pair."):
        # layers.int_or_pair: an integer, a pair [height, width] of them, or a word
        seen = inspect.getclosurevars(check).nonlocals
        integer = {"type": "integer", "minimum": seen.get("minimum", 1)}
        options = [integer, {"type": "array", "items": integer, "minItems": 2, "maxItems": 2}]
        if seen.get("words"):
            options.append({"enum": list(seen["words"])})
        return {"anyOf": options}
    return {}


def _field(p: Param) -> dict:
    out = check_json(p.check)
    if p.doc:
        out["description"] = p.doc
    if not p.required:
        out["default"] = p.default
    return out


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _def_name(path: tuple) -> str:
    return "_".join(path)


def _mapping(params, path: tuple = (), extra: dict | None = None) -> dict:
    """An object of these fields, nothing else; nested sections by reference."""
    props = {}
    for p in params:
        sub = path + (p.name,)
        if sub in SECTIONS:
            section = _ref(_def_name(sub))
            props[p.name] = ({"anyOf": [section, {"type": "null"}]} if p.default is None
                             else section)
            props[p.name].update(description=p.doc, default=p.default)
        else:
            props[p.name] = _field(p)
    props.update(extra or {})
    out = {"type": "object", "properties": props, "additionalProperties": False}
    required = [p.name for p in params if p.required]
    if required:
        out["required"] = required
    return out


def _named(table, what: str, extra: dict | None = None) -> dict:
    """A name alone (when it needs no fields), or {name: NAME, its fields...}: one of them."""
    options = [{"const": d.name, "description": d.doc} for d in table.values()
               if not any(p.required for p in d.params)]
    for d in table.values():
        body = _mapping(d.params, extra={"name": {"const": d.name, "description": d.doc},
                                         **(extra or {})})
        body["properties"] = {"name": body["properties"].pop("name"), **body["properties"]}
        body["required"] = ["name", *body.get("required", [])]
        body["description"] = d.doc
        options.append(body)
    names = ", ".join(table)
    return {"description": f"a{'n' if what[0] in 'aeiou' else ''} {what}: a name ({names}), "
                           f"or a mapping with name and fields", "oneOf": options}


def _layer() -> dict:
    """A bare name (a layer that needs no fields) or a one-key mapping {name: {fields}}."""
    options = []
    for d in LAYERS.values():
        needs_fields = any(p.required for p in d.params)
        if not needs_fields:
            options.append({"const": d.name, "description": d.doc})
        fields = _mapping((*WIRING, *d.params))   # name and from: every layer's wiring
        if not needs_fields:
            fields = {"anyOf": [fields, {"type": "null"}]}
        options.append({"type": "object", "description": f"{d.doc} Example: {d.example}",
                        "properties": {d.name: fields}, "required": [d.name],
                        "additionalProperties": False})
    return {"description": "a layer: a name (relu) or a one-key mapping (conv1d: {channels: 8, "
                           "kernel: 5})", "oneOf": options}


def spec_schema() -> dict:
    """The JSON Schema of a version-1 spec."""
    defs = {"layer": _layer()}
    for path, params in SECTIONS.items():
        defs[_def_name(path)] = _mapping(params, path)
    init_layers = {"type": "object", "description": "initializers for some layers, by layer "
                                                    "index or name, e.g. {0: xavier, stem: he}",
                   "propertyNames": {"pattern": f"^([0-9]+|{NAME_PATTERN})$"},
                   "additionalProperties": _ref("initializer")}
    defs["initializer"] = _named(INITIALIZERS, "initializer")
    for key, table in NAMED.items():
        if key == "init":
            init = _named(table, _WHAT[key], extra={"layers": init_layers})
            # {layers: {...}} alone keeps the default initializer (he) for the other layers
            init["oneOf"].append({"type": "object", "properties": {"layers": init_layers},
                                  "additionalProperties": False})
            defs[key] = init
        else:
            defs[key] = _named(table, _WHAT[key])
    top = _mapping(TOP)
    for p in TOP:
        if p.name in NAMED:
            top["properties"][p.name] = {**_ref(p.name), "description": p.doc,
                                         **({} if p.required else {"default": p.default})}
    layers = next(p for p in TOP if p.name == "layers")
    top["properties"]["layers"] = {"type": "array", "minItems": 1, "items": _ref("layer"),
                                   "description": layers.doc}
    return {"$schema": DIALECT,
            "$id": "urn:bpcli:spec:1",
            "title": "bpcli spec, version 1",
            "description": f"A network, its loss, optimizer and training, as bpcli {__version__} "
                           f"reads it (bpcli schema). bpcli validate also checks shapes.",
            **top, "$defs": defs}


def dumps() -> str:
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"
