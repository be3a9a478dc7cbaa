"""Every primitive's rules against the definition of a derivative.

For each primitive ``y = prim(x_1, ..., x_k)`` a tiny program is traced with
:class:`~bpcli.engine.Builder` and reduced to a scalar with a fixed random
weighting, ``s = sum(y * r)``. Then

(a) reverse mode:  ds/dx_i from ``backward``        == (s(x + h e_j) - s(x - h e_j)) / 2h, every entry j;
(b) forward mode:  dy along u from ``forward_tangent`` == (y(x + h u) - y(x - h u)) / 2h;
(c) the adjoint identity between the two rules of one input, straight from the table:
        <v, jvp_i(u)> == <vjp_i(v), u>      (J u paired with v equals u paired with J^T v).

Inputs are float64, drawn from fixed seeds; log, div and pow get inputs away
from zero, relu and maximum inputs away from their kinks. (a) to (c) run on every device
(the ``device`` fixture): the values move there, the references stay NumPy on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli.engine import PRIMITIVES, Builder, backend, backward, evaluate, forward_tangent

H = 1e-6                    # central-difference step
RTOL, ATOL = 1e-6, 1e-8     # central differences are good to about h^2 and eps/h
ADJOINT_RTOL = 1e-12

HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


# ---------------------------------------------------------------- cases
@dataclass
class In:
    """A traced input: its value, and the shape the Builder is told (None = the batch axis)."""

    value: np.ndarray
    declared: tuple | None = None

    def __post_init__(self):
        self.value = np.asarray(self.value, dtype=np.float64)

    @property
    def shape(self):
        return self.value.shape if self.declared is None else self.declared


@dataclass
class Case:
    id: str
    prim: str
    args: list          # In (a traced input) or a plain constant (a literal in the program)
    params: dict = field(default_factory=dict)


_rng = np.random.default_rng(20240601)


def normal(*shape):
    return _rng.standard_normal(shape)


def positive(*shape):
    """Values in [0.5, 2]: safe for log, division and fractional powers."""
    return _rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    """|x| in [0.2, 1.5] with random sign: relu's kink at 0 is never within h."""
    return _rng.uniform(0.2, 1.5, shape) * _rng.choice([-1.0, 1.0], shape)


def denominator(*shape):
    """|x| in [0.5, 2] with random sign: division stays far from a pole."""
    return _rng.uniform(0.5, 2.0, shape) * _rng.choice([-1.0, 1.0], shape)


def untied_pair(shape_a, shape_b, rng=_rng):
    """a near an integer, b near an integer + 1/2: |a - b| >= 0.1 however they broadcast."""
    a = rng.integers(-2, 3, shape_a) + rng.uniform(-0.2, 0.2, shape_a)
    b = rng.integers(-2, 3, shape_b) + 0.5 + rng.uniform(-0.2, 0.2, shape_b)
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def _binary_cases(prim, draw_a, draw_b):
    """The broadcasting shapes every two-input elementwise primitive is checked on."""
    cases = []
    for label, sa, sb, da, db in [
        ("same", (3, 4), (3, 4), None, None),
        ("row-vector", (3, 4), (4,), None, None),
        ("col-times-row", (3, 1), (1, 4), None, None),
        ("0d-var", (), (2, 3), None, None),
        ("batch-None", (2, 4), (4,), (None, 4), None),
    ]:
        a, b = draw_a(sa), draw_b(sb)
        cases.append(Case(f"{prim}-{label}", prim, [In(a, da), In(b, db)]))
    # a Python number in the program, on either side
    cases.append(Case(f"{prim}-literal-right", prim, [In(draw_a((3, 4))), float(draw_b(()))]))
    cases.append(Case(f"{prim}-literal-left", prim, [float(draw_a(())), In(draw_b((3, 4)))]))
    return cases


def _maximum_cases():
    cases = []
    for label, sa, sb in [("same", (3, 4), (3, 4)), ("row-vector", (3, 4), (4,)),
                          ("col-times-row", (3, 1), (1, 4)), ("0d-var", (), (2, 3))]:
        a, b = untied_pair(sa, sb)
        cases.append(Case(f"maximum-{label}", "maximum", [In(a), In(b)]))
    a, b = untied_pair((3, 4), ())
    cases.append(Case("maximum-literal-right", "maximum", [In(a), float(b)]))
    cases.append(Case("maximum-literal-left", "maximum", [float(b), In(a)]))
    return cases


