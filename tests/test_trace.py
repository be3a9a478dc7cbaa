"""`bpcli trace`: the lecture's primal, tangent and adjoint tables, digit for digit, from the engine."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli.errors import InputError
from bpcli.engine.expr import parse, variables_in
from bpcli.explain.traces import render, trace

LECTURE = "ln(x1) + x1*x2 - sin(x2)"


def test_primal_trace_matches_the_lecture_table():
    t = trace(LECTURE, {"x1": 2, "x2": 5}, "x1")
    rows = [(r["name"], r.get("numbers", r["expr"]), round(r["value"], 3)) for r in t["primal"]]
    assert rows == [
        ("v-1", "x1", 2.0),
        ("v0", "x2", 5.0),
        ("v1", "ln 2", 0.693),                    # v1 = ln v-1
        ("v2", "2 × 5", 10.0),                    # v2 = v-1 × v0
        ("v3", "sin 5", -0.959),                  # v3 = sin v0
        ("v4", "0.693 + 10", 10.693),             # v4 = v1 + v2
        ("v5", "10.693 − (−0.959)", 11.652),      # v5 = v4 − v3
    ]
    assert [r["expr"] for r in t["primal"][2:]] == ["ln v-1", "v-1 × v0", "sin v0", "v1 + v2", "v4 − v3"]
    assert t["y"] == np.log(2) + 10 - np.sin(5)


def test_tangent_trace_matches_the_lecture_table():
    t = trace(LECTURE, {"x1": 2, "x2": 5}, "x1")
    assert [(r["name"], r["value"]) for r in t["tangent"]] == [
        ("v-1", 1.0), ("v0", 0.0), ("v1", 0.5), ("v2", 5.0), ("v3", 0.0), ("v4", 5.5), ("v5", 5.5)]
    assert t["tangent"][3]["expr"] == "dv-1 × v0 + dv0 × v-1"      # v̇2 = v̇-1 × v0 + v̇0 × v-1
    assert t["tangent"][3]["numbers"] == "1 × 5 + 0 × 2"
    assert t["tangent"][6]["expr"] == "dv4 − dv3"                  # v̇5 = v̇4 − v̇3
    assert t["dy_dwrt"] == 5.5


def test_adjoint_trace_gives_every_partial_in_one_backward_pass():
    t = trace(LECTURE, {"x1": 2, "x2": 5}, "x1")
    assert t["gradient"]["x1"] == pytest.approx(5.5, abs=1e-15)
    assert t["gradient"]["x2"] == pytest.approx(2 - np.cos(5), abs=1e-15)   # x1 − cos x2 ≈ 1.716
    assert round(t["gradient"]["x2"], 3) == 1.716
    # v̄-1 is reached twice (through v2 and v1): the second line accumulates
    last = t["adjoint"][-1]
    assert (last["name"], last["expr"], last["value"]) == ("v-1", "bv-1 + bv1 / v-1", 5.5)
    assert t["passes"] == {"forward_mode": 2, "reverse_mode": 1, "inputs": 2}
    assert t["gradient_forward_mode"] == pytest.approx(t["gradient"], abs=1e-15)


def test_rendered_tables_use_the_lecture_notation():
    text = render(trace(LECTURE, {"x1": 2, "x2": 5}, "x1"))
    for line in ["v₁  = ln v₋₁   = ln 2 = 0.693", "v₅  = v₄ − v₃  = 10.693 − (−0.959) = 11.652",
                 "v̇₂  = v̇₋₁ × v₀ + v̇₀ × v₋₁ = 1 × 5 + 0 × 2 = 5", "ẏ   = v̇₅", "∂y/∂x1 = 5.5, ∂y/∂x2 = 1.716",
                 "forward mode 2", "reverse mode 1"]:
        assert line in text, line


@pytest.mark.parametrize("text, at", [
    ("x*y + exp(x) / y", {"x": 0.3, "y": 1.7}),
    ("tanh(x)^2 - sqrt(y) + max(x, y) * relu(x - y)", {"x": 0.9, "y": 0.4}),
    ("x^y + cos(x*y) - -x", {"x": 1.3, "y": 0.7}),
    ("sigmoid(3*x) * softplus(-y) + log(x)", {"x": 0.5, "y": 2.0}),
])
def test_expression_gradients_match_central_differences(text, at):
    t = trace(text, at)
    prog = parse(text, list(at))
    from bpcli.engine import evaluate

    def f(point):
        env = evaluate(prog, {k: np.float64(v) for k, v in point.items()})
        return env[prog.outputs["y"].id]
    h = 1e-6
    for k in at:
        up, down = dict(at), dict(at)
        up[k] += h
        down[k] -= h
        assert t["gradient"][k] == pytest.approx((f(up) - f(down)) / (2 * h), rel=1e-7, abs=1e-9)
        assert t["gradient_forward_mode"][k] == pytest.approx(t["gradient"][k], rel=1e-12, abs=1e-15)


def test_variables_in_order_of_appearance_without_function_names():
    assert variables_in("sin(b) + a*b - exp(c)") == ["b", "a", "c"]


@pytest.mark.parametrize("text, words", [
    ("ln(x1 + ", "expected"),
    ("x1 $ x2", "unexpected character '$'"),
    ("foo(x)", "unknown function 'foo'"),
    ("max(x)", "max takes 2 arguments"),
    ("__import__('os').system('echo hi')", "unexpected character"),
    ("__import__(x)", "unknown function '__import__'"),
    ("x y", "unexpected 'y'"),
    ("", "empty"),
    ("2 + 3", "no variables"),
])
def test_bad_expressions_are_clear_input_errors(text, words):
    with pytest.raises(InputError) as e:
        parse(text)
    assert words in str(e.value)


def test_trace_names_missing_and_unknown_values():
    with pytest.raises(InputError, match="no value for x2"):
        trace(LECTURE, {"x1": 2})
    with pytest.raises(InputError, match="z not in the expression"):
        trace(LECTURE, {"x1": 2, "x2": 5, "z": 1})
    with pytest.raises(InputError, match="--wrt q"):
        trace(LECTURE, {"x1": 2, "x2": 5}, "q")
