"""A static graph as a flat list of equations, and the three ways to run it.

A :class:`Program` is what a spec compiles to: named inputs (parameters, data),
a list of equations ``out = prim(inputs...; params)`` in evaluation order, and
named outputs. Because the list is already topologically ordered, it is the
tape: :func:`evaluate` walks it forward (the primal trace), :func:`backward`
walks it backward multiplying local by upstream gradients (reverse mode,
backpropagation, iterative so a 100,000-node chain is no problem) and
:func:`forward_tangent` carries a tangent along with each value (forward mode).

Programs are built by tracing Python code on :class:`Var` objects with a
:class:`Builder`; every shape is inferred as the equation is recorded, with
``None`` standing for the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .rules import PRIMITIVES, Primitive


class Var:
    """A value in a program: an input or the output of one equation."""

    __slots__ = ("id", "shape", "builder", "name")

    def __init__(self, id: int, shape: tuple, builder: "Builder", name: str | None = None):
        self.id, self.shape, self.builder, self.name = id, tuple(shape), builder, name

    def __repr__(self):
        return f"Var({self.name or self.id}, shape={self.shape})"

    @property
    def ndim(self):
        return len(self.shape)

    def _op(self, prim, *args, **params):
        return self.builder.apply(prim, *args, **params)

    __add__ = lambda a, b: a._op("add", a, b)  # noqa: E731
    __radd__ = lambda a, b: a._op("add", b, a)  # noqa: E731
    __sub__ = lambda a, b: a._op("sub", a, b)  # noqa: E731
    __rsub__ = lambda a, b: a._op("sub", b, a)  # noqa: E731
    __mul__ = lambda a, b: a._op("mul", a, b)  # noqa: E731
    __rmul__ = lambda a, b: a._op("mul", b, a)  # noqa: E731
    __truediv__ = lambda a, b: a._op("div", a, b)  # noqa: E731
    __rtruediv__ = lambda a, b: a._op("div", b, a)  # noqa: E731
    __neg__ = lambda a: a._op("neg", a)  # noqa: E731
    __matmul__ = lambda a, b: a._op("matmul", a, b)  # noqa: E731

    def __pow__(self, p):
        return self._op("pow", self, p=float(p))

    def sum(self, axis=None, keepdims=False):
        return self._op("sum", self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return self._op("mean", self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._op("reshape", self, shape=tuple(shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return self._op("transpose", self, axes=tuple(axes) or tuple(reversed(range(self.ndim))))

    @property
    def T(self):
        return self.transpose()


@dataclass(frozen=True)
class Eqn:
    """``out = prim(*inputs, **params)``; an input is a Var or a constant array/number."""

    prim: Primitive
    inputs: tuple
    out: Var
    params: dict
    origin: str = ""  # where it came from, e.g. "layers[0] (conv1d)": errors and pictures name it


@dataclass
class Program:
    inputs: dict[str, Var]
    eqns: list[Eqn]
    outputs: dict[str, Var]
    n_vars: int
    meta: dict = field(default_factory=dict)


class Builder:
    """Records equations while Python code runs on :class:`Var` objects."""

    def __init__(self):
        self.inputs: dict[str, Var] = {}
        self.eqns: list[Eqn] = []
        self.outputs: dict[str, Var] = {}
        self.origin = ""
        self._next = 0

    def _var(self, shape, name=None):
        v = Var(self._next, shape, self, name)
        self._next += 1
        return v

    def input(self, name: str, shape) -> Var:
        if name in self.inputs:
            raise ValueError(f"input {name!r} declared twice")
        v = self._var(shape, name)
        self.inputs[name] = v
        return v

    def apply(self, prim: str, *args, **params) -> Var:
        p = PRIMITIVES[prim]
        shapes = [a.shape if isinstance(a, Var) else np.shape(a) for a in args]
        out = self._var(p.shape(*shapes, **params))
        self.eqns.append(Eqn(p, tuple(args), out, params, self.origin))
        return out

    def output(self, name: str, v: Var):
        self.outputs[name] = v

    def program(self, **meta) -> Program:
        return Program(dict(self.inputs), list(self.eqns), dict(self.outputs), self._next, meta)


def _value(env, a):
    return env[a.id] if isinstance(a, Var) else a


def evaluate(prog: Program, values: dict, until: str | None = None) -> list:
    """Forward pass (the primal trace): returns the environment, a list indexed by var id.

    ``until`` names the output after which to stop (so ``forward`` never
    touches the loss's label inputs).
    """
    env = [None] * prog.n_vars
    for name, v in prog.inputs.items():
        if name in values:
            env[v.id] = values[name]
    stop = prog.outputs[until].id if until else None
    for e in prog.eqns:
        env[e.out.id] = e.prim.impl(*[_value(env, a) for a in e.inputs], **e.params)
        if e.out.id == stop:
            break
    return env


def depends_on(prog: Program, names) -> set[int]:
    """Ids of the vars that depend on the named inputs: only these need adjoints or tangents."""
    live = {prog.inputs[n].id for n in names}
    for e in prog.eqns:
        if any(isinstance(a, Var) and a.id in live for a in e.inputs):
            live.add(e.out.id)
    return live


def backward(prog: Program, env: list, output: str, wrt, seed=None, on_step=None) -> dict:
    """Reverse mode: the adjoints d(output)/d(input) for each input named in ``wrt``.

    Walks the equations backward once; at each one, local derivative times
    upstream gradient (the primitive's VJP) for every input that needs it.
    Where a value feeds several equations, contributions add up: the first is
    stored as is, a second one makes a fresh array that later ones are added
    into in place, so no rule's output is ever modified behind its back.
    Adjoints live in this call only: nothing is left behind between calls.
    ``on_step(eqn, i, contribution, adjoint_so_far)`` sees each contribution
    (``bpcli trace`` prints them as the reverse adjoint trace).
    """
    live = depends_on(prog, wrt)
    out = prog.outputs[output]
    y = env[out.id]
    adj = {out.id: np.ones_like(y) if seed is None else seed}
    owned: set[int] = set()
    for e in reversed(prog.eqns):
        g = adj.pop(e.out.id, None)
        if g is None:
            continue
        args = [_value(env, a) for a in e.inputs]
        for i, a in enumerate(e.inputs):
            if not isinstance(a, Var) or a.id not in live:
                continue
            contrib = e.prim.vjp[i](g, env[e.out.id], *args, **e.params)
            if a.id not in adj:
                adj[a.id] = contrib
            elif a.id in owned:
                adj[a.id] += contrib
            else:
                adj[a.id] = adj[a.id] + contrib
                owned.add(a.id)
            if on_step is not None:
                on_step(e, i, contrib, adj[a.id])
    grads, handed = {}, {id(seed)}
    for n in wrt:
        v = prog.inputs[n]
        g = adj.get(v.id)
        if g is None:
            g = np.zeros_like(env[v.id])
        g = np.asarray(g)
        # hand out plain arrays of their own: adjoints may be read-only broadcast views, and
        # pass-through rules (add, reshape) can give two inputs the very same array
        if not (g.flags.c_contiguous and g.flags.writeable) or id(g) in handed:
            g = g.copy()
        handed.add(id(g))
        grads[n] = g
    return grads


def forward_tangent(prog: Program, values: dict, tangents: dict, output: str, on_step=None):
    """Forward mode: the value of ``output`` and its tangent along ``tangents``, in one pass.

    Each equation computes its primal value and, in lock-step, its tangent: the
    sum over its inputs of the primitive's JVP rule (the lecture's forward
    tangent trace). Inputs not named in ``tangents`` have tangent zero.
    ``on_step(eqn, value, tangent)`` sees each equation's pair (tangent None: zero).
    """
    env = [None] * prog.n_vars
    tan: dict[int, np.ndarray] = {}
    for name, v in prog.inputs.items():
        if name in values:
            env[v.id] = values[name]
        if name in tangents:
            tan[v.id] = tangents[name]
    stop = prog.outputs[output].id
    for e in prog.eqns:
        args = [_value(env, a) for a in e.inputs]
        y = env[e.out.id] = e.prim.impl(*args, **e.params)
        total = None
        for i, a in enumerate(e.inputs):
            if isinstance(a, Var) and a.id in tan:
                c = e.prim.jvp[i](tan[a.id], y, *args, **e.params)
                total = c if total is None else total + c
        if total is not None:
            tan[e.out.id] = total
        if on_step is not None:
            on_step(e, y, total)
        if e.out.id == stop:
            break
    t = tan.get(stop)
    return env[stop], (np.zeros_like(env[stop]) if t is None else t)
