"""The lecture's evaluation traces, produced by the engine itself.

For ``y = f(x1, ..., xn)`` the inputs are numbered v_{1-n} ... v_0 and the
equations v_1, v_2, ... in level order, as in Baydin et al.'s tables:

- the forward primal trace: each v_i and its value (:func:`~bpcli.engine.evaluate`);
- the forward tangent trace: each v̇_i = Σ_j v̇_j ∂v_i/∂v_j, seeded with ẋ = 1 for the
  ``wrt`` input and 0 for the others (:func:`~bpcli.engine.forward_tangent`);
- the reverse adjoint trace: v̄_j += v̄_i ∂v_i/∂v_j walking back from ȳ = 1, which
  gives every ∂y/∂x_j in one backward pass (:func:`~bpcli.engine.backward`).

Each step is written as its primitive's ``notation`` says (on its ``defprim``).
A step that leaves the domain of its function (ln of a negative number, a
derivative that is infinite, as sqrt's at 0) is an :class:`InputError` naming it
in v-notation; NumPy's warnings never reach the user.
"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np

from ..engine import backward, evaluate, forward_tangent
from ..errors import InputError
from ..engine.expr import parse, variables_in

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


def _check_point(text, at, wrt):
    names = variables_in(text)
    missing = [n for n in names if n not in at]
    if missing:
        raise InputError(f"no value for {', '.join(missing)}: give --at "
                         + ",".join(f"{n}=..." for n in names), path="--at")
    unknown = [n for n in at if n not in names]
    if unknown:
        raise InputError(f"{', '.join(unknown)} not in the expression (its variables: "
                         f"{', '.join(names)})", path="--at")
    infinite = [f"{n}={at[n]}" for n in names if not math.isfinite(at[n])]
    if infinite:
        raise InputError(f"{', '.join(infinite)}: not a finite number", path="--at")
    wrt = wrt or names[0]
    if wrt not in names:
        raise InputError(f"--wrt {wrt}: not a variable of the expression ({', '.join(names)})",
                         path="--wrt")
    return names, wrt


def _what(value) -> str:
    return "undefined (not a real number)" if np.isnan(value) else "infinite"


def trace(text: str, at: dict[str, float], wrt: str | None = None, digits: int = 3) -> dict:
    """All three traces of ``text`` at the point ``at`` (a dict of variable values).

    Raises InputError for a bad expression or point, and for a step whose value or
    derivative is not a finite real number there, named in v-notation.
    """
    names, wrt = _check_point(text, at, wrt)
    prog = parse(text, names)
    n = len(names)
    sym = {prog.inputs[x].id: f"v{k - n + 1}" for k, x in enumerate(names)}
    for j, e in enumerate(prog.eqns):
        sym[e.out.id] = f"v{j + 1}"
    values = {x: np.float64(at[x]) for x in names}
    fmt = lambda v: _num(v, digits)  # noqa: E731
    where = ", ".join(f"{x} = {fmt(at[x])}" for x in names)

    def arg(a, by):
        return by(a) if hasattr(a, "id") else _paren(fmt(a))

    def fill(template, e, d, by):
        params = {k: fmt(v) if isinstance(v, (int, float)) else v for k, v in e.params.items()}
        return template.format(*[arg(a, by) for a in e.inputs], d=d, y=by(e.out), **params)

    def primal_form(e):
        return fill(e.prim.notation.primal, e, "", lambda a: sym[a.id])

    def primal_numbers(e):
        return fill(e.prim.notation.primal, e, "", lambda a: _paren(fmt(env[a.id])))

    with np.errstate(all="ignore"):  # a step outside its domain is reported below, by name
        # forward primal trace
        env = evaluate(prog, values)
        primal = [{"name": sym[prog.inputs[x].id], "expr": x, "value": float(at[x])} for x in names]
        for e in prog.eqns:
            y = env[e.out.id]
            if not np.isfinite(y):
                raise InputError(f"{_pretty(sym[e.out.id])} = {_pretty(primal_form(e))} = "
                                 f"{primal_numbers(e)} is {_what(y)} at {where}", path="expression")
            primal.append({"name": sym[e.out.id], "expr": primal_form(e),
                           "numbers": primal_numbers(e), "value": float(y)})

        # forward tangent trace, seeded ẋ = 1 for wrt and 0 for the others
        seed = {x: np.float64(1.0 if x == wrt else 0.0) for x in names}
        tangent = [{"name": sym[prog.inputs[x].id], "value": float(seed[x])} for x in names]
        tan = {prog.inputs[x].id: seed[x] for x in names}

        def on_tangent(e, value, t):
            terms = e.prim.notation.terms
            live = [(i, a) for i, a in enumerate(e.inputs) if hasattr(a, "id")]
            tan[e.out.id] = 0.0 if t is None else t
            if not live:  # a step on constants alone (v1 = ln 2): its tangent is zero
                tangent.append({"name": sym[e.out.id], "value": 0.0})
                return
            row = {"name": sym[e.out.id],
                   "expr": _join([fill(terms[i], e, "d" + sym[a.id], lambda b: sym[b.id])
                                  for i, a in live]),
                   "numbers": _join([fill(terms[i], e, _paren(fmt(tan[a.id])),
                                          lambda b: _paren(fmt(env[b.id]))) for i, a in live]),
                   "value": float(tan[e.out.id])}
            _derivative_defined(e, tan[e.out.id], f"{_pretty('d' + row['name'])} = "
                                f"{_pretty(row['expr'])} = {row['numbers']}")
            tangent.append(row)

        def _derivative_defined(e, value, step):
            if not np.isfinite(value):
                raise InputError(f"{_pretty(sym[e.out.id])} = {_pretty(primal_form(e))} has no "
                                 f"derivative at {where}: {step} is {_what(value)}",
                                 path="expression")

        y, ydot = forward_tangent(prog, values, seed, "y", on_step=on_tangent)

        # reverse adjoint trace: one backward pass for every partial derivative
        out_sym = sym[prog.outputs["y"].id]
        adjoint = [{"name": out_sym, "expr": "ȳ", "value": 1.0}]
        seen: set[int] = set()

        def on_adjoint(e, i, contrib, total):
            a = e.inputs[i]
            term = fill(e.prim.notation.terms[i], e, "b" + sym[e.out.id], lambda b: sym[b.id])
            _derivative_defined(e, contrib, f"{_pretty('b' + sym[a.id])} gets "
                                f"{_pretty(term)} = {fmt(contrib)}")
            adjoint.append({"name": sym[a.id], "value": float(total),
                            "expr": (f"b{sym[a.id]} + " if a.id in seen else "") + term})
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
