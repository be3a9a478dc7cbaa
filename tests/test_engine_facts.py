"""Each primitive carries its facts on its ``defprim``; compositions carry none of their own.

A primitive's notation, FLOP rule, branch (kink) rule and offered names are read by
traces, pictures, the printed program, ``bpcli inspect``, gradcheck, expressions and
``ad.*``. These tests make a missing or ill-fitting fact fail loudly, naming the
primitive: ``defprim`` refuses one without them, and every primitive's facts are
run on its case in test_primitives.py.
"""

from __future__ import annotations

import math
import string

import numpy as np
import pytest

from bpcli.engine import Builder, backward, evaluate, forward_tangent
from bpcli.engine import api as ad
from bpcli.engine.expr import parse
from bpcli.engine.functions import COMPOSITIONS, functions
from bpcli.engine.rules import PRIMITIVES, defprim
from test_primitives import CASES, In

FACTS = {"notation": ("x {0}", ["{d}"]), "flops": lambda out, x: 0, "branch": None}


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_defprim_refuses_a_primitive_without_a_fact(fact):
    given = {k: v for k, v in FACTS.items() if k != fact}
    with pytest.raises(TypeError, match=f"primitive 'scratch': no {fact} in its defprim"):
        defprim("scratch", np.negative, lambda s: s, vjp=[lambda g, y, x: -g],
                jvp=[lambda t, y, x: -t], **given)
    assert "scratch" not in PRIMITIVES


def test_defprim_wants_jvp_rules_or_linear_not_both():
    for jvp, linear in [(None, False), ([lambda t, y, x: -t], True)]:
        with pytest.raises(TypeError, match="primitive 'scratch': give jvp rules, or linear=True"):
            defprim("scratch", np.negative, lambda s: s, vjp=[lambda g, y, x: -g], jvp=jvp,
                    linear=linear, **FACTS)
    with pytest.raises(TypeError, match="primitive 'scratch': 1 VJPs, 1 JVPs and 2 notation"):
        defprim("scratch", np.negative, lambda s: s, vjp=[lambda g, y, x: -g],
                jvp=[lambda t, y, x: -t], **dict(FACTS, notation=("x", ["{d}", "{d}"])))
    assert "scratch" not in PRIMITIVES


def _arrays(case):
    return [a.value if isinstance(a, In) else a for a in case.args]


def _shapes_with_batch(case):
    """The case's shapes, each array given a batch axis of None in front (as a spec's are)."""
    return [np.shape(a) if not isinstance(a, In) else a.shape if None in a.shape
            else (None, *a.shape) for a in case.args]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_primitive_s_facts_fit_its_case(case):
    prim = PRIMITIVES[case.prim]
    n_inputs = len(case.args)
    assert len(prim.notation.terms) == n_inputs, f"{prim.name}: one notation term per input"
    # every placeholder of the notation is an input, the upstream symbol, the output or a param
    known = {str(i) for i in range(n_inputs)} | {"d", "y"} | set(case.params)
    for text in (prim.notation.primal, *prim.notation.terms):
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        assert fields <= known, f"{prim.name}: notation {text!r} names {fields - known}"
    # FLOPs per sample: a whole number, from the shapes alone
    flops = prim.flops((None, 2), *_shapes_with_batch(case), **case.params)
    assert isinstance(flops, int) and flops >= 0, f"{prim.name}: flops gave {flops!r}"
    if prim.branch is not None:
        branch = np.asarray(prim.branch(*_arrays(case), **case.params))
        assert branch.dtype == bool, f"{prim.name}: its branch rule must give booleans"


@pytest.mark.parametrize("case", [c for c in CASES if PRIMITIVES[c.prim].linear], ids=lambda c: c.id)
def test_a_primitive_declared_linear_is_linear_in_each_input(case):
    # f(..., u + 2 v, ...) = f(..., u, ...) + 2 f(..., v, ...): what makes the derived JVP right
    prim = PRIMITIVES[case.prim]
    xs = _arrays(case)
    rng = np.random.default_rng(3)

    def f(*args):
        y = prim.impl(*args, **case.params)
        return y[0] if prim.saves else y
    for i, a in enumerate(case.args):
        if isinstance(a, In):
            u, v = rng.standard_normal(np.shape(xs[i])), rng.standard_normal(np.shape(xs[i]))
            at = lambda x: f(*xs[:i], x, *xs[i + 1:])  # noqa: E731
            np.testing.assert_allclose(at(u + 2 * v), at(u) + 2 * at(v), rtol=1e-12, atol=1e-12,
                                       err_msg=f"{prim.name} is not linear in input {i}")


def test_a_linear_primitive_s_tangent_is_the_forward_applied_to_it():
    # def_linear: mul's JVP in a is mul(t, b), with no rule written for it
    t, a, b = np.array([1.0, -2.0]), np.array([3.0, 4.0]), np.array([0.5, 2.0])
    mul = PRIMITIVES["mul"]
    np.testing.assert_array_equal(mul.jvp[0](t, a * b, a, b), t * b)
    np.testing.assert_array_equal(mul.jvp[1](t, a * b, a, b), a * t)


def test_every_offered_name_is_an_expression_function_and_an_ad_function():
    for name, (target, arity) in functions().items():
        assert target in PRIMITIVES or target in COMPOSITIONS, name
        args = ", ".join(["x"] * arity)
        prog = parse(f"{name}({args})", ["x"])
        assert prog.eqns, name
        assert callable(getattr(ad, name)), name
    with pytest.raises(AttributeError):
        ad.no_such_function


# ---------------------------------------------------------------- compositions
def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# name -> (points, the value written out, its derivative written out)
COMPOSED = {
    "sigmoid": ([-800.0, -30.0, -1.5, 0.0, 0.7, 30.0, 800.0], _sigmoid,
                lambda x: _sigmoid(x) * _sigmoid(-x)),   # σ(1 - σ), with no cancellation
    "softplus": ([-800.0, -30.0, -1.5, 0.0, 0.7, 30.0, 800.0],
                 lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))), _sigmoid),
    "sqrt": ([0.25, 1.0, 2.0, 9.0, 1e6], math.sqrt, lambda x: 0.5 / math.sqrt(x)),
}


def test_every_composition_has_a_case():
    assert set(COMPOSITIONS) - set(COMPOSED) == set()


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_a_composition_has_the_values_and_derivatives_written_out(name):
    points, value, slope = COMPOSED[name]
    x = np.array(points)
    b = Builder()
    xv = b.input("x", x.shape)
    b.output("y", b.apply(name, xv))
    b.output("s", b.apply(name, xv).sum())
    prog = b.program()
    assert all(e.prim.name in PRIMITIVES for e in prog.eqns)  # made of primitives only
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # stable, also at ±800
        env = evaluate(prog, {"x": x})
        g = backward(prog, env, "s", ["x"])["x"]
        _, t = forward_tangent(prog, {"x": x}, {"x": np.ones_like(x)}, "y")
    want = np.array([value(p) for p in points])
    want_slope = np.array([slope(p) for p in points])
    np.testing.assert_allclose(env[prog.outputs["y"].id], want, rtol=4e-15, atol=1e-300)  # ulps
    np.testing.assert_allclose(g, want_slope, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(t, want_slope, rtol=1e-14, atol=1e-300)
