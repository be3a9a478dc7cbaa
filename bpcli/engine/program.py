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

import inspect
import threading
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter

import numpy as np

from . import backend, threads
from .functions import COMPOSITIONS
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
class Origin:
    """Where an equation came from, for errors, pictures and per-layer reports: a part of the
    spec (``layers``, ``loss``, ``preprocess``, ``regularization``; empty for a traced Python
    function), the index within it (a layer's position) and the name there (``conv1d``)."""

    part: str = ""
    index: int | None = None
    name: str = ""

    def __str__(self) -> str:
        where = self.part if self.index is None else f"{self.part}[{self.index}]"
        return f"{where} ({self.name})" if self.name else where

    def layer(self) -> int | None:
        """The index of the spec layer this came from, or None."""
        return self.index if self.part == "layers" else None


@dataclass(frozen=True)
class Eqn:
    """``out = prim(*inputs, **params)``; an input is a Var or a constant array/number."""

    prim: Primitive
    inputs: tuple
    out: Var
    params: dict
    origin: Origin = Origin()  # where it came from: str() gives e.g. "layers[0] (conv1d)"
    saved: Var | None = None  # what the forward keeps for the backward (primitives with saves=True)


@dataclass
class Program:
    inputs: dict[str, Var]
    eqns: list[Eqn]
    outputs: dict[str, Var]
    n_vars: int
    meta: dict = field(default_factory=dict)
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    def pretty(self) -> str:
        """The program as text, one line per equation, like JAX's printed jaxpr::

            inputs
              x:(N,1,64)
              layers.0.weight:(8,1,5)
            equations
              v7:(N,8,64) = conv v5 layers.0.weight stride=(1,) dilation=(1,)   # layers[0] conv1d
            outputs
              loss = v20

        A value is named by its input name or as ``v<id>``; shapes show the batch axis as
        N; constants are written as numbers (an array as ``array(3,4)``); each equation ends
        with the layer or step it came from (``str(eqn.origin)``). An equation whose saved value
        the program hands out names it: ``v9:(N,8,64) saves v10 = batch_norm v7 eps=1e-05``.
        """
        lines = ["inputs"] + [f"  {name}:{_shape_text(v.shape)}" for name, v in self.inputs.items()]
        body = []
        handed_out = {v.id for v in self.outputs.values()}
        for e in self.eqns:
            args = [_operand(a) for a in e.inputs]
            args += [f"{k}={_param_text(v)}" for k, v in e.params.items()]
            # a saved value is named where the program hands it out (batch norm's moments)
            saves = (f" saves {_operand(e.saved)}"
                     if e.saved is not None and e.saved.id in handed_out else "")
            body.append((f"{_operand(e.out)}:{_shape_text(e.out.shape)}{saves} = "
                         f"{' '.join([e.prim.name] + args)}", str(e.origin)))
        width = max((len(text) for text, origin in body if origin), default=0)
        lines.append("equations")
        lines += [f"  {text.ljust(width)}   # {origin}" if origin else f"  {text}"
                  for text, origin in body]
        lines.append("outputs")
        lines += [f"  {name} = {_operand(v)}" for name, v in self.outputs.items()]
        return "\n".join(lines)

    __str__ = pretty


class ProgramError(ValueError):
    """A program breaks its own rules (:func:`check`): a bug in whatever built it."""


