"""Pooling's options and global pooling against PyTorch and ONNX.

``ceil_mode`` (max and average pooling) and ``count_include_pad`` (average pooling) are PyTorch's
arguments of the same names; ``global_avgpool`` and ``global_maxpool`` are PyTorch's
``adaptive_avg_pool`` / ``adaptive_max_pool`` to size 1, flattened to (N, C). Each is compared in
float64, forward and gradients (of the input, and of a convolution's weights in front), then
exported: ONNX Runtime against ``Model.forward``, and bpcli against the ONNX backend's own node
tests for the operators they are written with.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import bpcli
from bpcli.engine import backend, backward, evaluate
from bpcli.errors import InputError


def spec(sample, layers, loss="mse", dtype="float64"):
    return {"name": "t", "input": list(sample), "dtype": dtype, "seed": 0, "layers": layers,
            "loss": loss}


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def torch_pool(torch, layer, cfg):
    """The torch.nn.functional call a pooling layer stands for, its fields as the arguments."""
    F = torch.nn.functional
    nd = 1 if layer.endswith("1d") else 2
    size = cfg["size"] if nd == 1 else pair(cfg["size"])
    stride = cfg.get("stride") or size
    pad = cfg.get("pad", 0)
    stride, pad = (stride, pad) if nd == 1 else (pair(stride), pair(pad))
    ceil = cfg.get("ceil_mode", False)
    if layer.startswith("max"):
        fn = F.max_pool1d if nd == 1 else F.max_pool2d
        return lambda x: fn(x, size, stride, pad, ceil_mode=ceil)
    fn = F.avg_pool1d if nd == 1 else F.avg_pool2d
    return lambda x: fn(x, size, stride, pad, ceil_mode=ceil,
                        count_include_pad=cfg.get("count_include_pad", True))


def grads_with_input(model, X, Y):
    """bpcli's output, L = mean((f - Y)^2), and dL/d(every parameter and X), on the host."""
    env = evaluate(model.program, model.inputs(X, Y))
    grads = backward(model.program, env, "loss", list(model.params) + ["X"])
    out = backend.to_host(env[model.program.outputs["output"].id])
    return out, {k: backend.to_host(v) for k, v in grads.items()}


