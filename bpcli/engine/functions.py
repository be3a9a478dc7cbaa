"""Functions by name: compositions of primitives, and the table of scalar functions offered
to expressions (``bpcli trace``) and to ``bpcli.engine.api`` (``ad.sigmoid``).

A composition is written with primitives only, as micrograd's ``__sub__`` or
tinygrad's activations are: it has no derivative code of its own, so its VJP and
JVP are those of the primitives it expands to, and :meth:`Builder.apply` records
those primitives. Each is kept only where it has PyTorch's values and its
conventions at the kinks, and is as stable as a primitive would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .rules import PRIMITIVES


@dataclass(frozen=True)
class Composition:
    """``build(apply, *args, **params)`` -> the result, applying primitives through ``apply``."""

    name: str
    arity: int
    build: Callable
    names: tuple[str, ...] = ()


COMPOSITIONS: dict[str, Composition] = {}


def defcomposite(name, arity, build, names=()):
    COMPOSITIONS[name] = Composition(name, arity, build, tuple(names))


# ln(1 + e^x) = logaddexp(0, x): finite for any x; its derivative e^(x - y) is σ(x)
defcomposite("softplus", 1, lambda apply, x: apply("logaddexp", 0.0, x), names=("softplus",))
# σ(x) = 1 / (1 + e^-x) = exp(-softplus(-x)): no overflow for any x (1 / (1 + e^-x) has
# inf · 0 in its derivative below x = -709), and full relative precision in both tails, where
# (1 + tanh(x/2)) / 2 loses it for x << 0; the derivative comes out as σ(x)·σ(-x)
defcomposite("sigmoid", 1, lambda apply, x: apply("exp", -apply("softplus", -x)),
             names=("sigmoid",))
defcomposite("sqrt", 1, lambda apply, x: apply("pow", x, p=0.5), names=("sqrt",))


def functions() -> dict[str, tuple[str, int]]:
    """Offered name -> (the primitive or composition it applies, number of arguments)."""
    table = {n: (p.name, len(p.vjp)) for p in PRIMITIVES.values() for n in p.names}
    table.update({n: (c.name, c.arity) for c in COMPOSITIONS.values() for n in c.names})
    return table