def _unary(prim, draw=normal):
    return Case(prim, prim, [In(draw(3, 4))])


CASES: list[Case] = [
    *_binary_cases("add", lambda s: normal(*s), lambda s: normal(*s)),
    *_binary_cases("sub", lambda s: normal(*s), lambda s: normal(*s)),
    *_binary_cases("mul", lambda s: normal(*s), lambda s: normal(*s)),
    *_binary_cases("div", lambda s: normal(*s), lambda s: denominator(*s)),
    *_maximum_cases(),
    # one input, elementwise
    _unary("neg"), _unary("exp"), _unary("log", positive), _unary("sin"), _unary("cos"),
    _unary("tanh"), _unary("relu", away_from_zero),
    Case("leaky_relu", "leaky_relu", [In(away_from_zero(3, 4))], {"slope": 0.1}),
    Case("elu", "elu", [In(away_from_zero(3, 4))], {"alpha": 1.3}),
    Case("elu-wide", "elu", [In(_rng.uniform(-30, 30, (3, 4)))], {"alpha": 0.7}),
    Case("pow-3", "pow", [In(normal(3, 4))], {"p": 3.0}),
    Case("pow-half", "pow", [In(positive(3, 4))], {"p": 0.5}),
    Case("pow-neg", "pow", [In(positive(2, 5))], {"p": -1.5}),
    Case("pow-0", "pow", [In([[0.0, -1.5, 2.0]])], {"p": 0.0}),   # x^0 = 1: slope 0, also at 0
    # reductions: axis None / int / negative int / tuple, with and without keepdims
    *[Case(f"{r}-axis{axis}-keep{keep}", r, [In(normal(2, 3, 4))], {"axis": axis, "keepdims": keep})
      for r in ("sum", "mean")
      for axis, keep in [(None, False), (None, True), (0, False), (-1, False), (1, True),
                         ((0, 2), False), ((0, 2), True)]],
    # max over continuous random draws: no ties, so every argmax is strict
    *[Case(f"max-axis{axis}-keep{keep}", "max", [In(normal(2, 3, 4))], {"axis": axis, "keepdims": keep})
      for axis, keep in [(None, False), (0, False), (-1, True), (1, False), ((0, 2), False), ((0, 2), True)]],
    Case("max-pooling-windows", "max", [In(normal(2, 3, 2, 2), (None, 3, 2, 2))], {"axis": (2, 3)}),
    Case("log_softmax-axis1", "log_softmax", [In(normal(3, 4))], {"axis": 1}),
    *_binary_cases("logaddexp", lambda s: 10 * normal(*s), lambda s: 10 * normal(*s)),
    # convolution: 1-D and 2-D, stride 1, strided and dilated (col2im scatters by stride)
    Case("conv-1d", "conv", [In(normal(2, 3, 11)), In(normal(4, 3, 3))],
         {"stride": (1,), "dilation": (1,)}),
    Case("conv-1d-dilated", "conv", [In(normal(2, 2, 12)), In(normal(3, 2, 3))],
         {"stride": (1,), "dilation": (2,)}),
    Case("conv-1d-strided", "conv", [In(normal(2, 2, 12)), In(normal(3, 2, 4))],
         {"stride": (3,), "dilation": (1,)}),
    Case("conv-1d-batch-None", "conv", [In(normal(2, 1, 9), (None, 1, 9)), In(normal(2, 1, 5))],
         {"stride": (1,), "dilation": (1,)}),
    Case("conv-2d", "conv", [In(normal(2, 2, 6, 7)), In(normal(3, 2, 3, 2))],
         {"stride": (1, 1), "dilation": (1, 1)}),
    Case("conv-2d-strided-dilated", "conv", [In(normal(1, 2, 9, 8)), In(normal(2, 2, 2, 3))],
         {"stride": (2, 1), "dilation": (1, 2)}),
    # groups: each block of output channels reads its own block of input channels
    Case("conv-1d-groups", "conv", [In(normal(2, 4, 9)), In(normal(6, 2, 3))],
         {"stride": (1,), "dilation": (2,), "groups": 2}),
    Case("conv-2d-depthwise-strided", "conv", [In(normal(2, 3, 7, 6)), In(normal(3, 1, 2, 3))],
         {"stride": (2, 1), "dilation": (1, 1), "groups": 3}),
    # transposed convolution: pad crops, output_pad adds zeros no tap reaches
    Case("conv_transpose-1d", "conv_transpose", [In(normal(2, 3, 5)), In(normal(3, 2, 3))],
         {"stride": (1,), "dilation": (1,), "pad": (0,), "output_pad": (0,)}),
    Case("conv_transpose-1d-stride-pad-output_pad", "conv_transpose",
         [In(normal(2, 2, 6), (None, 2, 6)), In(normal(2, 3, 4))],
         {"stride": (3,), "dilation": (1,), "pad": (1,), "output_pad": (2,)}),
    Case("conv_transpose-1d-output_pad-beyond-pad", "conv_transpose",
         [In(normal(2, 2, 4)), In(normal(2, 2, 2))],
         {"stride": (1,), "dilation": (3,), "pad": (0,), "output_pad": (2,)}),
    Case("conv_transpose-2d-groups", "conv_transpose", [In(normal(2, 4, 4, 3)), In(normal(4, 3, 3, 2))],
         {"stride": (2, 1), "dilation": (1, 2), "pad": (1, 0), "output_pad": (1, 0), "groups": 2}),
    Case("logaddexp-huge", "logaddexp", [In([1000.0, -1000.0, 3.0]), In([-999.0, -1000.0, 700.0])]),
    Case("broadcast_to-row", "broadcast_to", [In(normal(4))], {"shape": (3, 4)}),
    Case("broadcast_to-col", "broadcast_to", [In(normal(3, 1))], {"shape": (2, 3, 5)}),
    Case("log_softmax-axis0", "log_softmax", [In(normal(3, 4))], {"axis": 0}),
    Case("log_softmax-3d-last", "log_softmax", [In(3 * normal(2, 3, 5))], {"axis": -1}),
    # layout
    Case("reshape-plain", "reshape", [In(normal(2, 3, 4))], {"shape": (6, 4)}),
    Case("reshape-minus-one", "reshape", [In(normal(4, 6))], {"shape": (2, -1, 3)}),
    Case("reshape-batch-flatten", "reshape", [In(normal(2, 3, 4), (None, 3, 4))], {"shape": (None, 12)}),
    Case("reshape-batch-unflatten", "reshape", [In(normal(3, 12), (None, 12))], {"shape": (None, 3, 4)}),
    Case("transpose-2d", "transpose", [In(normal(3, 4))], {"axes": (1, 0)}),
    Case("transpose-3d", "transpose", [In(normal(2, 3, 4))], {"axes": (2, 0, 1)}),
    Case("transpose-batch", "transpose", [In(normal(2, 3, 4), (None, 3, 4))], {"axes": (0, 2, 1)}),
    Case("concat-channels", "concat", [In(normal(2, 3, 4), (None, 3, 4)), In(normal(2, 2, 4), (None, 2, 4))],
         {"axis": 1}),
    Case("concat-last-axis", "concat", [In(normal(3, 2)), In(normal(3, 5))], {"axis": 1}),
    Case("pad-2d", "pad", [In(normal(3, 4))], {"widths": ((1, 2), (0, 3))}),
    Case("pad-last-axis", "pad", [In(normal(2, 3, 5), (None, 3, 5))], {"widths": ((0, 0), (0, 0), (2, 1))}),
    Case("pad-first-axis", "pad", [In(normal(2, 3))], {"widths": ((2, 1), (0, 0))}),
    Case("pad-1d", "pad", [In(normal(5))], {"widths": ((3, 0),)}),
    Case("pad-value", "pad", [In(normal(2, 3))], {"widths": ((1, 0), (2, 1)), "value": -2.5}),
    # strided windows: the last len(kernel) axes are spatial
    Case("windows-1d", "windows", [In(normal(2, 3, 9))], {"kernel": (3,), "stride": (1,), "dilation": (1,)}),
    Case("windows-1d-stride-dilation", "windows", [In(normal(2, 3, 11), (None, 3, 11))],
         {"kernel": (3,), "stride": (2,), "dilation": (2,)}),
    Case("windows-1d-stride-gt-kernel", "windows", [In(normal(1, 10))],
         {"kernel": (2,), "stride": (3,), "dilation": (1,)}),
    Case("windows-2d", "windows", [In(normal(2, 5, 6))], {"kernel": (2, 3), "stride": (1, 1), "dilation": (1, 1)}),
    # windows that tile the input (pooling): the transpose is a reshuffle, with and without a remainder
    Case("windows-2d-tiling", "windows", [In(normal(2, 3, 4, 6))],
         {"kernel": (2, 3), "stride": (2, 3), "dilation": (1, 1)}),
    Case("windows-2d-tiling-remainder", "windows", [In(normal(1, 2, 7, 5))],
         {"kernel": (2, 2), "stride": (2, 2), "dilation": (1, 1)}),
    Case("windows-1d-tiling-remainder", "windows", [In(normal(3, 11), (None, 11))],
         {"kernel": (3,), "stride": (3,), "dilation": (1,)}),
    Case("windows-2d-stride-dilation", "windows", [In(normal(1, 2, 7, 8))],
         {"kernel": (2, 3), "stride": (2, 1), "dilation": (1, 2)}),
    # upsampling: the last axes enlarged, by copies or by interpolation (edges clamped)
    Case("upsample-1d-nearest", "upsample", [In(normal(2, 3, 4), (None, 3, 4))],
         {"scale": (3,), "mode": "nearest"}),
    Case("upsample-1d-linear", "upsample", [In(normal(2, 5))], {"scale": (3,), "mode": "linear"}),
    Case("upsample-2d-nearest", "upsample", [In(normal(2, 2, 3, 2))], {"scale": (2, 3), "mode": "nearest"}),
    Case("upsample-2d-linear", "upsample", [In(normal(1, 2, 3, 4), (None, 2, 3, 4))],
         {"scale": (2, 4), "mode": "linear"}),
    # the Toeplitz matrix T(w) of a convolution, linear in the kernel w (out, in, *kernel)
    Case("toeplitz-1d-same", "toeplitz", [In(normal(3, 2, 3))],
         {"size": (6,), "pad": ((1, 1),), "stride": (1,), "dilation": (1,)}),
    Case("toeplitz-1d-stride-dilation", "toeplitz", [In(normal(2, 2, 3))],
         {"size": (9,), "pad": ((2, 1),), "stride": (2,), "dilation": (2,)}),
    Case("toeplitz-2d", "toeplitz", [In(normal(2, 2, 2, 3))],
         {"size": (4, 5), "pad": ((1, 0), (1, 1)), "stride": (2, 1), "dilation": (1, 2)}),
    Case("toeplitz-2d-groups", "toeplitz", [In(normal(4, 1, 2, 2))],
         {"size": (3, 4), "pad": ((1, 1), (0, 1)), "stride": (1, 2), "dilation": (1, 1), "groups": 2}),
    # matrix product: last axis of x against a 2-D W
    Case("matmul-2d", "matmul", [In(normal(3, 4)), In(normal(4, 2))]),
    Case("matmul-batch-axes", "matmul", [In(normal(2, 3, 4)), In(normal(4, 5))]),
    Case("matmul-batch-None", "matmul", [In(normal(2, 2, 3), (None, 2, 3)), In(normal(3, 4))]),
    Case("matmul-vector", "matmul", [In(normal(4)), In(normal(4, 3))]),
    Case("matmul-const-x", "matmul", [normal(5, 3), In(normal(3, 2))]),
    # label maps: class indices with the class axis kept as 1; -1 (ignored) and 3 (beyond the
    # classes) pick nothing; the index's own derivative is 0
    Case("gather-label-map", "gather", [In(normal(2, 3, 4, 5), (None, 3, 4, 5)),
                                        In(_rng.integers(-1, 4, (2, 1, 4, 5)), (None, 1, 4, 5))],
         {"axis": 1}),
    Case("gather-rows-const-index", "gather", [In(normal(4, 3)), _rng.integers(0, 3, (4, 1))],
         {"axis": 1}),
    Case("lookup-class-weights", "lookup", [In(_rng.integers(-1, 4, (2, 1, 3, 2)))],
         {"table": (0.5, 2.0, 1.5), "axis": 1}),
    Case("lookup-one-hot", "lookup", [In(_rng.integers(-1, 3, (3, 1, 4)), (None, 1, 4))],
         {"table": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), "axis": 1}),
    Case("weigh-channels", "weigh", [In(normal(2, 3, 4))], {"weights": (0.5, -2.0, 3.0), "axis": 1}),
    # batch norm: statistics per channel over samples and positions, x far from mean 0
    Case("batch_norm-features", "batch_norm", [In(normal(5, 3), (None, 3))], {"eps": 1e-5}),
    Case("batch_norm-1d", "batch_norm", [In(3 + 2 * normal(2, 3, 4))], {"eps": 1e-3}),
    Case("batch_norm_affine-2d", "batch_norm_affine",
         [In(normal(2, 3, 2, 3), (None, 3, 2, 3)), In(positive(3)), In(normal(3))], {"eps": 1e-5}),
    Case("batch_norm_affine-features", "batch_norm_affine",
         [In(normal(4, 2) - 5), In(normal(2)), In(normal(2))], {"eps": 0.1}),
]