def against_torch(torch, model, device, X, forward):
    """bpcli on ``device`` against ``forward(x, weights)`` in PyTorch, with the same weights: the
    output, then the gradients of mean((f - Y)^2) wrt every parameter and the input."""
    rng = np.random.default_rng(3)
    for w in model.params.values():
        w[...] = rng.standard_normal(w.shape)
    params_t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    x_t = torch.tensor(X, requires_grad=True)
    out_t = forward(x_t, params_t)
    Y = rng.standard_normal(tuple(out_t.shape))
    ((out_t - torch.tensor(Y)) ** 2).mean().backward()
    out, g = grads_with_input(model.to(device), X, Y)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-13, atol=1e-13)
    for name, p_t in params_t.items():
        np.testing.assert_allclose(g[name], p_t.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(g["X"], x_t.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg="X")


# ---------------------------------------------------------------- ceil_mode, count_include_pad
OPTION_CASES = [
    # (id, layer, sample shape, fields): each option where it changes the answer
    ("max1d-ceil-odd", "maxpool1d", [2, 9], {"size": 2, "ceil_mode": True}),
    ("max1d-ceil-stride-pad", "maxpool1d", [2, 10], {"size": 3, "stride": 2, "pad": 1,
                                                     "ceil_mode": True}),
    # ceil gives 3 windows, but the third would start in the right padding: PyTorch drops it
    ("max1d-ceil-drops-window-in-pad", "maxpool1d", [5], {"size": 2, "stride": 3, "pad": 1,
                                                          "ceil_mode": True}),
    ("max2d-ceil-pairs", "maxpool2d", [1, 7, 8], {"size": [3, 2], "stride": [2, 3], "pad": [1, 0],
                                                  "ceil_mode": True}),
    ("avg1d-ceil", "avgpool1d", [2, 10], {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True}),
    ("avg1d-ceil-no-pad-count", "avgpool1d", [2, 10],
     {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True, "count_include_pad": False}),
    ("avg1d-no-pad-count", "avgpool1d", [2, 9], {"size": 4, "stride": 2, "pad": 2,
                                                 "count_include_pad": False}),
    ("avg1d-ceil-drops-window-in-pad", "avgpool1d", [5], {"size": 2, "stride": 3, "pad": 1,
                                                          "ceil_mode": True}),
    ("avg2d-ceil", "avgpool2d", [2, 7, 8], {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True}),
    ("avg2d-ceil-no-pad-count-pairs", "avgpool2d", [1, 7, 9],
     {"size": [2, 3], "stride": [3, 2], "pad": [1, 1], "ceil_mode": True,
      "count_include_pad": False}),
    ("avg2d-no-pad-count-overlap", "avgpool2d", [6, 6], {"size": 3, "stride": 1, "pad": 1,
                                                         "count_include_pad": False}),
    ("avg2d-ceil-size1-stride2", "avgpool2d", [2, 5, 4], {"size": 1, "stride": 2,
                                                          "ceil_mode": True}),
]


@pytest.mark.parametrize("layer,sample,cfg", [c[1:] for c in OPTION_CASES],
                         ids=[c[0] for c in OPTION_CASES])
def test_pool_options_match_torch_forward_and_input_gradient(layer, sample, cfg, device, torch):
    model = bpcli.build(spec(sample, [{layer: cfg}]))
    X = np.random.default_rng(1).standard_normal((3, *sample))
    pool = torch_pool(torch, layer, cfg)
    # a sample without a channel axis is one channel to bpcli; torch's 1-D pools take it as (N, L)
    against_torch(torch, model, device, X, lambda x, p: pool(x))


@pytest.mark.parametrize("layer,cfg", [
    ("maxpool2d", {"size": 2, "ceil_mode": True}),
    ("avgpool2d", {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True,
                   "count_include_pad": False}),
], ids=["max", "avg"])
def test_pool_options_pass_a_convolutions_weight_gradient_as_torch(layer, cfg, device, torch):
    # conv2d (2 -> 3 channels, 3x3) on 7x8, then the pool: 5x6 maps, odd rows for ceil_mode
    model = bpcli.build(spec([2, 7, 8], [{"conv2d": {"channels": 3, "kernel": 3}}, {layer: cfg}]))
    X = np.random.default_rng(2).standard_normal((4, 2, 7, 8))
    pool = torch_pool(torch, layer, cfg)
    against_torch(torch, model, device, X, lambda x, p: pool(
        torch.nn.functional.conv2d(x, p["layers.0.weight"], p["layers.0.bias"])))


@pytest.mark.slow  # 1,098 models built and compared: about 3 s
def test_every_geometry_of_1d_pooling_matches_torch(torch):
    # lengths 2..9, windows 1..4, strides 1..3, every padding PyTorch allows, both options:
    # output, and the input gradient of a sum weighted by G
    rng = np.random.default_rng(4)
    F = torch.nn.functional
    checked = 0
    for n, k, s, ceil in itertools.product(range(2, 10), range(1, 5), range(1, 4), (False, True)):
        for p, include in itertools.product(range(k // 2 + 1), (True, False)):
            if n + 2 * p < k:
                continue
            for kind in ("max", "avg"):
                cfg = {"size": k, "stride": s, "pad": p, "ceil_mode": ceil}
                if kind == "avg":
                    cfg["count_include_pad"] = include
                elif not include:
                    continue
                model = bpcli.build(spec([2, n], [{f"{kind}pool1d": cfg}]))
                X = rng.standard_normal((2, 2, n))
                x_t = torch.tensor(X, requires_grad=True)
                out_t = (F.max_pool1d(x_t, k, s, p, ceil_mode=ceil) if kind == "max" else
                         F.avg_pool1d(x_t, k, s, p, ceil_mode=ceil, count_include_pad=include))
                G = rng.standard_normal(tuple(out_t.shape))
                out_t.backward(torch.tensor(G))
                env = evaluate(model.program, model.inputs(X), until="output")
                gx = backward(model.program, env, "output", ["X"], seed=G)["X"]
                where = f"{kind}pool1d {cfg} on length {n}"
                np.testing.assert_allclose(env[model.program.outputs["output"].id],
                                           out_t.detach().numpy(), rtol=1e-13, atol=1e-13,
                                           err_msg=where)
                np.testing.assert_allclose(gx, x_t.grad.numpy(), rtol=1e-13, atol=1e-13,
                                           err_msg=where)
                checked += 1
    assert checked > 1000


def test_max_pooling_with_ceil_mode_breaks_ties_as_torch_does(device, torch):
    # inputs from {0, 1, 2}: many windows hold several maxima, the last ones partial; the
    # gradient goes to each window's first maximum, never to the -inf beyond the edge
    cfg = {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True}
    model = bpcli.build(spec([2, 6, 8], [{"maxpool2d": cfg}])).to(device)
    X = np.random.default_rng(5).integers(0, 3, (4, 2, 6, 8)).astype(np.float64)
    x_t = torch.tensor(X, requires_grad=True)
    out_t = torch_pool(torch, "maxpool2d", cfg)(x_t)
    G = np.random.default_rng(6).integers(1, 10, tuple(out_t.shape)).astype(np.float64)
    out_t.backward(torch.tensor(G))
    env = evaluate(model.program, model.inputs(X), until="output")
    grads = backward(model.program, env, "output", ["X"], seed=backend.to_device(G, device))
    np.testing.assert_array_equal(backend.to_host(grads["X"]), x_t.grad.numpy())


def test_a_partial_window_divides_by_what_it_covers_up_to_the_padding():
    # length 6, windows of 3 every 2, pad 1, ceil_mode: windows [-1, 2), [1, 4), [3, 6), [5, 8);
    # the last covers x[5] and one zero of padding, and nothing past the padding counts
    X = np.array([[2.0, 4.0, 6.0, 8.0, 10.0, 12.0]])
    fields = {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True}
    with_pad = bpcli.build(spec([6], [{"avgpool1d": fields}]))
    np.testing.assert_array_equal(with_pad.forward(X), [[2.0, 6.0, 10.0, 6.0]])   # 12 / 2
    no_pad = bpcli.build(spec([6], [{"avgpool1d": dict(fields, count_include_pad=False)}]))
    np.testing.assert_array_equal(no_pad.forward(X), [[3.0, 6.0, 10.0, 12.0]])    # 12 / 1


def program_text(layers, sample=(2, 9)) -> str:
    return bpcli.build(spec(sample, layers)).program.pretty()


@pytest.mark.parametrize("layer,cfg,same_as", [
    # the defaults, and options that change nothing here, compile to the program they always did
    ("avgpool1d", {"size": 2, "pad": 1, "count_include_pad": True, "ceil_mode": False},
     {"size": 2, "pad": 1}),
    ("avgpool1d", {"size": 3, "count_include_pad": False}, {"size": 3}),
    ("avgpool1d", {"size": 3, "stride": 1, "ceil_mode": True}, {"size": 3, "stride": 1}),
    ("maxpool1d", {"size": 2, "pad": 1, "ceil_mode": False}, {"size": 2, "pad": 1}),
    ("maxpool1d", {"size": 3, "ceil_mode": True}, {"size": 3}),       # 9 = 3 windows of 3
])
def test_options_that_change_nothing_add_no_equations(layer, cfg, same_as):
    assert program_text([{layer: cfg}]) == program_text([{layer: same_as}])
    assert "sum" not in program_text([{layer: cfg}])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_window_divisor_keeps_the_models_dtype(dtype):
    # the divisors are a constant array: it must not turn a float32 model's output into float64
    model = bpcli.build(spec([2, 7, 7], [{"avgpool2d": {"size": 2, "pad": 1, "ceil_mode": True,
                                                        "count_include_pad": False}}],
                             dtype=dtype))
    X = np.random.default_rng(7).standard_normal((3, 2, 7, 7))
    Y = np.zeros((3, 2, 4, 4))
    assert model.forward(X).dtype == dtype
    env = evaluate(model.program, model.inputs(X.astype(dtype), Y.astype(dtype)))
    gx = backward(model.program, env, "loss", ["X"])["X"]
    assert gx.dtype == dtype


# ---------------------------------------------------------------- global pooling
GLOBAL_CASES = [
    # (id, sample shape, layers in front of the global pool)
    ("2d", [3, 5, 4], []),
    ("1d", [3, 7], []),
    ("after-conv2d", [2, 6, 5], [{"conv2d": {"channels": 3, "kernel": 2}}]),
    ("after-conv1d", [2, 9], [{"conv1d": {"channels": 4, "kernel": 3, "stride": 2}}]),
]


def torch_front(torch, layers, x, p):
    F = torch.nn.functional
    for i, entry in enumerate(layers):
        conv = F.conv2d if "conv2d" in entry else F.conv1d
        x = conv(x, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"],
                 stride=next(iter(entry.values())).get("stride", 1))
    return x


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("sample,front", [c[1:] for c in GLOBAL_CASES],
                         ids=[c[0] for c in GLOBAL_CASES])
def test_global_pooling_is_torchs_adaptive_pooling_to_one(kind, sample, front, device, torch):
    F = torch.nn.functional
    model = bpcli.build(spec(sample, [*front, f"global_{kind}pool"]))
    X = np.random.default_rng(8).standard_normal((3, *sample))

    def forward(x, p):
        h = torch_front(torch, front, x, p)
        pool = {("avg", 3): F.adaptive_avg_pool1d, ("avg", 4): F.adaptive_avg_pool2d,
                ("max", 3): F.adaptive_max_pool1d, ("max", 4): F.adaptive_max_pool2d}
        return pool[kind, h.ndim](h, 1).flatten(1)
    against_torch(torch, model, device, X, forward)


@pytest.mark.parametrize("sample", [[2, 4, 5], [3, 6]], ids=["2d", "1d"])
def test_global_max_pooling_breaks_ties_as_torch_does(sample, device, torch):
    # inputs from {0, 1, 2} over 20 or 6 positions: most channels hold the maximum several times;
    # PyTorch's adaptive_max_pool gives the gradient to the first in C order, as bpcli
    F = torch.nn.functional
    model = bpcli.build(spec(sample, ["global_maxpool"])).to(device)
    X = np.random.default_rng(9).integers(0, 3, (5, *sample)).astype(np.float64)
    x_t = torch.tensor(X, requires_grad=True)
    pool = F.adaptive_max_pool2d if len(sample) == 3 else F.adaptive_max_pool1d
    out_t = pool(x_t, 1).flatten(1)
    G = np.random.default_rng(10).integers(1, 10, tuple(out_t.shape)).astype(np.float64)
    out_t.backward(torch.tensor(G))
    env = evaluate(model.program, model.inputs(X), until="output")
    grads = backward(model.program, env, "output", ["X"], seed=backend.to_device(G, device))
    np.testing.assert_array_equal(backend.to_host(grads["X"]), x_t.grad.numpy())


@pytest.mark.parametrize("layers", [["global_avgpool"],
                                    [{"dense": {"units": 3}}, "global_maxpool"]],
                         ids=["no-spatial-axis", "after-dense"])
def test_global_pooling_needs_a_spatial_axis(layers):
    with pytest.raises(InputError, match=r"needs input \(channels, \*spatial\) with at least one "
                                         r"spatial axis, got \((5|3),\)"):
        bpcli.build(spec([5], layers))


def test_global_pooling_gives_one_value_per_channel():
    model = bpcli.build(spec([3, 5, 4], ["global_avgpool", {"dense": {"units": 2}}]))
    assert model.program.eqns[0].out.shape == (None, 3)
    assert model.params["layers.1.weight"].shape == (2, 3)


# ---------------------------------------------------------------- ONNX
def ort_forward(ort, proto, X):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})[0]


EXPORT_CASES = [
    # in float32, where ONNX Runtime has every kernel; stride 3 and padded MaxPool with
    # ceil_mode are what onnx's reference evaluator (test_export.py's float64 stand-in) miscounts
    ("maxpool1d", [2, 10], {"size": 3, "stride": 3, "pad": 1, "ceil_mode": True}),
    ("maxpool2d", [2, 7, 8], {"size": 3, "stride": 2, "pad": 1, "ceil_mode": True}),
    ("maxpool1d", [5], {"size": 2, "stride": 3, "pad": 1, "ceil_mode": True}),
    ("avgpool1d", [2, 10], {"size": 3, "stride": 3, "pad": 1, "ceil_mode": True}),
    ("avgpool1d", [2, 11], {"size": 4, "stride": 3, "pad": 2, "ceil_mode": True,
                            "count_include_pad": False}),
    ("avgpool2d", [2, 7, 8], {"size": [3, 2], "stride": 3, "pad": [1, 0], "ceil_mode": True}),
    ("avgpool2d", [1, 9, 9], {"size": 3, "stride": 2, "pad": 1, "count_include_pad": False}),
    ("global_maxpool", [3, 7], None),
    ("global_avgpool", [3, 7], None),
    ("global_maxpool", [3, 4, 5], None),
]


@pytest.mark.parametrize("layer,sample,cfg", EXPORT_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(EXPORT_CASES)])
def test_onnx_runtime_pools_as_bpcli(layer, sample, cfg, onnx, ort):
    from bpcli.export import to_onnx

    model = bpcli.build(spec(sample, [layer if cfg is None else {layer: cfg}], dtype="float32"))
    X = np.random.default_rng(11).standard_normal((7, *sample)).astype(np.float32)
    got = ort_forward(ort, to_onnx(model), X)
    np.testing.assert_allclose(got, model.forward(X), rtol=1e-6, atol=1e-6)


