"""gradcheck catches wrong backward rules, names the layer, and does not cry wolf at a ReLU kink."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import bpcli
from bpcli.cli import main
from bpcli.engine.rules import PRIMITIVES, _conv, _pad, unbroadcast
from bpcli.explain.gradcheck import gradcheck
from bpcli.nn.layers import LAYERS
from bpcli.nn.model import Model

SPECS = Path(__file__).resolve().parents[1] / "specs"


def pulse_model():
    return Model(bpcli.load_spec(SPECS / "pulse_cnn.yaml"), dtype=np.float64)


def mutate(model, layer, prim, index, wrong):
    """Replace one VJP rule of ``prim`` in the equations of one layer only (a buggy copy of it)."""
    prog = model.program
    for k, e in enumerate(prog.eqns):
        if e.origin.layer() == layer and e.prim.name == prim:
            vjp = list(e.prim.vjp)
            vjp[index] = wrong
            prog.eqns[k] = dataclasses.replace(e, prim=dataclasses.replace(e.prim, vjp=tuple(vjp)))
    prog._plans.clear()
    return model


def _conv_vjp_w_wrong_sign(g, y, x, w, *, stride, dilation, saved):
    return -PRIMITIVES["conv"].vjp[1](g, y, x, w, stride=stride, dilation=dilation, saved=saved)


def _conv_vjp_x_unflipped(g, y, x, w, *, stride, dilation, saved):
    # the transposed kernel without the flip: the classic col2im mistake
    widths = ((0, 0), (0, 0), (w.shape[2] - 1,) * 2)
    return _conv(_pad(g, widths), w.swapaxes(0, 1), stride=stride, dilation=dilation)[0]


def _matmul_vjp_b_half(g, y, a, b):
    return 0.5 * PRIMITIVES["matmul"].vjp[1](g, y, a, b)


def _add_vjp_b_first_sample_only(g, y, a, b):
    # the bias gradient should sum over the batch: keep only sample 0 (a dropped accumulation)
    return unbroadcast(g[:1], np.shape(b))


MUTATIONS = {
    # name: (layer, primitive, vjp index, wrong rule, the parameter whose gradient goes wrong)
    "wrong-sign": (2, "conv", 1, _conv_vjp_w_wrong_sign, "layers.2.weight"),
    "missing-factor": (4, "matmul", 1, _matmul_vjp_b_half, "layers.4.weight"),
    "transposed-kernel": (2, "conv", 0, _conv_vjp_x_unflipped, "layers.0.weight"),
    "dropped-accumulation": (0, "add", 1, _add_vjp_b_first_sample_only, "layers.0.bias"),
}


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_wrong_backward_rule_is_caught_and_localised_to_its_layer(name, mode):
    layer, prim, index, wrong, param = MUTATIONS[name]
    model = mutate(pulse_model(), layer, prim, index, wrong)
    report = gradcheck(model, mode=mode, with_cost=False)
    assert report["passed"] is False
    failing = [r["layer"] for r in report["layers"] if not r["passed"]]
    assert failing == [f"layers[{layer}] ({model.spec.network[layer].kind})"]
    worst = [r for r in report["layers"] if not r["passed"]][0]["worst"]
    assert worst["analytic"] != pytest.approx(worst["numeric"])
    if mode == "exact":
        wrong_params = {p["name"] for p in report["parameters"] if not p["passed"]}
        assert param in wrong_params
    else:
        assert not all(d["passed"] for d in report["directions"])


@pytest.mark.slow
def test_every_shipped_spec_passes_every_check():
    for spec in sorted(SPECS.glob("*.yaml")):
        report = gradcheck(bpcli.load_spec(spec), with_cost=False)
        assert report["passed"], spec.name
        assert report["structure"] == {**report["structure"], "zero_upstream_gives_zero": True,
                                       "linear_in_upstream": True, "repeatable": True}
        assert max(d["reverse_vs_forward"] for d in report["directions"]) < 1e-12


def test_a_correct_network_at_a_relu_kink_is_not_reported_as_failing():
    model = Model(bpcli.load_spec(SPECS / "two_layer_sumsq.yaml"), dtype=np.float64)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 16))
    # hidden unit 0 gets pre-activation exactly 0 for every sample: ReLU sits on its kink
    model.params["layers.0.weight"][0] = 0.0
    report = gradcheck(model, X, None, mode="exact", with_cost=False)
    assert report["passed"] is True
    row = {p["name"]: p for p in report["parameters"]}["layers.0.weight"]
    assert row["kinks"] >= 16                         # the 16 weights of unit 0
    assert row["kink_entries"][0]["node"] == "layers[1] (relu) relu"
    assert [e["index"][0] for e in row["kink_entries"]] == [0] * len(row["kink_entries"])


def test_a_random_check_point_on_a_kink_is_redrawn():
    model = Model(bpcli.load_spec(SPECS / "two_layer_sumsq.yaml"), dtype=np.float64)
    model.params["layers.0.weight"][0] = 0.0        # kinked for any data
    report = gradcheck(model, mode="exact", with_cost=False)
    assert report["redrawn"] == 3 and report["passed"] is True


def toeplitz_written_out(w, in_shape, stride, dilation, widths):
    """The explicit matrix of a convolution, entry by entry: row (o, p) holds w[o, c, k] at
    column (c, p·stride + k·dilation - pad) wherever that lands inside the input, which makes it
    banded (block-)Toeplitz: the lecture's W1 and W2."""
    o_ch, c_ch = w.shape[:2]
    kernel, spatial = w.shape[2:], in_shape[1:]
    padded = [n + lo + hi for n, (lo, hi) in zip(spatial, widths)]
    out = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(padded, kernel, stride, dilation)]
    T = np.zeros((o_ch * int(np.prod(out)), c_ch * int(np.prod(spatial))))
    for o in range(o_ch):
        for p_i, p in enumerate(np.ndindex(*out)):
            for c in range(c_ch):
                for k in np.ndindex(*kernel):
                    pos = [pp * s + kk * d - lo for pp, kk, s, d, (lo, _)
                           in zip(p, k, stride, dilation, widths)]
                    if all(0 <= q < n for q, n in zip(pos, spatial)):
                        col = c * int(np.prod(spatial)) + int(np.ravel_multi_index(pos, spatial))
                        T[o * int(np.prod(out)) + p_i, col] += w[(o, c) + k]
    return T