def test_every_primitive_has_a_case():
    # a primitive added to the table without a case here fails this test
    covered = {c.prim for c in CASES}
    assert set(PRIMITIVES) - covered == set()


# ---------------------------------------------------------------- machinery
class Traced:
    """``y = prim(*args)`` and ``s = sum(y * r)`` as one program, with the values to run it on."""

    def __init__(self, prim, args, params, seed=0, device="cpu"):
        self.prim, self.args, self.params, self.device = PRIMITIVES[prim], args, params, device
        b = Builder()
        self.names, call, self.values = [], [], {}
        for i, a in enumerate(args):
            if isinstance(a, In):
                name = f"x{i}"
                self.names.append(name)
                self.values[name] = a.value
                call.append(b.input(name, a.shape))
            else:
                call.append(a)
        y = b.apply(prim, *call, **params)
        self.y_value = self.prim.impl(*self.arrays(), **params)
        self.saved = {}
        if self.prim.saves:  # impl returns (y, what the VJPs need)
            self.y_value, self.saved["saved"] = self.y_value
        self.y_declared = y.shape
        r = b.input("r", y.shape)
        self.values["r"] = np.random.default_rng(seed).standard_normal(np.shape(self.y_value))
        b.output("y", y)
        b.output("s", (y * r).sum())
        self.prog = b.program()

    def arrays(self, values=None):
        values = values or self.values
        return [values[f"x{i}"] if isinstance(a, In) else a for i, a in enumerate(self.args)]

    def var_positions(self):
        return [i for i, a in enumerate(self.args) if isinstance(a, In)]

    def on_device(self, values: dict) -> dict:
        return {k: backend.to_device(v, self.device) for k, v in values.items()}

    def run(self, values, out):
        return backend.to_host(evaluate(self.prog, self.on_device(values))[self.prog.outputs[out].id])

    def shifted(self, name, delta):
        return dict(self.values, **{name: self.values[name] + delta})