def test_ceil_mode_needs_opset_10_and_is_written_only_when_set(onnx):
    from bpcli.export import to_onnx

    ceil = bpcli.build(spec([2, 7], [{"avgpool1d": {"size": 2, "ceil_mode": True}}]))
    attributes = {a.name: onnx.helper.get_attribute_value(a)
                  for a in to_onnx(ceil, opset=10).graph.node[0].attribute}
    assert attributes["ceil_mode"] == 1 and attributes["count_include_pad"] == 1
    with pytest.raises(InputError, match="opset 9 is too old for the ONNX operator AveragePool "
                                         r"that layers\[0\] \(avgpool1d\) is written with: it "
                                         "needs opset 10 or newer"):
        to_onnx(ceil, opset=9)
    plain = bpcli.build(spec([2, 7], [{"maxpool1d": {"size": 2}}]))
    node = to_onnx(plain, opset=8).graph.node[0]
    assert node.op_type == "MaxPool" and "ceil_mode" not in {a.name for a in node.attribute}


def onnx_node_as_layer(onnx, node):
    """The bpcli layer an ONNX pooling node is, as a spec entry, or None where bpcli has no such
    layer (dilations, auto_pad, asymmetric or over-half padding, 3-D, a second output)."""
    a = {att.name: onnx.helper.get_attribute_value(att) for att in node.attribute}
    if node.op_type in ("GlobalAveragePool", "GlobalMaxPool"):
        return "global_avgpool" if node.op_type == "GlobalAveragePool" else "global_maxpool"
    nd = len(a["kernel_shape"])
    pads = a.get("pads", [0] * 2 * nd)
    if (nd > 2 or len(node.output) > 1 or a.get("auto_pad", b"NOTSET") != b"NOTSET"
            or any(d != 1 for d in a.get("dilations", [1] * nd)) or pads[:nd] != pads[nd:]
            or any(2 * p > k for p, k in zip(pads, a["kernel_shape"]))):
        return None
    kind = "max" if node.op_type == "MaxPool" else "avg"
    cfg = {"size": list(a["kernel_shape"]), "stride": list(a.get("strides", [1] * nd)),
           "pad": list(pads[:nd]), "ceil_mode": bool(a.get("ceil_mode", 0))}
    if nd == 1:
        cfg = {k: v[0] if isinstance(v, list) else v for k, v in cfg.items()}
    if kind == "avg":
        cfg["count_include_pad"] = bool(a.get("count_include_pad", 0))   # ONNX's default: 0
    return {f"{kind}pool{nd}d": cfg}


