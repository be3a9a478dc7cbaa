"""The lecture's evaluation traces, produced by the engine itself.

For ``y = f(x1, ..., xn)`` the inputs are numbered v_{1-n} ... v_0 and the
equations v_1, v_2, ... in level order, as in Baydin et al.'s tables:

- the forward primal trace: each v_i and its value (:func:`~bpcli.engine.evaluate`);
- the forward tangent trace: each v̇_i = Σ_j v̇_j ∂v_i/∂v_j, seeded with ẋ = 1 for the
  ``wrt`` input and 0 for the others (:func:`~bpcli.engine.forward_tangent`);
- the reverse adjoint trace: v̄_j += v̄_i ∂v_i/∂v_j walking back from ȳ = 1, which
  gives every ∂y/∂x_j in one backward pass (:func:`~bpcli.engine.backward`).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from ..engine import backward, evaluate, forward_tangent
from ..errors import InputError
from ..engine.expr import parse, variables_in

# primitive -> (primal, [∂/∂input_j times the upstream symbol {d}]); {0}, {1} are the inputs
NOTATION = {
    "add": ("{0} + {1}", ["{d}", "{d}"]),
    "sub": ("{0} − {1}", ["{d}", "−{d}"]),
    "mul": ("{0} × {1}", ["{d} × {1}", "{d} × {0}"]),
    "div": ("{0} / {1}", ["{d} / {1}", "−{d} × {0} / {1}²"]),
    "neg": ("−{0}", ["−{d}"]),
    "exp": ("exp {0}", ["{d} × exp {0}"]),
    "log": ("ln {0}", ["{d} / {0}"]),
    "sin": ("sin {0}", ["{d} × cos {0}"]),
    "cos": ("cos {0}", ["−{d} × sin {0}"]),
    "tanh": ("tanh {0}", ["{d} × (1 − tanh² {0})"]),
    "sigmoid": ("σ({0})", ["{d} × σ({0}) × (1 − σ({0}))"]),
    "relu": ("max(0, {0})", ["{d} × I[{0} > 0]"]),
    "softplus": ("ln(1 + exp {0})", ["{d} × σ({0})"]),
    "maximum": ("max({0}, {1})", ["{d} × I[{0} > {1}]", "{d} × I[{0} ≤ {1}]"]),
    "pow": ("{0}^{p}", ["{d} × {p} × {0}^{pm1}"]),
}

_SUB = str.maketrans("-0123456789", "₋₀₁₂₃₄₅₆₇₈₉")


def _num(v, digits) -> str:
    s = f"{float(v):.{digits}f}"
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return "0" if s in ("-0", "") else s.replace("-", "−")


def _join(terms) -> str:
    out = terms[0]
    for t in terms[1:]:
        out += f" − {t[1:]}" if t.startswith("−") else f" + {t}"
    return out


def _paren(s: str) -> str:
    return f"({s})" if s.startswith("−") else s


def trace(text: str, at: dict[str, float], wrt: str | None = None, digits: int = 3) -> dict:
    """All three traces of ``text`` at the point ``at`` (a dict of variable values)."""
    names = variables_in(text)
    missing = [n for n in names if n not in at]
    if missing:
        raise InputError(f"no value for {', '.join(missing)}: give --at "
                         + ",".join(f"{n}=..." for n in names), path="--at")
    unknown = [n for n in at if n not in names]
    if unknown:
        raise InputError(f"{', '.join(unknown)} not in the expression (its variables: "
                         f"{', '.join(names)})", path="--at")
    wrt = wrt or names[0]
    if wrt not in names:
        raise InputError(f"--wrt {wrt}: not a variable of the expression ({', '.join(names)})",
                         path="--wrt")
    prog = parse(text, names)
    n = len(names)
    sym = {prog.inputs[x].id: f"v{k - n + 1}" for k, x in enumerate(names)}
    for j, e in enumerate(prog.eqns):
        sym[e.out.id] = f"v{j + 1}"
    values = {x: np.float64(at[x]) for x in names}
    fmt = lambda v: _num(v, digits)  # noqa: E731

    def arg(a, env_or_sym):
        return env_or_sym(a) if hasattr(a, "id") else fmt(a)

    def fill(template, e, d, by):
        p = e.params.get("p")
        extra = {} if p is None else {"p": fmt(p), "pm1": fmt(p - 1)}
        return template.format(*[arg(a, by) for a in e.inputs], d=d, **extra)

    def notation(e):
        if e.prim.name not in NOTATION:
            raise InputError(f"{e.prim.name} has no trace notation", path="expression")
        return NOTATION[e.prim.name]

    # forward primal trace
    env = evaluate(prog, values)
    primal = [{"name": sym[prog.inputs[x].id], "expr": x, "value": float(at[x])} for x in names]
    for e in prog.eqns:
        form, _ = notation(e)
        primal.append({"name": sym[e.out.id], "expr": fill(form, e, "", lambda a: sym[a.id]),
                       "numbers": fill(form, e, "", lambda a: _paren(fmt(env[a.id]))),
                       "value": float(env[e.out.id])})

    # forward tangent trace, seeded ẋ = 1 for wrt and 0 for the others
    seed = {x: np.float64(1.0 if x == wrt else 0.0) for x in names}
    tangent = [{"name": sym[prog.inputs[x].id], "value": float(seed[x])} for x in names]
    tan = {prog.inputs[x].id: seed[x] for x in names}

    def on_tangent(e, value, t):
        _, parts = notation(e)
        live = [(i, a) for i, a in enumerate(e.inputs) if hasattr(a, "id")]
        tan[e.out.id] = 0.0 if t is None else t
        tangent.append({
            "name": sym[e.out.id],
            "expr": _join([fill(parts[i], e, "d" + sym[a.id], lambda b: sym[b.id]) for i, a in live]),
            "numbers": _join([fill(parts[i], e, _paren(fmt(tan[a.id])),
                                   lambda b: _paren(fmt(env[b.id]))) for i, a in live]),
            "value": float(tan[e.out.id])})
    y, ydot = forward_tangent(prog, values, seed, "y", on_step=on_tangent)

    # reverse adjoint trace: one backward pass for every partial derivative
    out_sym = sym[prog.outputs["y"].id]
    adjoint = [{"name": out_sym, "expr": "ȳ", "value": 1.0}]
    seen: set[int] = set()

    def on_adjoint(e, i, contrib, total):
        a = e.inputs[i]
        term = fill(notation(e)[1][i], e, "b" + sym[e.out.id], lambda b: sym[b.id])
        adjoint.append({"name": sym[a.id], "expr": (f"b{sym[a.id]} + " if a.id in seen else "") + term,
                        "value": float(total)})
        seen.add(a.id)
    grads = backward(prog, env, "y", names, on_step=on_adjoint)

    # the same gradient in forward mode needs one pass per input
    forward_grad = {x: float(forward_tangent(
        prog, values, {z: np.float64(z == x) for z in names}, "y")[1]) for x in names}
    return {
        "expression": text, "at": {x: float(at[x]) for x in names}, "wrt": wrt,
        "y": float(y), "dy_dwrt": float(ydot),
        "primal": primal, "tangent": tangent, "adjoint": adjoint,
        "gradient": {x: float(grads[x]) for x in names},
        "gradient_forward_mode": forward_grad,
        "passes": {"forward_mode": n, "reverse_mode": 1, "inputs": n},
    }


def _pretty(name: str) -> str:
    """v-1 -> v₋₁; a leading d/b marks a dotted (tangent) or barred (adjoint) symbol."""
    def one(m):
        mark, digits = m.group(1), m.group(2)
        accent = {"d": "\u0307", "b": "\u0304"}.get(mark, "")
        return "v" + accent + digits.translate(_SUB)
    return re.sub(r"\b([db]?)v(-?\d+)", one, name)


def render(t: dict, digits: int = 3) -> str:
    """The three traces as the lecture's tables, plain text."""
    fmt = lambda v: _num(v, digits)  # noqa: E731
    names = list(t["at"])
    lines = [f"y = {t['expression']}   at {', '.join(f'{k} = {fmt(v)}' for k, v in t['at'].items())}",
             "", "Forward primal trace"]
    rows = []
    for r in t["primal"]:
        if "numbers" in r:
            rows.append((_pretty(r["name"]), _pretty(r["expr"]), f"{r['numbers']} = {fmt(r['value'])}"))
        else:
            rows.append((_pretty(r["name"]), r["expr"], fmt(r["value"])))
    rows.append(("y", _pretty(t["primal"][-1]["name"]), fmt(t["y"])))
    lines += _table(rows)
    seeds = ", ".join(f"{_pretty('d' + r['name'])} = {fmt(r['value'])}"
                      for r in t["tangent"][:len(names)])
    lines += ["", f"Forward tangent trace (for ∂y/∂{t['wrt']}: seeded {seeds})"]
    rows = []
    for r in t["tangent"]:
        dotted = _pretty("d" + r["name"])
        if "expr" in r:
            rows.append((dotted, _pretty(r["expr"]), f"{r['numbers']} = {fmt(r['value'])}"))
        else:
            rows.append((dotted, "", fmt(r["value"])))
    rows.append(("ẏ", _pretty("d" + t["tangent"][-1]["name"]), fmt(t["dy_dwrt"])))
    lines += _table(rows)
    lines += ["", "Reverse adjoint trace (one backward pass from ȳ = 1)"]
    lines += _table([(_pretty("b" + r["name"]), _pretty(r["expr"]), fmt(r["value"]))
                     for r in t["adjoint"]])
    grad = ", ".join(f"∂y/∂{k} = {fmt(v)}" for k, v in t["gradient"].items())
    lines += ["", f"Gradient: {grad}",
              f"Passes for all {len(names)} partial derivative{'s' * (len(names) > 1)}: forward mode "
              f"{t['passes']['forward_mode']} (one per input, ẋ = 1 for each in turn), reverse mode "
              f"1 (one backward pass after the forward pass)."]
    return "\n".join(lines)


def _width(s: str) -> int:
    return sum(not unicodedata.combining(c) for c in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def _table(rows) -> list[str]:
    """Rows (name, formula, value) as aligned lines: name = formula = value."""
    w0 = max(_width(r[0]) for r in rows)
    w1 = max(_width(r[1]) for r in rows)
    return [f"  {_pad(a, w0)} = {_pad(b, w1)} = {c}" if b else f"  {_pad(a, w0)} = {c}"
            for a, b, c in rows]