def check_reverse(t: Traced):
    """backward's ds/dx against (s(x + h e_j) - s(x - h e_j)) / 2h for every entry j of every input."""
    env = evaluate(t.prog, t.on_device(t.values))
    grads = {k: backend.to_host(g) for k, g in backward(t.prog, env, "s", t.names).items()}
    for name in t.names:
        x = t.values[name]
        assert grads[name].shape == x.shape, name
        numeric = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[j] = H
            numeric[j] = (t.run(t.shifted(name, e), "s") - t.run(t.shifted(name, -e), "s")) / (2 * H)
        np.testing.assert_allclose(grads[name], numeric, rtol=RTOL, atol=ATOL, err_msg=name)


def check_forward(t: Traced, seed=1):
    """forward_tangent's dy along u against (y(x + h u) - y(x - h u)) / 2h, all inputs moving at once."""
    rng = np.random.default_rng(seed)
    u = {n: rng.standard_normal(t.values[n].shape) for n in t.names}
    value, tangent = map(backend.to_host,
                         forward_tangent(t.prog, t.on_device(t.values), t.on_device(u), "y"))
    plus = dict(t.values, **{n: t.values[n] + H * u[n] for n in t.names})
    minus = dict(t.values, **{n: t.values[n] - H * u[n] for n in t.names})
    numeric = (t.run(plus, "y") - t.run(minus, "y")) / (2 * H)
    np.testing.assert_allclose(value, t.y_value, rtol=0, atol=0)
    assert np.shape(tangent) == np.shape(t.y_value)
    np.testing.assert_allclose(tangent, numeric, rtol=RTOL, atol=ATOL)
    # and the scalar s = sum(y * r): its tangent is sum(dy * r)
    ds = backend.to_host(forward_tangent(t.prog, t.on_device(t.values), t.on_device(u), "s")[1])
    s_numeric = (t.run(plus, "s") - t.run(minus, "s")) / (2 * H)
    np.testing.assert_allclose(ds, s_numeric, rtol=RTOL, atol=ATOL)