def test_explicit_toeplitz_matrix_is_the_lecture_banded_matrix():
    w = np.array([[[1.0, 2.0, 3.0]]])                 # one channel in and out, kernel 3, pad 1
    T = toeplitz_written_out(w, (1, 5), (1,), (1,), ((1, 1),))
    np.testing.assert_array_equal(T, [[2, 3, 0, 0, 0],
                                      [1, 2, 3, 0, 0],
                                      [0, 1, 2, 3, 0],
                                      [0, 0, 1, 2, 3],
                                      [0, 0, 0, 1, 2]])


@pytest.mark.parametrize("name, fields, sample, geometry", [
    ("conv1d", {"channels": 2, "kernel": 3, "pad": "same", "stride": 1, "dilation": 2},
     (3, 9), ((1,), (2,), ((2, 2),))),
    ("conv1d", {"channels": 1, "kernel": 2, "pad": 1, "stride": 3, "dilation": 1},
     (2, 10), ((3,), (1,), ((1, 1),))),
    ("conv2d", {"channels": 2, "kernel": [2, 3], "pad": [1, 0], "stride": [2, 1], "dilation": 1},
     (2, 5, 6), ((2, 1), (1, 1), ((1, 1), (0, 0)))),
])
def test_a_conv_layers_matrix_view_is_the_toeplitz_matrix_written_out(name, fields, sample,
                                                                      geometry):
    """The matrix gradcheck checks each conv layer against (``LayerDef.matrix``, built by the
    toeplitz primitive) equals the one written out entry by entry."""
    stride, dilation, widths = geometry
    cfg = dict(fields, bias=True, impl="fast")
    w = np.random.default_rng(0).standard_normal((fields["channels"], sample[0],
                                                  *np.atleast_1d(fields["kernel"]) * np.ones(
                                                      len(sample) - 1, dtype=int)))
    T = LAYERS[name].matrix(cfg, sample, w)
    np.testing.assert_allclose(T, toeplitz_written_out(w, sample, stride, dilation, widths),
                               rtol=0, atol=1e-15)


def test_cost_table_counts_the_lecture_argument():
    report = gradcheck(bpcli.load_spec(SPECS / "lecture_cnn.yaml"))
    c = report["cost"]
    assert c["parameters"] == 74
    assert c["numerical"]["loss_evaluations"] == 148 and c["forward_mode"]["passes"] == 74
    assert c["reverse_mode"]["passes"] == 2


def test_sweep_shows_truncation_and_rounding():
    report = gradcheck(bpcli.load_spec(SPECS / "pulse_cnn.yaml"), with_sweep=True,
                       with_cost=False)
    rows = report["sweep"]["rows"]
    assert [r["h"] for r in rows] == [10.0 ** -k for k in range(1, 13)]
    errs = [r["abs_err"] for r in rows]
    best = int(np.argmin(errs))
    assert 0 < best < len(rows) - 1 and errs[-1] > errs[best]   # rounding wins at tiny h


def test_cli_fast_mode_sweep_png_and_json(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", str(SPECS / "pulse_cnn.yaml"), "--mode", "fast", "--sweep",
                 "--sweep-out", "s.png", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "fast" and report["passed"]
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert {"layers", "linear", "structure", "cost", "sweep", "directions"} <= set(report)
    assert main(["gradcheck", str(SPECS / "pulse_cnn.yaml"), "--mode", "sideways"]) == 2


def test_train_preflight_refuses_a_wrong_gradient(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = SPECS / "pulse_cnn.yaml"
    assert main(["train", str(spec), "--epochs", "1", "--preflight", "-q"]) == 0
    assert "preflight gradcheck passed" in capsys.readouterr().err
    relu = PRIMITIVES["relu"]
    monkeypatch.setitem(PRIMITIVES, "relu", dataclasses.replace(
        relu, vjp=(lambda g, y, x: 0.5 * g * (x > 0),)))
    assert main(["train", str(spec), "--epochs", "1", "--preflight", "-q", "--out", "refused"]) == 1
    err = capsys.readouterr().err
    assert "preflight gradcheck failed in layers[1] (relu), layers[3] (relu)" in err
    assert not (tmp_path / "refused").exists()