def check(prog: Program) -> None:
    """Check a program as autodidax's ``typecheck_jaxpr`` checks a jaxpr; raise
    :class:`ProgramError` naming the first equation at fault.

    Every value is defined once, by an input or one equation; every equation's inputs are
    defined before it (so the list is a topological order, the tape the three modes walk);
    every equation's output has the shape its primitive's shape rule gives for its inputs'
    shapes, and a value saved for the backward exists exactly for primitives that save one;
    every output is defined. (Values carry no dtype: a program computes in its inputs'.)
    """
    defined: set[int] = set()

    def define(v, where):
        if not 0 <= v.id < prog.n_vars:
            raise ProgramError(f"{where}: value v{v.id} is outside the program's {prog.n_vars}")
        if v.id in defined:
            raise ProgramError(f"{where}: value {_operand(v)} is defined a second time")
        defined.add(v.id)

    for name, v in prog.inputs.items():
        if v.name != name:
            raise ProgramError(f"input {name!r} holds a value named {v.name!r}")
        define(v, f"input {name!r}")
    for k, e in enumerate(prog.eqns):
        where = f"equation {k} ({e.prim.name}, {e.origin})"
        for a in e.inputs:
            if isinstance(a, Var) and a.id not in defined:
                raise ProgramError(f"{where}: reads {_operand(a)} before it is defined")
        shapes = [a.shape if isinstance(a, Var) else np.shape(a) for a in e.inputs]
        want = tuple(e.prim.shape(*shapes, **e.params))
        if want != e.out.shape:
            raise ProgramError(f"{where}: its output has shape {_shape_text(e.out.shape)}, but "
                               f"{e.prim.name} of {', '.join(map(_shape_text, shapes))} gives "
                               f"{_shape_text(want)}")
        if (e.saved is not None) != e.prim.saves:
            raise ProgramError(f"{where}: {'a' if e.saved is not None else 'no'} saved value, "
                               f"but {e.prim.name} {'saves' if e.prim.saves else 'saves none'}")
        define(e.out, where)
        if e.saved is not None:
            define(e.saved, where)
    for name, v in prog.outputs.items():
        if v.id not in defined:
            raise ProgramError(f"output {name!r} is {_operand(v)}, which no input or equation defines")


def _shape_text(shape) -> str:
    text = ",".join("N" if n is None else str(n) for n in shape)
    return f"({text},)" if len(shape) == 1 else f"({text})"  # a 1-tuple as Python writes it


def _operand(a) -> str:
    if isinstance(a, Var):
        return a.name or f"v{a.id}"
    if np.ndim(a) == 0:
        return f"{float(a):g}"
    return f"array{_shape_text(np.shape(a))}"


