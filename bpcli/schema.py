"""Spec fields: a name, a check, a default and a line of documentation, kept together.

Layers, losses, optimizers and the spec's top level each declare their fields
as :class:`Param` tuples; the validator, ``bpcli show`` and the README's spec
reference all read these, so a default is written down exactly once.
"""

from __future__ import annotations

import difflib
import math
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


REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    check: Callable[[Any], Any]
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _show(v) -> str:
    return repr(v) if isinstance(v, str) else str(v).replace("True", "true").replace("False", "false")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


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


def number(v):
    f = _as_float(v)
    if f is None:
        raise Invalid(f"must be a number, got {_show(v)}")
    return f


def positive_int(v):
    if not _is_int(v) or v < 1:
        raise Invalid(f"must be a positive integer, got {_show(v)}")
    return v


def nonneg_int(v):
    if not _is_int(v) or v < 0:
        raise Invalid(f"must be an integer >= 0, got {_show(v)}")
    return v


def positive_float(v):
    f = _as_float(v)
    if f is None or f <= 0:
        raise Invalid(f"must be a number > 0, got {_show(v)}")
    return f


def nonneg_float(v):
    f = _as_float(v)
    if f is None or f < 0:
        raise Invalid(f"must be a number >= 0, got {_show(v)}")
    return f


def fraction(v):
    f = _as_float(v)
    if f is None or not 0 <= f < 1:
        raise Invalid(f"must be a number in [0, 1), got {_show(v)}")
    return f


def boolean(v):
    if not isinstance(v, bool):
        raise Invalid(f"must be true or false, got {_show(v)}")
    return v


def text(v):
    if not isinstance(v, str) or not v:
        raise Invalid(f"must be a non-empty string, got {_show(v)}")
    return v


def one_of(*choices):
    def check(v):
        if v not in choices:
            raise Invalid(f"must be one of {', '.join(map(str, choices))}, got {_show(v)}"
                          + did_you_mean(v, choices))
        return v
    check.choices = choices
    return check


def int_or(*words, minimum=1):
    def check(v):
        if _is_int(v) and v >= minimum:
            return v
        if v in words:
            return v
        raise Invalid(f"must be an integer >= {minimum} or one of {', '.join(words)}, got {_show(v)}"
                      + did_you_mean(v, words))
    return check


def optional(inner):
    def check(v):
        return None if v is None else inner(v)
    return check


def did_you_mean(word, candidates) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve(params: tuple[Param, ...], given, path: str, report) -> dict:
    """Check a mapping against its fields, filling defaults.

    ``report(path, message)`` raises the positioned error; unknown keys are
    errors, with a suggestion for a near miss.
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        report(path, f"must be a mapping of {', '.join(p.name for p in params)}, got {_show(given)}")
    names = [p.name for p in params]
    for key in given:
        if key not in names:
            report(f"{path}.{key}" if path else str(key),
                   f"unknown key {key!r}{did_you_mean(key, names)}; "
                   f"known keys: {', '.join(names) or 'none'}")
    out = {}
    for p in params:
        sub = f"{path}.{p.name}" if path else p.name
        if p.name in given:
            try:
                out[p.name] = p.check(given[p.name])
            except Invalid as e:
                report(sub, str(e))
        elif p.required:
            report(path or sub, f"missing required key {p.name!r} ({p.doc})")
        else:
            out[p.name] = p.default
    return out
