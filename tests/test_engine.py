"""The engine classics: fan-out, broadcasting, deep chains, stability, statelessness, and the lecture's trace.

Every test that runs numbers through the engine runs on every device (the ``device`` fixture):
the values move there, the references stay NumPy on the host. Two stay on the CPU: the
100,000-equation chain (what it proves, a walk without recursion, is the engine's own loop on any
device; the stand-in would add some 7 s to its 5 s) and the function API (jvp, vjp, grad of Python
numbers: a host API).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from device_stand_in import numpy_arithmetic

from bpcli.engine import Builder, backend, backward, evaluate, forward_tangent


def on(device, values: dict) -> dict:
    """``values`` moved to ``device``, as the engine takes them there."""
    return {k: backend.to_device(v, device) for k, v in values.items()}


def _run(prog, values, output, wrt, seed=None, device="cpu"):
    """The output's value and the gradients, computed on ``device``, brought back to the host."""
    env = evaluate(prog, on(device, values))
    seed = None if seed is None else backend.to_device(seed, device)
    grads = backward(prog, env, output, wrt, seed=seed)
    return (backend.to_host(env[prog.outputs[output].id]),
            {k: backend.to_host(g) for k, g in grads.items()})


def rtol_on(device, rtol):
    """``rtol`` where ``device`` computes with NumPy's arithmetic (cpu, the stand-in); a real GPU
    rounds its own way (its exp, log and sin, sums in another order): 1e-10 in float64."""
    return rtol if numpy_arithmetic(device) else max(rtol, 1e-10)


def assert_same(device, actual, expected):
    """Bit for bit where ``device`` computes with NumPy's arithmetic, to 1e-10 on a real GPU."""
    if numpy_arithmetic(device):
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-10)


# ---------------------------------------------------------------- a value used twice
def test_node_used_twice_accumulates_both_contributions(device):
    # b = a + a, c = b * b = 4 a^2, so dc/da = 8 a: both uses of a, and both uses of b, count
    b_ = Builder()
    a = b_.input("a", (4,))
    b = a + a
    c = b * b
    b_.output("c", c)
    prog = b_.program()
    a_val = np.array([-1.5, 0.0, 0.5, 2.0])
    c_val, g = _run(prog, {"a": a_val}, "c", ["a"], device=device)  # seed ones: d sum(c) / da
    np.testing.assert_allclose(c_val, 4 * a_val ** 2, rtol=rtol_on(device, 1e-15))
    np.testing.assert_allclose(g["a"], 8 * a_val, rtol=rtol_on(device, 1e-15))


def test_value_feeding_three_equations_sums_three_adjoints(device):
    # y = x * x + sin(x): dy/dx = 2x + cos(x), x read by three equations
    b = Builder()
    x = b.input("x", (3,))
    b.output("y", (x * x + b.apply("sin", x)).sum())
    prog = b.program()
    xv = np.array([0.3, -1.2, 2.5])
    _, g = _run(prog, {"x": xv}, "y", ["x"], device=device)
    np.testing.assert_allclose(g["x"], 2 * xv + np.cos(xv), rtol=rtol_on(device, 1e-14))


# ---------------------------------------------------------------- broadcasting
def test_backward_sums_gradient_over_broadcast_axes(device):
    # s = sum(r * (X + b) * c) with X (3, 4), b (4,), c (3, 1):
    #   ds/dX = r c,   ds/db = sum_i r_ij c_i (over rows),   ds/dc = sum_j r_ij (X_ij + b_j) (over columns)
    rng = np.random.default_rng(0)
    X, bias, col, r = (rng.standard_normal(s) for s in [(3, 4), (4,), (3, 1), (3, 4)])
    b = Builder()
    xv, bv, cv = b.input("X", (3, 4)), b.input("b", (4,)), b.input("c", (3, 1))
    b.output("s", ((xv + bv) * cv * r).sum())   # r: an array constant, moved with the values
    prog = b.program()
    _, g = _run(prog, {"X": X, "b": bias, "c": col}, "s", ["X", "b", "c"], device=device)
    tol = rtol_on(device, 1e-14)
    np.testing.assert_allclose(g["X"], r * col, rtol=tol)
    np.testing.assert_allclose(g["b"], (r * col).sum(axis=0), rtol=tol)
    np.testing.assert_allclose(g["c"], (r * (X + bias)).sum(axis=1, keepdims=True), rtol=tol)
    assert g["b"].shape == (4,) and g["c"].shape == (3, 1)


