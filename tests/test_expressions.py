"""Every expression the grammar accepts traces, or is refused with a clear InputError.

Expressions are generated over the whole grammar (numbers, variables, ``+ - * / ^``,
unary minus, every function offered by name), each with a mirror written in Python's
``math``. At a random point:

- the primal y equals the mirror's value;
- the tangent dy/dx_i equals the central difference (f(x + h) - f(x - h)) / 2h of the
  mirror, within the difference's own error (estimated from h and h/2);
- the adjoints of the one backward pass equal the forward-mode tangents;
- where the mirror is undefined (math raises, or gives inf), the trace raises InputError.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpcli.cli import main
from bpcli.engine.functions import functions
from bpcli.errors import InputError
from bpcli.explain.traces import trace


def _logaddexp(a, b):
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# each offered function, written with Python's math
MATH = {
    "ln": math.log, "log": math.log, "exp": math.exp, "sin": math.sin, "cos": math.cos,
    "tanh": math.tanh, "relu": lambda x: max(0.0, x), "max": max, "maximum": max,
    "logaddexp": _logaddexp, "sigmoid": _sigmoid, "softplus": lambda x: _logaddexp(0.0, x),
    "sqrt": math.sqrt,
}
VARIABLES = ("x1", "x2")


def test_every_offered_function_has_a_math_reference():
    assert set(functions()) - set(MATH) == set(), "add the function's formula to MATH"


class Node:
    """An expression's text and its mirror; ``folded``: numbers only, computed by the parser."""

    def __init__(self, text, mirror, folded):
        self.text, self.mirror, self.folded = text, mirror, folded


def _binary(op, a, b):
    fn = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
          "/": lambda x, y: x / y}[op]
    return Node(f"({a.text}) {op} ({b.text})", lambda v: fn(a.mirror(v), b.mirror(v)),
                a.folded and b.folded)


def _power(a, b):
    if b.folded:  # a number exponent: x^p, real for x < 0 only at integer p
        return Node(f"({a.text})^({b.text})", lambda v: math.pow(a.mirror(v), b.mirror(v)),
                    a.folded)
    # any other exponent: a^b = exp(b ln a), the grammar's definition
    return Node(f"({a.text})^({b.text})",
                lambda v: math.exp(b.mirror(v) * math.log(a.mirror(v))), False)


def _call(name, args):
    return Node(f"{name}({', '.join(a.text for a in args)})",
                lambda v: MATH[name](*(a.mirror(v) for a in args)), False)


NUMBERS = [0.5, 1.0, 2.0, 3.0]


@st.composite
def expressions(draw, depth):
    """An expression tree of at most ``depth`` levels, over the whole grammar."""
    kind = draw(st.sampled_from(["variable", "variable", "number"] if depth == 0 else
                                ["call", "arithmetic", "call", "power", "arithmetic", "minus",
                                 "call"]))
    if kind == "variable":
        n = draw(st.sampled_from(VARIABLES))
        return Node(n, lambda v: v[n], False)
    if kind == "number":
        c = draw(st.sampled_from(NUMBERS))
        return Node(f"{c:g}", lambda v: c, True)
    sub = expressions(depth - 1)
    if kind == "arithmetic":
        return _binary(draw(st.sampled_from("+-*/")), draw(sub), draw(sub))
    if kind == "minus":
        a = draw(sub)
        return Node(f"-({a.text})", lambda v: -a.mirror(v), a.folded)
    if kind == "power":
        return _power(draw(sub), draw(sub))
    table = functions()
    name = draw(st.sampled_from(sorted(table)))
    return _call(name, [draw(sub) for _ in range(table[name][1])])


EXPRESSIONS = st.integers(2, 4).flatmap(expressions).filter(
    lambda n: any(x in n.text for x in VARIABLES))