def check_adjoint(t: Traced, seed=2):
    """<v, J_i u> == <J_i^T v, u> with J_i u = jvp[i](u, ...) and J_i^T v = vjp[i](v, ...)."""
    rng = np.random.default_rng(seed)
    xs, y = t.arrays(), t.y_value
    # inputs and array constants move, as the engine moves them; number constants stay numbers
    dxs = [backend.to_device(x, t.device) if isinstance(x, np.ndarray) else x for x in xs]
    dy, dsaved = backend.to_device(y, t.device), t.on_device(t.saved)
    for i in t.var_positions():
        u = rng.standard_normal(np.shape(xs[i]))
        v = rng.standard_normal(np.shape(y))
        Ju = backend.to_host(t.prim.jvp[i](backend.to_device(u, t.device), dy, *dxs, **t.params))
        JTv = backend.to_host(t.prim.vjp[i](backend.to_device(v, t.device), dy, *dxs, **t.params,
                                            **dsaved))
        assert Ju.shape == np.shape(y), f"jvp[{i}] gives {Ju.shape}, output is {np.shape(y)}"
        assert JTv.shape == np.shape(xs[i]), f"vjp[{i}] gives {JTv.shape}, input is {np.shape(xs[i])}"
        lhs, rhs = np.sum(v * Ju), np.sum(JTv * u)
        scale = np.sum(np.abs(v * Ju)) + np.sum(np.abs(JTv * u)) + 1e-300
        assert abs(lhs - rhs) <= ADJOINT_RTOL * scale, f"input {i}: <v, Ju> = {lhs}, <J^T v, u> = {rhs}"