def test_backward_through_batch_axis_of_unknown_size(device):
    # inputs declared with None for the batch: y = X W + b, s = sum(y^2); ds/dW = X^T 2y, ds/db = sum_n 2y
    rng = np.random.default_rng(1)
    X, W, bias = rng.standard_normal((5, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    b = Builder()
    xv = b.input("X", (None, 3))
    y = xv @ b.input("W", (3, 2)) + b.input("b", (2,))
    assert y.shape == (None, 2)
    b.output("s", (y ** 2).sum())
    prog = b.program()
    _, g = _run(prog, {"X": X, "W": W, "b": bias}, "s", ["W", "b"], device=device)
    y_val = X @ W + bias
    np.testing.assert_allclose(g["W"], X.T @ (2 * y_val), rtol=rtol_on(device, 1e-13))
    np.testing.assert_allclose(g["b"], (2 * y_val).sum(axis=0), rtol=rtol_on(device, 1e-13))


# ---------------------------------------------------------------- a very deep graph
def test_hundred_thousand_node_chain_runs_without_recursion():
    # y = x * c^n after n steps of (x * c + 0): dy/dx = c^n, from a tape of 2n = 100,000 equations
    n, c = 50_000, 1.0000001
    b = Builder()
    x = b.input("x", ())
    v = x
    for _ in range(n):
        v = v * c + 0.0
    b.output("y", v)
    prog = b.program()
    assert len(prog.eqns) == 100_000 and 100_000 > 50 * sys.getrecursionlimit()
    x0 = np.array(0.75)
    y, g = _run(prog, {"x": x0}, "y", ["x"])
    np.testing.assert_allclose(y, 0.75 * c ** n, rtol=1e-10)
    np.testing.assert_allclose(g["x"], c ** n, rtol=1e-10)
    _, tangent = forward_tangent(prog, {"x": x0}, {"x": np.array(1.0)}, "y")
    np.testing.assert_allclose(tangent, c ** n, rtol=1e-10)


# ---------------------------------------------------------------- numerical stability
def test_softplus_is_finite_at_plus_and_minus_1000(device):
    # ln(1 + e^x): = x for large x, = 0 for very negative x; derivative sigmoid(x) = 1 and 0
    b = Builder()
    x = b.input("x", (4,))
    b.output("y", b.apply("softplus", x))
    prog = b.program()
    xv = np.array([-1000.0, 1000.0, 0.0, 1.0])
    # no overflow, no inf - inf, not even a warning (e^-1000 underflowing to 0 is the right answer;
    # errstate sees NumPy's arithmetic, the stand-in's too; a real GPU's values are checked below)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, g = _run(prog, {"x": xv}, "y", ["x"], device=device)
        t = backend.to_host(forward_tangent(prog, on(device, {"x": xv}),
                                            on(device, {"x": np.ones(4)}), "y")[1])
    tol = rtol_on(device, 1e-15)
    np.testing.assert_allclose(y, [0.0, 1000.0, np.log(2.0), np.log1p(np.e)], rtol=tol, atol=0)
    np.testing.assert_allclose(g["x"], [0.0, 1.0, 0.5, 1 / (1 + np.exp(-1.0))], rtol=tol, atol=0)
    np.testing.assert_allclose(t, g["x"], rtol=tol, atol=0)
    assert np.isfinite(y).all() and np.isfinite(g["x"]).all()


# ---------------------------------------------------------------- no state between calls
def _two_layer():
    b = Builder()
    x = b.input("X", (None, 3))
    w1, w2 = b.input("W1", (3, 4)), b.input("W2", (4, 1))
    h = b.apply("relu", x @ w1)
    b.output("L", ((h @ w2 + h.sum(axis=1, keepdims=True)) ** 2).mean())
    rng = np.random.default_rng(3)
    values = {"X": rng.standard_normal((6, 3)), "W1": rng.standard_normal((3, 4)),
              "W2": rng.standard_normal((4, 1))}
    return b.program(), values


def test_two_backward_calls_give_identical_results_and_leave_no_state(device):
    prog, values = _two_layer()
    env = evaluate(prog, on(device, values))
    env_before = [backend.to_host(v).copy() if v is not None else None for v in env]
    first = backward(prog, env, "L", ["W1", "W2", "X"])
    first_copy = {k: backend.to_host(v).copy() for k, v in first.items()}
    for g in first.values():  # a caller scribbling on its gradients must not reach the next call
        g[...] = np.nan
    second = backward(prog, env, "L", ["W1", "W2", "X"])
    for k, g in first_copy.items():
        assert_same(device, backend.to_host(second[k]), g)
    # the primal trace is untouched
    for before, after in zip(env_before, env):
        assert (before is None) == (after is None)
        if before is not None:
            np.testing.assert_array_equal(backend.to_host(after), before)


@pytest.mark.parametrize("explicit_seed", [False, True], ids=["default-seed", "explicit-seed"])
def test_backward_hands_out_independent_gradient_arrays(explicit_seed, device):
    # y = a + c: dy/da = dy/dc = the seed, but as two arrays of their own
    b = Builder()
    a, c = b.input("a", (3,)), b.input("c", (3,))
    b.output("y", a + c)
    prog = b.program()
    env = evaluate(prog, on(device, {"a": np.ones(3), "c": np.ones(3)}))
    seed = backend.to_device(np.array([1.0, 2.0, 3.0]), device) if explicit_seed else None
    g = backward(prog, env, "y", ["a", "c"], seed=seed)
    expected = backend.to_host(g["c"]).copy()
    g["a"] *= 10.0  # e.g. an optimizer scaling its gradient in place
    np.testing.assert_array_equal(backend.to_host(g["c"]), expected)
    if explicit_seed:
        np.testing.assert_array_equal(backend.to_host(seed), [1.0, 2.0, 3.0])


# ---------------------------------------------------------------- the lecture's example
def _lecture_program():
    """y = ln(x1) + x1 x2 - sin(x2), one equation per line of the lecture's primal trace."""
    b = Builder()
    x1, x2 = b.input("x1", ()), b.input("x2", ())
    v1 = b.apply("log", x1)   # v1 = ln v-1
    v2 = x1 * x2              # v2 = v-1 x v0
    v3 = b.apply("sin", x2)   # v3 = sin v0
    v4 = v1 + v2              # v4 = v1 + v2
    v5 = v4 - v3              # v5 = v4 - v3
    b.output("y", v5)
    return b.program(), (v1, v2, v3, v4, v5)


LECTURE_POINT = {"x1": np.array(2.0), "x2": np.array(5.0)}


def test_lecture_forward_primal_trace(device):
    prog, (v1, v2, v3, v4, v5) = _lecture_program()
    env = [None if v is None else backend.to_host(v)
           for v in evaluate(prog, on(device, LECTURE_POINT))]
    # the lecture's column of numbers: ln 2, 2 x 5, sin 5, 0.693 + 10, 10.693 + 0.959, y = 11.652
    assert round(float(env[v1.id]), 3) == 0.693
    assert env[v2.id] == 10.0
    assert round(float(env[v3.id]), 3) == -0.959
    assert round(float(env[v4.id]), 3) == 10.693
    assert round(float(env[v5.id]), 3) == 11.652
    assert_same(device, env[v5.id], np.log(2.0) + 10.0 - np.sin(5.0))


def test_lecture_forward_tangent_seeded_at_x1_gives_5_5(device):
    # x1' = 1, x2' = 0: v1' = 1/2, v2' = 1 x 5 + 0 x 2, v3' = 0 x cos 5, v4' = 0.5 + 5, y' = 5.5 - 0
    prog, _ = _lecture_program()
    point = on(device, LECTURE_POINT)
    y, dy = map(backend.to_host, forward_tangent(
        prog, point, on(device, {"x1": np.array(1.0), "x2": np.array(0.0)}), "y"))
    assert_same(device, y, np.log(2.0) + 10.0 - np.sin(5.0))
    assert_same(device, dy, 5.5)
    # seeded at x2 instead: dy/dx2 = x1 - cos x2
    _, dy2 = forward_tangent(prog, point, on(device, {"x2": np.array(1.0)}), "y")
    np.testing.assert_allclose(backend.to_host(dy2), 2.0 - np.cos(5.0), rtol=rtol_on(device, 1e-15))


def test_lecture_reverse_mode_gives_both_partials_in_one_pass(device):
    # dy/dx1 = 1/x1 + x2 = 5.5,  dy/dx2 = x1 - cos x2 = 1.716
    prog, _ = _lecture_program()
    _, g = _run(prog, LECTURE_POINT, "y", ["x1", "x2"], device=device)
    assert_same(device, g["x1"], 5.5)
    np.testing.assert_allclose(g["x2"], 2.0 - np.cos(5.0), rtol=rtol_on(device, 1e-15))
    assert round(float(g["x2"]), 3) == 1.716


# ---------------------------------------------------------------- the function API
def test_function_api_reproduces_the_lecture_example():
    from bpcli.engine import api as ad

    f = lambda x1, x2: ad.log(x1) + x1 * x2 - ad.sin(x2)  # noqa: E731
    y, ydot = ad.jvp(f, (2.0, 5.0), (1.0, 0.0))
    assert y == pytest.approx(np.log(2) + 10 - np.sin(5), abs=1e-15)
    assert ydot == pytest.approx(5.5, abs=1e-15)
    d1, d2 = ad.grad(f, argnums=(0, 1))(2.0, 5.0)
    assert d1 == pytest.approx(5.5, abs=1e-15)
    assert d2 == pytest.approx(2.0 - np.cos(5.0), abs=1e-15)


def test_function_api_vjp_of_a_vector_function_matches_its_jacobian():
    from bpcli.engine import api as ad

    A = np.random.default_rng(3).standard_normal((4, 3))
    f = lambda x: ad.tanh(x @ A.T)  # noqa: E731  (x: (3,) -> (4,)); matmul folds leading axes
    x = np.random.default_rng(4).standard_normal((1, 3))
    y, pullback = ad.vjp(f, x)
    jac = (1 - np.tanh(x @ A.T) ** 2).reshape(4, 1) * A  # dy_i/dx_j
    v = np.random.default_rng(5).standard_normal((1, 4))
    np.testing.assert_allclose(pullback(v)[0], v @ jac, rtol=1e-12)


# ---------------------------------------------------------------- the printed program
def test_printed_program_shows_every_equation_with_shapes_params_and_origin():
    import bpcli

    prog = bpcli.build("specs/lecture_cnn.yaml").program
    text = prog.pretty()
    assert str(prog) == text
    lines = text.splitlines()
    # inputs first, outputs last, one line per equation in between
    assert lines[0] == "inputs" and lines[len(prog.inputs) + 1] == "equations"
    assert lines[-len(prog.outputs) - 1] == "outputs"
    assert len(lines) == 3 + len(prog.inputs) + len(prog.eqns) + len(prog.outputs)
    assert "  X:(N,64)" in lines and "  layers.0.weight:(1,1,5)" in lines
    body = lines[len(prog.inputs) + 2:-len(prog.outputs) - 1]
    for line, e in zip(body, prog.eqns):
        shape = "(" + ",".join("N" if n is None else str(n) for n in e.out.shape) + ")"
        assert line.startswith(f"  v{e.out.id}:{shape} = {e.prim.name} "), line
        assert line.endswith(f"   # {e.origin}"), line
    conv = next(line for line in body if " = conv " in line)
    assert "= conv v3 layers.0.weight stride=(1,) dilation=(1,)" in conv and "# layers[0]" in conv
    assert any("= reshape X shape=(N,1,64)" in line for line in body)   # N: the batch axis
    assert any("= logaddexp 0 v" in line for line in body)              # a constant operand
    assert "  loss = v" in text.split("outputs")[1]


def test_printed_program_of_a_traced_function_has_no_origins():
    b = Builder()
    x = b.input("x", (3,))
    b.output("y", (x * 2.0).sum())
    assert b.program().pretty().splitlines() == [
        "inputs", "  x:(3,)", "equations",
        "  v1:(3,) = mul x 2", "  v2:() = sum v1 axis=None keepdims=False",
        "outputs", "  y = v2"]