@pytest.mark.slow  # onnx generates all its 1,884 node tests to hand back these: about 5 s
@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # its Cast tests' generators overflow
def test_bpcli_passes_onnxs_own_node_tests_for_its_pools(onnx):
    # onnx generates its backend node tests (model, inputs, expected outputs) in Python
    from onnx.backend.test.loader import load_model_tests

    ops = ("AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool")
    passed = set()
    for case in load_model_tests(kind="node"):
        node = case.model.graph.node[0]
        if node.op_type not in ops:
            continue
        (x,), (want, *_) = case.data_sets[0]
        entry = onnx_node_as_layer(onnx, node)
        if entry is None:
            continue
        model = bpcli.build(spec(x.shape[1:], [entry]))
        got = model.forward(x.astype(np.float64))
        # the case's own tolerance: some expected values are written rounded to 4 digits
        np.testing.assert_allclose(got, want.reshape(got.shape), rtol=case.rtol, atol=case.atol,
                                   err_msg=case.name)
        passed.add(case.name)
    assert {"test_averagepool_2d_ceil", "test_averagepool_2d_ceil_last_window_starts_on_pad",
            "test_averagepool_2d_precomputed_pads",
            "test_averagepool_2d_precomputed_pads_count_include_pad",
            "test_averagepool_1d_default", "test_averagepool_2d_strides",
            "test_maxpool_2d_ceil", "test_maxpool_2d_ceil_output_size_reduce_by_one",
            "test_maxpool_2d_precomputed_pads", "test_maxpool_1d_default",
            "test_globalaveragepool", "test_globalaveragepool_precomputed",
            "test_globalmaxpool", "test_globalmaxpool_precomputed"} <= passed


# ---------------------------------------------------------------- the spec
def test_the_new_fields_at_their_defaults_leave_the_resolved_spec_as_it_was():
    # implicit fields: a spec written before them keeps its fingerprint, and writing the
    # defaults out changes nothing; a value other than the default is recorded
    def resolved(fields):
        return bpcli.load_spec(spec([2, 9], [{"avgpool1d": fields}]))
    before = resolved({"size": 2})
    assert before.data["layers"] == [{"avgpool1d": {"size": 2, "stride": None, "pad": 0}}]
    spelled_out = resolved({"size": 2, "ceil_mode": False, "count_include_pad": True})
    assert spelled_out.fingerprint() == before.fingerprint()
    changed = resolved({"size": 2, "ceil_mode": True})
    assert changed.data["layers"][0]["avgpool1d"]["ceil_mode"] is True
    assert changed.fingerprint() != before.fingerprint()