def check_shape_rule(t: Traced):
    """The shape rule, run before any data exists, agrees with the array impl (None = any size)."""
    actual = np.shape(t.y_value)
    assert len(t.y_declared) == len(actual)
    assert all(d is None or d == n for d, n in zip(t.y_declared, actual)), (t.y_declared, actual)


def check_all(t: Traced):
    check_shape_rule(t)
    check_reverse(t)
    check_forward(t)
    check_adjoint(t)


_ids = [c.id for c in CASES]


@pytest.fixture(params=CASES, ids=_ids)
def traced(request, device):
    c = request.param
    return Traced(c.prim, c.args, c.params, device=device)


def test_shape_rule_matches_impl(traced):
    check_shape_rule(traced)


def test_reverse_mode_matches_central_differences(traced):
    check_reverse(traced)


def test_forward_mode_matches_central_differences(traced):
    check_forward(traced)


def test_jvp_and_vjp_rules_are_adjoint(traced):
    check_adjoint(traced)


# ---------------------------------------------------------------- random shapes (hypothesis)
@HYPOTHESIS
@given(prim=st.sampled_from(["add", "sub", "mul", "div", "maximum"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4),
       seed=st.integers(0, 2**32 - 1))
def test_elementwise_broadcasting_gradients_for_random_shapes(prim, shapes, seed):
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(seed)
    if prim == "maximum":
        a, b = untied_pair(sa, sb, rng)
    else:
        a = rng.standard_normal(sa)
        b = rng.standard_normal(sb)
        if prim == "div":  # |b| in [0.5, 2]
            b = rng.uniform(0.5, 2.0, sb) * rng.choice([-1.0, 1.0], sb)
    t = Traced(prim, [In(np.asarray(a, float)), In(np.asarray(b, float))], {}, seed)
    assert np.shape(t.y_value) == shapes.result_shape
    check_all(t)


@st.composite
def window_geometry(draw):
    nd = draw(st.integers(1, 2))
    lead = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=2)))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    spatial = tuple(d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation))
    return lead + spatial, dict(kernel=kernel, stride=stride, dilation=dilation)


