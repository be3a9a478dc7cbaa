"""Spec fields: a name, a check, a default and a line of documentation, kept together.

Layers, losses, optimizers and the spec's top level each declare their fields
as :class:`Param` tuples; the validator, ``bpcli show``, ``bpcli schema`` (JSON
Schema) and the README's spec reference all read these, so a default is written
down exactly once. Each check carries the JSON Schema of what it accepts in its
``json`` attribute, next to the code that accepts it.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from dataclasses import dataclass
from typing import Any, Callable


class Invalid(ValueError):
    """A value failed its check; the message reads after the key path.

    ``key`` names the field at fault when the check is about one field of a
    mapping (a layer's ``kernel``), so the error can point at its line.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class Skipped(Exception):
    """A part of the spec had errors, already reported: skip the checks that depend on it.

    Only raised while collecting every error (``bpcli validate``); when the first
    error raises, ``report`` never returns. ``partial`` is what could be resolved,
    defaults standing in for bad values, so independent parts can still be checked.
    """

    def __init__(self, partial=None):
        super().__init__("skipped after reported errors")
        self.partial = partial


REQUIRED = object()


class Table(dict):
    """The definitions that one spec key names (``layers:``, ``loss:``, ``optimizer:``, ...), by name.

    Every table is filled the same way, ``TABLE.add(Definition(name, doc, ..., params=(...)))``,
    next to the code the definition stands for; the validator, ``--set``, ``bpcli schema`` and the
    reference all read the definitions' ``params``, so a field's check, default and
    documentation are written once. A name defined twice is a bug, and raises at import.
    """

    def __init__(self, what: str):
        super().__init__()
        self.what = what  # "layer", "loss", ...: how messages name an entry

    def add(self, definition):
        """Register ``definition`` (anything with a ``name``) and return it."""
        if definition.name in self:
            raise ValueError(f"{self.what} {definition.name!r} is defined twice")
        self[definition.name] = definition
        return definition


@dataclass(frozen=True)
class Param:
    name: str
    check: Callable[[Any], Any]
    default: Any = REQUIRED
    doc: str = ""
    # left out of the resolved spec while at its default: a field added to a table after specs
    # were written with it (conv's groups), so those specs keep their fingerprint and printout
    implicit: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


_SHORT = reprlib.Repr()  # a value quoted in a message stays short, whatever the spec holds
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxdict = 8


def quoted(v) -> str:
    return _SHORT.repr(v) if isinstance(v, str) else (
        _SHORT.repr(v).replace("True", "true").replace("False", "false"))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def with_json_schema(schema: dict):
    """Attach the JSON Schema of the values a check accepts (read by bpcli schema)."""
    def attach(check):
        check.json = schema
        return check
    return attach


# PyYAML reads 1e-7 (no dot) as a string, so numeric strings are numbers too
_NUMERIC_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def number_json(**bounds) -> dict:
    return {"anyOf": [{"type": "number", **bounds},
                      {"type": "string", "pattern": _NUMERIC_TEXT}]}


def _as_float(v):
    # PyYAML reads 1e-7 (no dot) as a string: accept numeric strings for float fields
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


@with_json_schema(number_json())
def number(v):
    f = _as_float(v)
    if f is None:
        raise Invalid(f"must be a number, got {quoted(v)}")
    return f


@with_json_schema({"type": "integer", "minimum": 1})
def positive_int(v):
    if not _is_int(v) or v < 1:
        raise Invalid(f"must be a positive integer, got {quoted(v)}")
    return v


@with_json_schema({"type": "integer", "minimum": 0})
def nonneg_int(v):
    if not _is_int(v) or v < 0:
        raise Invalid(f"must be an integer >= 0, got {quoted(v)}")
    return v


@with_json_schema(number_json(exclusiveMinimum=0))
def positive_float(v):
    f = _as_float(v)
    if f is None or f <= 0:
        raise Invalid(f"must be a number > 0, got {quoted(v)}")
    return f


@with_json_schema(number_json(minimum=0))
def nonneg_float(v):
    f = _as_float(v)
    if f is None or f < 0:
        raise Invalid(f"must be a number >= 0, got {quoted(v)}")
    return f


@with_json_schema(number_json(minimum=0, exclusiveMaximum=1))
def fraction(v):
    f = _as_float(v)
    if f is None or not 0 <= f < 1:
        raise Invalid(f"must be a number in [0, 1), got {quoted(v)}")
    return f


@with_json_schema({"type": "boolean"})
def boolean(v):
    if not isinstance(v, bool):
        raise Invalid(f"must be true or false, got {quoted(v)}")
    return v


@with_json_schema({"type": "string", "minLength": 1})
def text(v):
    if not isinstance(v, str) or not v:
        raise Invalid(f"must be a non-empty string, got {quoted(v)}")
    return v


def one_of(*choices):
    def check(v):
        if v not in choices:
            raise Invalid(f"must be one of {', '.join(map(str, choices))}, got {quoted(v)}"
                          + did_you_mean(v, choices))
        return v
    check.choices = choices
    check.json = {"enum": list(choices)}
    return check


def int_or(*words, minimum=1):
    def check(v):
        if _is_int(v) and v >= minimum:
            return v
        if v in words:
            return v
        raise Invalid(f"must be an integer >= {minimum} or one of {', '.join(words)}, got {quoted(v)}"
                      + did_you_mean(v, words))
    check.json = {"anyOf": [{"type": "integer", "minimum": minimum}, {"enum": list(words)}]}
    return check


def optional(inner):
    def check(v):
        return None if v is None else inner(v)
    check.inner = inner  # its JSON Schema is inner's or null
    return check


def closest(word, candidates) -> str | None:
    """The candidate ``word`` is most likely a misspelling of, if any is close enough."""
    if not isinstance(word, str):
        return None
    names = [str(c) for c in candidates]
    # the same word in other case first: difflib weighs 'Relu' nearer 'elu' than 'relu'
    same = [c for c in names if c.casefold() == word.casefold()]
    if same:
        return same[0]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word, candidates) -> str:
    close = closest(word, candidates)
    return f" (did you mean {close!r}?)" if close else ""


def resolve(params: tuple[Param, ...], given, path: str, report) -> dict:
    """Check a mapping against its fields, filling defaults.

    ``report(path, message)`` raises the positioned error, or records it and
    returns when every error is being collected: then the other fields are still
    checked (a bad field's default stands in for it) and, at the end,
    :class:`Skipped` carries the partial result. Unknown keys are errors, with a
    suggestion for a near miss.
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        report(path, f"must be a mapping of {', '.join(p.name for p in params)}, got {quoted(given)}")
        raise Skipped
    names = [p.name for p in params]
    bad, meant = False, set()
    for key in given:
        if key not in names:
            bad = True
            meant.add(closest(key, names))
            report(f"{path}.{key}" if path else str(key),
                   f"unknown key {key!r}{did_you_mean(key, names)}; "
                   f"known keys: {', '.join(names) or 'none'}")
    out = {}
    for p in params:
        sub = f"{path}.{p.name}" if path else p.name
        if p.name in given:
            try:
                value = p.check(given[p.name])
                if not (p.implicit and value == p.default):
                    out[p.name] = value
                continue
            except Invalid as e:
                bad = True
                report(sub, str(e))
        elif p.required:
            bad = True
            if p.name not in meant:  # a misspelling of it was just reported, with the suggestion
                report(path or sub, f"missing required key {p.name!r} ({p.doc})")
        if not p.required and not p.implicit:
            out[p.name] = p.default
    if bad:
        raise Skipped(out)
    return out