def _mirror(node, point):
    """The mirror's value, or None where math says it is undefined."""
    try:
        y = node.mirror(point)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return y if math.isfinite(y) else None


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(node=EXPRESSIONS, seed=st.integers(0, 2**32 - 1))
def test_generated_expressions_trace_like_math(node, seed):
    # a generic point from a generator, not one hypothesis picks: no ties, no kinks
    names = [x for x in VARIABLES if x in node.text]
    point = dict(zip(names, np.random.default_rng(seed).uniform(-3, 3, len(names)).tolist()))
    y = _mirror(node, point)
    if y is None:
        with pytest.raises(InputError):
            trace(node.text, point)
        return
    try:
        t = trace(node.text, point)
    except InputError as e:
        # finite value, derivative infinite or 0·∞ (sqrt at 0): the one refusal allowed here
        assert "has no derivative" in str(e), str(e)
        return
    assert t["y"] == pytest.approx(y, rel=1e-9, abs=1e-12)
    for x in names:
        h = 1e-5 * max(1.0, abs(point[x]))

        def central(step):
            up, down = (_mirror(node, dict(point, **{x: point[x] + s})) for s in (step, -step))
            assume(up is not None and down is not None)   # the domain ends within h
            return (up - down) / (2 * step)
        coarse, fine = central(h), central(h / 2)
        slope = t["gradient_forward_mode"][x]
        # the difference's own truncation and rounding error, from comparing h with h/2
        tolerance = 10 * abs(coarse - fine) + 1e-6 * (1 + abs(slope)) + 1e-10 * (1 + abs(y)) / h
        assert abs(slope - fine) <= tolerance, (node.text, point, x, slope, fine)
        assert t["gradient"][x] == pytest.approx(slope, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("text, y, slope", [
    ("2^x1", 8.0, 8 * math.log(2)),           # exp(x1 ln 2): the constant step v1 = ln 2
    ("ln(2)*x1", 3 * math.log(2), math.log(2)),
    ("sin(1)+x1", math.sin(1) + 3, 1.0),
    ("x1 + ln(2)", 3 + math.log(2), 1.0),
    ("sqrt(4)*x1", 6.0, 2.0),
    ("max(1, 2)*x1 + sigmoid(0)", 6.5, 2.0),
])
def test_functions_of_numbers_alone_trace(text, y, slope):
    t = trace(text, {"x1": 3.0})
    assert t["y"] == pytest.approx(y, rel=1e-15)
    assert t["dy_dwrt"] == pytest.approx(slope, rel=1e-15)
    assert t["gradient"]["x1"] == pytest.approx(slope, rel=1e-15)


def test_a_constant_step_is_a_row_of_the_tables():
    t = trace("2^x1", {"x1": 3.0})
    assert [(r["name"], r.get("numbers")) for r in t["primal"]] == [
        ("v0", None), ("v1", "ln 2"), ("v2", "3 × 0.693"), ("v3", "exp 2.079")]
    assert [(r["name"], r["value"]) for r in t["tangent"][:2]] == [("v0", 1.0), ("v1", 0.0)]


@pytest.mark.parametrize("text, at, words", [
    ("ln(x1)", "x1=-1", "v₁ = ln v₀ = ln (−1) is undefined"),
    ("ln(x1)", "x1=0", "v₁ = ln v₀ = ln 0 is infinite"),
    ("sqrt(x1)", "x1=-4", "v₁ = v₀^0.5 = (−4)^0.5 is undefined"),
    ("sqrt(x1)", "x1=0", "v₁ = v₀^0.5 has no derivative at x1 = 0"),
    ("x1 / (x2 - x2)", "x1=1,x2=2", "v₂ = v₋₁ / v₁ = 1 / 0 is infinite"),
    ("exp(exp(x1))", "x1=7", "v₂ = exp v₁ = exp 1096.633 is infinite"),
    ("ln(0 - 1) + x1", "x1=1", "v₁ = ln (−1) = ln (−1) is undefined"),
    ("1/0 + x1", "x1=1", "1 / 0 is not a finite real number at column 2"),
    ("x1", "x1=nan", "x1=nan: not a finite number"),
])
def test_a_step_outside_its_domain_is_named_and_exits_2(capsys, text, at, words):
    code = main(["trace", text, "--at", at])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err
    # no library warning and no file path reach the user
    assert "Warning" not in err and "bpcli/" not in err and ".py" not in err
    assert "Traceback" not in err


def test_functions_of_numbers_alone_are_checked_too():
    with pytest.raises(InputError, match=r"v₁ = ln \(−2\) = ln \(−2\) is undefined"):
        trace("ln(-2) * x1", {"x1": 1.0})