@HYPOTHESIS
@given(geometry=window_geometry(), seed=st.integers(0, 2**32 - 1))
def test_windows_gradients_for_random_geometry(geometry, seed):
    shape, p = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    t = Traced("windows", [In(x)], p, seed)
    # the forward, written out: y[..., o_1.., k_1..] = x[..., o_1 s_1 + k_1 d_1, ...]
    nd = len(p["kernel"])
    y = t.y_value
    out = y.shape[-2 * nd:-nd]
    assert out == tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in
                        zip(shape[-nd:], p["kernel"], p["stride"], p["dilation"]))
    for o in np.ndindex(*out):
        for k in np.ndindex(*p["kernel"]):
            src = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, p["stride"], p["dilation"]))
            np.testing.assert_array_equal(y[(Ellipsis,) + o + k], x[(Ellipsis,) + src])
    check_all(t)


@pytest.mark.parametrize("x_shape, w_shape, stride, dilation, w_dtype", [
    ((7, 3, 20), (4, 3, 5), (1,), (1,), np.float32),
    ((5, 2, 9, 8), (3, 2, 3, 2), (2, 1), (1, 2), np.float32),
    ((5, 2, 9, 8), (3, 2, 3, 2), (2, 1), (1, 2), np.float64),   # dtypes promote as whole
])
def test_conv_gives_the_same_bits_whatever_the_batch_slices(monkeypatch, x_shape, w_shape,
                                                            stride, dilation, w_dtype):
    # the host walks a big batch in cache-sized slices (backend.batch_slices), a GPU or a small
    # batch goes whole: every sample's products are the same either way, so are y, gx and gw
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(w_dtype)
    prim, p = PRIMITIVES["conv"], dict(stride=stride, dilation=dilation)
    g = rng.standard_normal(prim.shape(x_shape, w_shape, **p)).astype(np.float32)

    def run(cache_bytes):
        monkeypatch.setattr(backend, "CACHE_BYTES", cache_bytes)
        assert (len(backend.batch_slices(x, col_bytes)) > 1) == (cache_bytes < 1 << 40)
        y, saved = prim.impl(x, w, **p)    # saved: the columns, None when they went in slices
        assert (saved is None) == (cache_bytes < 1 << 40)
        return (y, prim.vjp[0](g, y, x, w, **p, saved=saved),
                prim.vjp[1](g, y, x, w, **p, saved=saved))

    col_bytes = int(np.prod(w_shape[1:])) * int(np.prod(g.shape[2:])) * 4
    whole = run(1 << 40)
    for cache_bytes in (col_bytes, 2 * col_bytes):  # one sample a slice; uneven slices of two
        for got, want in zip(run(cache_bytes), whole):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    assert whole[0].dtype == np.result_type(np.float32, w_dtype)


@pytest.mark.parametrize("x_shape, w_shape, stride, dilation", [
    ((3, 3, 20), (4, 3, 5), (1,), (1,)),
    ((2, 2, 11, 8), (3, 2, 3, 2), (2, 1), (1, 2)),
    ((2, 4, 9, 9), (4, 2, 3, 3), (1, 1), (1, 1)),   # groups 2
])
def test_conv_in_row_blocks_equals_conv_whole(monkeypatch, x_shape, w_shape, stride, dilation):
    # one sample's columns larger than the cache: the output is made in blocks of rows, each
    # from the input rows it reads (the last block short), and the weight gradient adds the
    # blocks' products; float64, so any slip of a row shows
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    groups = x_shape[1] // w_shape[1]
    prim, p = PRIMITIVES["conv"], dict(stride=stride, dilation=dilation, groups=groups)
    out = prim.shape(x_shape, w_shape, **p)
    g = rng.standard_normal(out)

    def run():
        y, saved = prim.impl(x, w, **p)
        return (y, prim.vjp[0](g, y, x, w, **p, saved=saved),
                prim.vjp[1](g, y, x, w, **p, saved=saved))
    whole = run()
    row = int(np.prod(w_shape[1:])) * int(np.prod(out[3:])) * 8 * groups   # one row's columns
    for rows in (1, 2):
        monkeypatch.setattr(backend, "CACHE_BYTES", rows * row)
        from bpcli.engine.rules import _row_blocks
        assert len(_row_blocks(x[:1], x_shape[1] * int(np.prod(w_shape[2:])), out)) > 1
        for got, want in zip(run(), whole):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- conventions at the kinks
