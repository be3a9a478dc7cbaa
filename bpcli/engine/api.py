"""Differentiate Python functions: ``jvp``, ``vjp`` and ``grad`` in the style of JAX.

``f`` is ordinary Python on :class:`~bpcli.engine.Var` objects: arithmetic
operators, methods (``.sum()``, ``.reshape()``, ``@``), the scalar functions
every primitive and composition offers by name (``exp``, ``log``, ``ln``, ``sin``,
``relu``, ``sigmoid``, ``sqrt``, ``max``, ...: see :func:`~bpcli.engine.functions.functions`)
and the functions with parameters below. It is traced once into a program and
then run by the same forward, reverse and forward-mode passes that train specs::

    from bpcli.engine import api as ad
    f = lambda x1, x2: ad.log(x1) + x1 * x2 - ad.sin(x2)
    y, dy = ad.jvp(f, (2.0, 5.0), (1.0, 0.0))     # 11.652, 5.5
    ad.grad(f, argnums=(0, 1))(2.0, 5.0)          # (5.5, 1.716)

On constants alone a function returns its value (``ad.sin(1.0)`` is sin 1).
"""

from __future__ import annotations

import numpy as np

from .functions import functions
from .program import Builder, Program, Var, backward, evaluate, forward_tangent


def _apply(prim, *args, **params):
    builder = next((a.builder for a in args if isinstance(a, Var)), None)
    if builder is not None:
        return builder.apply(prim, *args, **params)
    b = Builder()  # constants alone: run the equations now
    y = b.apply(prim, *args, **params)
    b.output("y", y)
    return evaluate(b.program(), {})[y.id]


def __getattr__(name):
    """``ad.<name>`` for every scalar function offered by name (PEP 562)."""
    table = functions()
    if name not in table:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    prim, _ = table[name]

    def function(*args):
        return _apply(prim, *args)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``{name}(...)``: the engine's ``{prim}``, on Vars or on numbers."
    return function


def __dir__():
    return sorted(set(globals()) | set(functions()))


def log_softmax(x, axis=-1): return _apply("log_softmax", x, axis=axis)  # noqa: E704
def pad(x, widths): return _apply("pad", x, widths=tuple(map(tuple, widths)))  # noqa: E704
def broadcast_to(x, shape): return _apply("broadcast_to", x, shape=tuple(shape))  # noqa: E704


def windows(x, kernel, stride=None, dilation=None):
    kernel = tuple(kernel)
    return _apply("windows", x, kernel=kernel, stride=tuple(stride or (1,) * len(kernel)),
                  dilation=tuple(dilation or (1,) * len(kernel)))


def make_program(f, *primals) -> Program:
    """Trace ``f`` on inputs shaped like ``primals`` (named x0, x1, ...) with output ``y``."""
    b = Builder()
    xs = [b.input(f"x{i}", np.shape(p)) for i, p in enumerate(primals)]
    y = f(*xs)
    if not isinstance(y, Var):
        raise TypeError("f must return a value computed from its inputs")
    b.output("y", y)
    return b.program()


def _values(primals):
    return {f"x{i}": np.asarray(p, dtype=np.float64) if not isinstance(p, np.ndarray) else p
            for i, p in enumerate(primals)}


def jvp(f, primals, tangents):
    """Forward mode: ``(f(x), J v)`` in one pass."""
    prog = make_program(f, *primals)
    tans = {k: np.asarray(t, dtype=np.asarray(v).dtype)
            for (k, v), t in zip(_values(primals).items(), tangents)}
    return forward_tangent(prog, _values(primals), tans, "y")


def vjp(f, *primals):
    """Reverse mode: ``(f(x), pullback)`` with ``pullback(v) = v J`` for every input."""
    prog = make_program(f, *primals)
    env = evaluate(prog, _values(primals))
    names = [f"x{i}" for i in range(len(primals))]

    def pullback(v):
        grads = backward(prog, env, "y", names, seed=np.asarray(v, dtype=np.float64))
        return tuple(grads[n] for n in names)
    return env[prog.outputs["y"].id], pullback


def grad(f, argnums=0):
    """The gradient of a scalar ``f`` with respect to argument(s) ``argnums``."""
    def df(*primals):
        y, pullback = vjp(f, *primals)
        if np.ndim(y) != 0:
            raise ValueError(f"grad needs a scalar output, got shape {np.shape(y)}")
        gs = pullback(np.ones_like(y))
        return gs[argnums] if isinstance(argnums, int) else tuple(gs[i] for i in argnums)
    return df