def _param_text(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    text = str(v).replace(" ", "")
    return text.replace("None", "N") if isinstance(v, tuple) else text  # N: the batch axis


class Builder:
    """Records equations while Python code runs on :class:`Var` objects."""

    def __init__(self):
        self.inputs: dict[str, Var] = {}
        self.eqns: list[Eqn] = []
        self.outputs: dict[str, Var] = {}
        self.origin = Origin()  # set by the code that builds: each equation records it
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
        """Record ``prim(*args, **params)``; a composition records the primitives it is made of."""
        if prim in COMPOSITIONS:
            return COMPOSITIONS[prim].build(self.apply, *args, **params)
        p = PRIMITIVES[prim]
        shapes = [a.shape if isinstance(a, Var) else np.shape(a) for a in args]
        out = self._var(p.shape(*shapes, **params))
        saved = self._var(()) if p.saves else None
        self.eqns.append(Eqn(p, tuple(args), out, params, self.origin, saved))
        return out

    def saved(self, v: Var) -> Var:
        """What the equation that made ``v`` saves for its backward (batch norm's moments), as a
        value the program may hand out; raises ValueError when that equation saves nothing."""
        e = next((e for e in reversed(self.eqns) if e.out is v), None)
        if e is None or e.saved is None:
            raise ValueError(f"{_operand(v)} is not made by an equation that saves a value")
        return e.saved

    def output(self, name: str, v: Var):
        self.outputs[name] = v

    def program(self, **meta) -> Program:
        return Program(dict(self.inputs), list(self.eqns), dict(self.outputs), self._next, meta)


def _value(env, a, ref):
    """An equation's input: a value of ``env``, or a constant (an array one on ``ref``'s device)."""
    if isinstance(a, Var):
        return env[a.id]
    return backend.like(a, ref) if isinstance(a, np.ndarray) else a


# ---------------------------------------------------------------- compiled plans
# Walking Eqn objects costs Python time per equation and per call; a plan turns
# the program once into flat tuples of (rule with its params bound, slot
# numbers), so a training step spends its time in NumPy. Constants get slots of
# their own in a template environment.
@dataclass
class _Plan:
    template: list
    inputs: list                 # (name, slot)
    steps: list                  # (fn, input slots, out slot, saved slot or -1, split)
    arrays: list                 # slots of constants that are arrays: moved to the inputs' device


def _bind(fn, params):
    return partial(fn, **params) if params else fn


def _plan(prog: Program) -> _Plan:
    plan = prog._plans.get("forward")
    if plan is None:
        template = [None] * prog.n_vars

        def slot_of(a):
            if isinstance(a, Var):
                return a.id
            template.append(a)
            return len(template) - 1
        steps = [(_bind(e.prim.impl, e.params), tuple(slot_of(a) for a in e.inputs), e.out.id,
                  e.saved.id if e.saved is not None else -1, _split(e)) for e in prog.eqns]
        arrays = [i for i in range(prog.n_vars, len(template)) if isinstance(template[i], np.ndarray)]
        plan = prog._plans["forward"] = _Plan(template, [(n, v.id) for n, v in prog.inputs.items()],
                                              steps, arrays)
    return plan


# ---------------------------------------------------------------- batch slices on threads
# A batchwise equation (Primitive.batchwise) runs on slices of the batch in the engine's
# workers (bpcli.engine.threads): each slice's inputs are the batched inputs' rows, the rest
# whole, and each slice's result is written into one array as it comes. Which inputs are
# batched is read off the program's shapes, where None is the batch axis.
def _batch(v) -> bool:
    return isinstance(v, Var) and v.shape[:1] == (None,)


def _split(e: Eqn):
    """(mode, batched input positions, the forward takes out=, each VJP takes out=) for an
    equation that may run on batch slices, else None."""
    if not e.prim.batchwise or not _batch(e.out) or not any(_batch(a) for a in e.inputs):
        return None
    mode = e.prim.split(e.inputs[0].ndim if isinstance(e.inputs[0], Var) else 0, e.params)
    batched = tuple(i for i, a in enumerate(e.inputs) if _batch(a))
    if not mode or (len(e.inputs) > 1 and any(e.inputs[i].ndim != e.out.ndim for i in batched)):
        return None  # broadcasting could line a batch axis up with another: run it whole
    # a batchwise rule's saved value (max's winners) is batched too
    return (mode, batched, _takes_out(e.prim.impl), tuple(_takes_out(v) for v in e.prim.vjp),
            e.out.shape[1:])


def _takes_out(fn) -> bool:
    """Whether a rule writes its result into an ``out=`` array it is given (a NumPy ufunc, or a
    function with an ``out`` parameter): slices then write straight into the whole result."""
    if isinstance(fn, np.ufunc):
        return True
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _cutting(args, batched):
    """(the first batched arg, the bytes a sample takes in the largest batched arg, and
    b -> ``args`` with the ``batched`` ones cut to batch slice b, the others whole)."""
    first = args[batched[0]]
    sample = max(args[i].size for i in batched) * first.itemsize // max(first.shape[0], 1)
    cut = frozenset(batched)
    return first, sample, lambda b: [a[b] if i in cut else a for i, a in enumerate(args)]


def _sliced(fn, args, batched, like=None, out=False, shape=None):
    """``fn(*args)`` computed on batch slices in the workers: the ``batched`` args are cut, the
    rest passed whole. The result (or each of a tuple of results) is one array of the whole
    batch: C order, or laid out as ``like`` (a VJP's result as its input, so that a view taken
    of it stays a view). With ``out``, ``fn`` takes ``out=`` and each slice is written there
    directly (a forward's shape past the batch axis is ``shape``, its dtype NumPy's for its
    inputs; a VJP's are its input's and the upstream gradient's); else each slice's result is
    copied in."""
    first, sample, part = _cutting(args, batched)
    n = first.shape[0]
    slices = threads.pieces(first, sample)
    if len(slices) == 1:
        return fn(*args)
    if out:
        whole = (np.empty((n,) + tuple(shape), dtype=np.result_type(*args)) if like is None
                 else np.empty_like(like, dtype=first.dtype))
        threads.run(lambda b: fn(*part(b), out=whole[b]), slices)
        return whole
    outs = []

    def one(b):
        r = fn(*part(b))
        rs = r if isinstance(r, tuple) else (r,)
        if not outs:
            with lock:
                if not outs:
                    outs.extend(np.empty((n,) + v.shape[1:], dtype=v.dtype) if like is None
                                else np.empty_like(like, dtype=v.dtype) for v in rs)
        for o, v in zip(outs, rs):
            o[b] = v
    lock = threading.Lock()
    threads.run(one, slices)
    return tuple(outs) if len(outs) > 1 else outs[0]


def _summed(fn, args, batched):
    """``fn(*args)`` for a result that sums a term per sample (a shared input's adjoint): made on
    the fixed slices of ``backend.batch_slices`` (about ``threads.PIECE_BYTES`` each, the bounds
    set by the shapes alone) in the workers, and the parts added in slice order, so the bits
    are the same at every thread count."""
    first, sample, part = _cutting(args, batched)
    slices = backend.batch_slices(first, sample, size=threads.PIECE_BYTES)
    if len(slices) == 1:
        return fn(*args)
    return threads.sum_in_order(threads.run(lambda b: fn(*part(b)), slices))


def _with_saved(vjp):
    """vjp(g, y, *xs, saved) for a rule that takes saved= by keyword."""
    return lambda g, y, *rest, **out: vjp(g, y, *rest[:-1], saved=rest[-1], **out)


def _backward_plan(prog: Program, output: str, wrt: tuple):
    """For each equation on a path from ``wrt`` to ``output``, in reverse: the VJPs to run."""
    key = ("backward", output, wrt)
    plan = prog._plans.get(key)
    if plan is None:
        live = depends_on(prog, wrt)
        fwd = _plan(prog)
        stop = prog.outputs[output].id
        plan = []
        for k in reversed(range(len(prog.eqns))):
            e, (_, slots, out, saved, split) = prog.eqns[k], fwd.steps[k]
            if out > stop or out not in live:
                continue
            # On a batchwise equation, the VJP of a batched input runs on batch slices in the
            # workers ("cut"); that of a shared input (a bias) sums each sample's term, so it is
            # made per fixed slice and the parts added in order ("sum"). Both cut g, y, the
            # batched inputs and the saved value: positions in (g, y, *inputs, saved).
            cut = how = None
            if split is not None:
                cut = (0, 1) + tuple(2 + i for i in split[1]) + ((2 + len(slots),) if saved >= 0 else ())
            vjps = []
            for i, a in enumerate(e.inputs):
                if isinstance(a, Var) and a.id in live:
                    if cut is not None:
                        how = ("sum" if i not in split[1] else "cut" if split[0] == "all" else None)
                    vjps.append((i, slots[i], _bind(e.prim.vjp[i], e.params),
                                 how and (how, cut, split[3][i])))
            plan.append((k, e, out, slots, saved, vjps, []))
        # for backward(release=True): after which step each intermediate value is read no more
        keep = {v.id for v in prog.inputs.values()} | {v.id for v in prog.outputs.values()}
        seen: set[int] = set()
        for step in reversed(plan):
            _, _, out, slots, saved, _, free = step
            for slot in (out, saved, *slots):
                if slot >= 0 and slot < prog.n_vars and slot not in keep and slot not in seen:
                    seen.add(slot)
                    free.append(slot)
        prog._plans[key] = plan
    return plan


def evaluate(prog: Program, values: dict, until: str | None = None, timings=None) -> list:
    """Forward pass (the primal trace): returns the environment, a list indexed by var id.

    ``until`` names the output after which to stop (so ``forward`` never
    touches the loss's label inputs). ``timings``, a list as long as the
    program, gets each equation's seconds added (``bpcli bench``; on a GPU each equation is
    waited for, so its time is its own). The values may all live on the host or all on one
    GPU (:mod:`~bpcli.engine.backend`); array constants follow them there.
    """
    plan = _plan(prog)
    env = plan.template.copy()
    for name, slot in plan.inputs:
        if name in values:
            env[slot] = values[name]
    if plan.arrays:
        ref = backend.any_array(values.values())
        for slot in plan.arrays:
            env[slot] = backend.like(env[slot], ref)
    stop = prog.outputs[until].id if until else -1
    if any(slot == stop for _, slot in plan.inputs):  # the output is an input (identity layers)
        return env
    parallel = threads.workers() > 1
    for k, (fn, slots, out, saved, split) in enumerate(plan.steps):
        if timings is not None:
            t0 = perf_counter()
        if parallel and split is not None and env[slots[split[1][0]]].nbytes >= threads.SPLIT_BYTES:
            r = _sliced(fn, [env[i] for i in slots], split[1], out=split[2], shape=split[4])
        else:
            r = fn(*[env[i] for i in slots])
        if saved >= 0:
            env[out], env[saved] = r
        else:
            env[out] = r
        if timings is not None:
            backend.synchronize(env[out])
            timings[k] += perf_counter() - t0
        if out == stop:
            break
    return env


def depends_on(prog: Program, names) -> set[int]:
    """Ids of the vars that depend on the named inputs: only these need adjoints or tangents."""
    live = {prog.inputs[n].id for n in names}
    for e in prog.eqns:
        if any(isinstance(a, Var) and a.id in live for a in e.inputs):
            live.add(e.out.id)
    return live


def backward(prog: Program, env: list, output: str, wrt, seed=None, on_step=None,
             timings=None, release: bool = False) -> dict:
    """Reverse mode: the adjoints d(output)/d(input) for each input named in ``wrt``.

    Walks the equations backward once; at each one, local derivative times
    upstream gradient (the primitive's VJP) for every input that needs it.
    Where a value feeds several equations, contributions add up: the first is
    stored as is, a second one makes a fresh array that later ones are added
    into in place, so no rule's output is ever modified behind its back.
    Adjoints live in this call only: nothing is left behind between calls.
    ``on_step(eqn, i, contribution, adjoint_so_far)`` sees each contribution
    (``bpcli trace`` prints them as the reverse adjoint trace); ``timings``
    works as in :func:`evaluate`, indexed by the equation's position. ``release`` drops each
    intermediate value from ``env`` once no later step reads it (a training step does not need
    them afterwards, and the memory is reused while still in cache).
    """
    wrt = tuple(wrt)
    out_id = prog.outputs[output].id
    y = env[out_id]
    adj = {out_id: np.ones_like(y) if seed is None else seed}
    owned: set[int] = set()
    parallel = threads.workers() > 1
    for k, e, out, slots, saved, vjps, free in _backward_plan(prog, output, wrt):
        g = adj.pop(out, None)
        if g is None:
            continue
        if timings is not None:
            t0 = perf_counter()
        args = [env[i] for i in slots]
        for i, slot, vjp, how in vjps:
            if (how is not None and (parallel or how[0] == "sum")
                    and max(g.nbytes, args[i].nbytes) >= threads.SPLIT_BYTES):
                fn = _with_saved(vjp) if saved >= 0 else vjp
                operands = [g, env[out], *args] + ([env[saved]] if saved >= 0 else [])
                contrib = (_sliced(fn, operands, how[1], like=args[i], out=how[2]) if how[0] == "cut"
                           else _summed(fn, operands, how[1]))
            elif saved >= 0:
                contrib = vjp(g, env[out], *args, saved=env[saved])
            else:
                contrib = vjp(g, env[out], *args)
            if slot not in adj:
                adj[slot] = contrib
            elif slot in owned:
                adj[slot] += contrib
            else:
                adj[slot] = adj[slot] + contrib
                owned.add(slot)
            if on_step is not None:
                on_step(e, i, contrib, adj[slot])
        if timings is not None:
            backend.synchronize(g)
            timings[k] += perf_counter() - t0
        if release:
            del args
            for slot in free:
                env[slot] = None
    grads, handed = {}, {id(seed)}
    for n in wrt:
        v = prog.inputs[n]
        g = adj.get(v.id)
        if g is None:
            g = np.zeros_like(env[v.id])
        g = backend.as_array(g)
        # hand out plain arrays of their own: adjoints may be read-only broadcast views, and
        # pass-through rules (add, reshape) can give two inputs the very same array
        if not backend.owned(g) or id(g) in handed:
            g = g.copy()
        handed.add(id(g))
        grads[n] = g
    backend.synchronize(y)  # on a GPU: the adjoints are computed, not just queued, on return
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
    ref = backend.any_array(values.values())
    for e in prog.eqns:
        args = [_value(env, a, ref) for a in e.inputs]
        y = e.prim.impl(*args, **e.params)
        if e.saved is not None:
            y, env[e.saved.id] = y
        env[e.out.id] = y
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