def _grad_of_sum(prim, *values, **params):
    b = Builder()
    xs = [b.input(f"x{i}", np.shape(v)) for i, v in enumerate(values)]
    b.output("s", b.apply(prim, *xs, **params).sum())
    prog = b.program()
    names = [f"x{i}" for i in range(len(values))]
    vals = dict(zip(names, values))
    g = backward(prog, evaluate(prog, vals), "s", names)
    tangents = [forward_tangent(prog, vals, {n: np.ones_like(vals[n])}, "s")[1] for n in names]
    return [g[n] for n in names], tangents


def test_relu_derivative_at_exactly_zero_is_zero():
    # d relu / dx = I[x > 0]: 0 at x = 0 (the lecture's I[h > 0], PyTorch's convention)
    x = np.array([-1.0, 0.0, 2.0])
    (g,), (t,) = _grad_of_sum("relu", x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])
    assert t == 1.0  # forward mode agrees: only x = 2 moves the sum


def test_maximum_tie_sends_gradient_to_second_input():
    # d max(x, y): I[x > y] to x, I[x <= y] to y, so a tie x == y goes to y only
    x = np.array([1.0, 3.0, 2.0])
    y = np.array([1.0, 2.0, 5.0])
    (gx, gy), (tx, ty) = _grad_of_sum("maximum", x, y)
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(gy, [1.0, 0.0, 1.0])
    assert (tx, ty) == (1.0, 2.0)


def test_leaky_relu_and_elu_derivatives_at_exactly_zero_are_slope_and_alpha():
    # PyTorch's convention: the x <= 0 branch owns the kink, so d/dx at 0 is slope (alpha·e^0 for elu)
    x = np.array([-1.0, 0.0, 2.0])
    (g,), (t,) = _grad_of_sum("leaky_relu", x, slope=0.1)
    np.testing.assert_allclose(g, [0.1, 0.1, 1.0], rtol=1e-15)
    assert t == pytest.approx(1.2)
    (g,), (t,) = _grad_of_sum("elu", x, alpha=1.5)
    np.testing.assert_allclose(g, [1.5 * np.exp(-1.0), 1.5, 1.0], rtol=1e-15)
    assert t == pytest.approx(1.5 * np.exp(-1.0) + 2.5)


def test_max_sends_the_whole_gradient_to_the_first_maximum_in_window_order():
    # two 2x2 windows, reduced over their last two axes: ties go to the first maximum in C order
    # (row by row), one element only, as PyTorch's max_pool2d; the tangent is read there too
    x = np.array([[[1.0, 3.0], [3.0, 3.0]],
                  [[2.0, 2.0], [2.0, 2.0]]])
    (g,), (t,) = _grad_of_sum("max", x, axis=(1, 2))
    np.testing.assert_array_equal(g, [[[0, 1], [0, 0]], [[1, 0], [0, 0]]])
    assert t == 2.0
    # a reduced axis in front of a kept one: the first maximum along axis 0, per column
    x = np.array([[1.0, 5.0, 0.0],
                  [4.0, 5.0, 0.0],
                  [4.0, 2.0, 0.0]])
    (g,), _ = _grad_of_sum("max", x, axis=0)
    np.testing.assert_array_equal(g, [[0, 1, 1], [1, 0, 0], [0, 0, 0]])


def test_max_over_a_window_gives_the_losers_exactly_zero_even_under_an_inf():
    # the VJP's fast path multiplies g by 0/1 masks; inf * 0 would be NaN where the losers'
    # gradient is 0 by definition (the whole upstream gradient goes to the winner)
    from bpcli.engine import PRIMITIVES

    x = np.array([[1.0, 3.0, 2.0, 0.0]]).reshape(1, 2, 2)
    prim = PRIMITIVES["max"]
    y, saved = prim.impl(x, axis=(2,))
    g = np.array([[np.inf, -np.inf]])
    gx = prim.vjp[0](g, y, x, axis=(2,), saved=saved)
    assert gx.tolist() == [[[0.0, np.inf], [-np.inf, 0.0]]]
