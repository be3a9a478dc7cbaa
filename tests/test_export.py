"""bpcli export: a network leaves bpcli as ONNX and runs the same in ONNX Runtime.

Every layer of ``LAYERS`` has cases here (a new layer without any fails the guard, naming it),
with every padding, stride, dilation, preprocess and loss head; each is exported with fresh
weights, random biases and hand-set batchnorm and preprocessing statistics, checked by
``onnx.checker`` and run by ONNX Runtime at batch sizes 1 and 7 against ``Model.forward``:
1e-5 relative in float32, 1e-10 in float64. ONNX Runtime's CPU provider has no float64 kernel
for the operators in ``ORT_NO_FLOAT64`` (docs/export.md names the same, checked here); a float64
model using one of those is run by the onnx package's reference evaluator instead (and ORT must
say that operator is what it lacks).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import bpcli
from bpcli.export import ORT_NO_FLOAT64
from bpcli.cli import main
from bpcli.nn.layers import LAYERS
from helpers import tiny_spec

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}

# (input, preprocess, layers) per layer name; each case ends in a dense head (below)
CASES = {
    "conv1d": [([16], "none", [{"conv1d": {"channels": 3, "kernel": 4, "pad": "same"}}]),
               ([2, 16], "standardize", [{"conv1d": {"channels": 3, "kernel": 3, "stride": 2,
                                                     "pad": 2, "dilation": 2}}]),
               ([2, 15], "minmax", [{"conv1d": {"channels": 2, "kernel": 4, "pad": "same",
                                                "dilation": 3, "bias": False}}]),
               ([16], "none", [{"conv1d": {"channels": 3, "kernel": 5, "stride": 3,
                                           "impl": "toeplitz"}}]),
               ([4, 9], "none", [{"conv1d": {"channels": 6, "kernel": 3, "groups": 2}}])],
    "conv2d": [([2, 9, 8], "standardize", [{"conv2d": {"channels": 3, "kernel": [3, 2],
                                                       "pad": "same", "dilation": [1, 2]}}]),
               ([9, 8], "minmax", [{"conv2d": {"channels": 2, "kernel": 3, "stride": [2, 1],
                                               "pad": [1, 0]}}]),
               ([2, 7, 7], "none", [{"conv2d": {"channels": 2, "kernel": 2, "pad": "same",
                                                "impl": "toeplitz", "bias": False}}]),
               ([3, 6, 5], "minmax", [{"conv2d": {"channels": 3, "kernel": 3, "stride": 2,
                                                  "pad": 1, "groups": 3}}])],
    "conv1d_transpose": [([2, 6], "standardize", [{"conv1d_transpose": {
                             "channels": 3, "kernel": 3, "stride": 2, "pad": 1, "output_pad": 1}}]),
                         # output_pad 2 >= stride 1 (dilation 3): ONNX's output_padding cannot
                         ([7], "none", [{"conv1d_transpose": {"channels": 2, "kernel": 2,
                                                              "dilation": 3, "output_pad": 2}}])],
    "conv2d_transpose": [([2, 4, 5], "none", [{"conv2d_transpose": {
                             "channels": 3, "kernel": [3, 2], "stride": [2, 1], "pad": [1, 0],
                             "output_pad": [1, 0], "dilation": [1, 2]}}]),
                         ([4, 5], "minmax", [{"conv2d_transpose": {
                             "channels": 2, "kernel": 2, "stride": 2, "impl": "toeplitz",
                             "bias": False}}])],
    "upsample1d": [([2, 7], "none", [{"upsample1d": {"scale": 3, "mode": "bilinear"}}]),
                   ([7], "standardize", ["upsample1d"])],
    "upsample2d": [([2, 3, 4], "none", [{"upsample2d": {"scale": [2, 3], "mode": "bilinear"}}]),
                   ([3, 4], "minmax", [{"upsample2d": {"scale": 2}}])],
    "maxpool1d": [([3, 10], "none", [{"maxpool1d": {"size": 3, "stride": 2, "pad": 1}}]),
                  ([11], "standardize", [{"maxpool1d": {"size": 2}}]),
                  ([2, 3, 10], "none", [{"maxpool1d": {"size": 4, "stride": 3, "pad": 2}}]),
                  ([3, 10], "none", [{"maxpool1d": {"size": 3, "stride": 2, "pad": 1,
                                                    "ceil_mode": True}}])],
    "maxpool2d": [([2, 7, 8], "none", [{"maxpool2d": {"size": 3, "stride": [2, 1], "pad": 1}}]),
                  ([7, 8], "minmax", [{"maxpool2d": {"size": [2, 3], "pad": [1, 1]}}]),
                  ([2, 7, 8], "minmax", [{"maxpool2d": {"size": 2, "stride": [2, 3],
                                                        "ceil_mode": True}}])],
    "avgpool1d": [([3, 10], "none", [{"avgpool1d": {"size": 3, "stride": 2, "pad": 1}}]),
                  ([11], "minmax", [{"avgpool1d": {"size": 2, "stride": 1}}]),
                  ([2, 3, 10], "none", [{"avgpool1d": {"size": 4, "pad": 2}}]),
                  ([3, 10], "none", [{"avgpool1d": {"size": 3, "stride": 2, "pad": 1,
                                                    "ceil_mode": True}}]),
                  ([9], "standardize", [{"avgpool1d": {"size": 4, "stride": 2, "pad": 2,
                                                       "count_include_pad": False}}])],
    "avgpool2d": [([2, 7, 8], "standardize", [{"avgpool2d": {"size": 3, "stride": [1, 2],
                                                             "pad": 1}}]),
                  ([7, 8], "none", [{"avgpool2d": {"size": [2, 3], "pad": [1, 0]}}]),
                  ([2, 7, 8], "none", [{"avgpool2d": {"size": 3, "stride": 2, "pad": 1,
                                                      "ceil_mode": True,
                                                      "count_include_pad": False}}]),
                  ([2, 6, 6], "minmax", [{"avgpool2d": {"size": [3, 2], "pad": [1, 0],
                                                        "count_include_pad": False}}])],
    "global_avgpool": [([3, 5, 4], "standardize", ["global_avgpool"]),
                       ([2, 7], "none", [{"conv1d": {"channels": 3, "kernel": 2}},
                                         "global_avgpool"])],
    "global_maxpool": [([3, 5, 4], "none", ["global_maxpool"]),
                       # 2-D: for 1-D, onnx 1.23's reference evaluator (float64's stand-in for
                       # ORT) reduces the channels too; ORT is right (tests/test_pool_options.py)
                       ([2, 6, 5], "minmax", [{"conv2d": {"channels": 3, "kernel": 2}},
                                              "global_maxpool"])],
    "dense": [([2, 3, 4], "standardize", [{"dense": {"units": 5}}]),
              ([6], "none", [{"dense": {"units": 4, "bias": False}}])],
    "flatten": [([2, 3, 4], "minmax", ["flatten"])],
    "relu": [([6], "none", [{"dense": {"units": 5}}, "relu"])],
    "leaky_relu": [([6], "none", [{"dense": {"units": 5}}, {"leaky_relu": {"slope": 0.1}}]),
                   ([6], "none", [{"dense": {"units": 5}}, {"leaky_relu": {"slope": 0.25}}])],
    "elu": [([6], "none", [{"dense": {"units": 5}}, {"elu": {"alpha": 0.7}}]),
            ([6], "none", [{"dense": {"units": 5}}, "elu"])],
    "sigmoid": [([6], "none", [{"dense": {"units": 5}}, "sigmoid"])],
    "tanh": [([6], "none", [{"dense": {"units": 5}}, "tanh"])],
    "softplus": [([6], "none", [{"dense": {"units": 5}}, "softplus"])],
    "dropout": [([6], "standardize", [{"dense": {"units": 5}}, {"dropout": {"rate": 0.5}}])],
    "batchnorm": [([6], "none", ["batchnorm"]),
                  ([2, 9], "standardize", [{"batchnorm": {"eps": 1e-3}}]),
                  ([2, 5, 4], "none", [{"batchnorm": {"affine": False}}])],
    # graphs: a residual block that adds the network's input back, and a U-Net-style join
    "add": [([2, 6], "standardize",
             [{"conv1d": {"channels": 2, "kernel": 3, "pad": "same", "name": "a"}}, "relu",
              {"conv1d": {"channels": 2, "kernel": 3, "pad": "same"}},
              {"add": {"with": ["a", "input"]}}])],
    "concat": [([2, 4, 4], "none",
                [{"conv2d": {"channels": 3, "kernel": 3, "pad": 1, "name": "enc"}},
                 {"maxpool2d": {"size": 2}}, {"conv2d": {"channels": 2, "kernel": 1}},
                 {"conv2d": {"channels": 1, "kernel": 3, "pad": 1, "from": "enc"}},
                 {"concat": {"with": ["enc", "input"]}}])],
}
HEADS = [("softmax_cross_entropy", 3), ("logistic", 1), ("mse", 2), ("hinge", 1)]


def _specs() -> dict:
    """{test id: spec} for every case, the dense heads taking turns at the losses."""
    specs, k = {}, 0
    for name, cases in CASES.items():
        for j, (shape, preprocess, layers) in enumerate(cases):
            loss, units = HEADS[k % len(HEADS)]
            k += 1
            specs[f"{name}-{j}-{loss}"] = {
                "name": f"{name}-{j}", "input": shape, "preprocess": preprocess,
                "layers": layers + [{"dense": {"units": units}}], "loss": loss}
    return specs


SPECS = _specs()


def test_every_layer_has_an_onnx_lowering_and_export_cases():
    for name, d in LAYERS.items():
        assert callable(d.onnx) or (isinstance(d.onnx, str) and d.onnx), \
            f"layer {name} has no ONNX lowering (LayerDef.onnx), nor a reason it cannot have one"
        assert name in CASES, f"layer {name} has no export cases in tests/test_export.py CASES"


def nontrivial(model, seed=0):
    """Random biases, running statistics and preprocessing statistics, so none is 0 or 1."""
    rng = np.random.default_rng(seed)
    for name, w in model.params.items():
        if name.endswith("bias"):
            w[...] = rng.standard_normal(w.shape)
    for name, b in model.buffers.items():
        positive = name.endswith(("running_var", "scale"))
        b[...] = rng.uniform(0.5, 2.0, b.shape) if positive else rng.standard_normal(b.shape)
    return model


def relative_error(got, want) -> float:
    """max |got - want| / max |want|: the error on the output's own scale (in float64)."""
    diff = np.max(np.abs(np.float64(got) - np.float64(want)))
    return 0.0 if diff == 0 else float(diff / np.max(np.abs(np.float64(want))))


def softmax(f):
    e = np.exp(f - f.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def probabilities(loss, f):
    """The loss's probabilities, written out: softmax of the logits; [1 - σ(f), σ(f)]."""
    if loss == "softmax_cross_entropy":
        return softmax(f)
    if loss == "logistic":
        return np.hstack([1 / (1 + np.exp(f)), 1 / (1 + np.exp(-f))])
    return None


def run_onnx(onnx, ort, proto, X):
    """ONNX Runtime's outputs; for a float64 model using an operator ORT's CPU provider has no
    float64 kernel for, the onnx package's reference evaluator's (ORT must name that operator)."""
    try:
        session = ort.InferenceSession(proto.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own NotImplemented type
        missing = {op for op in ORT_NO_FLOAT64 if f"implementation for {op}(" in str(e)}
        assert X.dtype == np.float64 and missing, f"ONNX Runtime refused the model: {e}"
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(proto).run(None, {"X": X})
    return session.run(None, {"X": X})


def test_docs_export_md_names_the_operators_onnx_runtime_has_no_float64_kernel_for():
    text = (ROOT / "docs" / "export.md").read_text()
    sentence = text[text.index("has no float64 kernel for"):text.index("a float64 model using one")]
    assert set(re.findall(r"`(\w+)`", sentence)) == ORT_NO_FLOAT64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_onnx_runtime_computes_what_forward_computes(spec, dtype, onnx, ort):
    from bpcli.export import to_onnx

    model = nontrivial(bpcli.build({**spec, "dtype": dtype}))
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    rng = np.random.default_rng(1)
    for n in (1, 7):
        X = (3 * rng.standard_normal((n, *spec["input"]))).astype(dtype)
        got = run_onnx(onnx, ort, proto, X)
        want = model.forward(X)
        assert got[0].dtype == want.dtype and got[0].shape == want.shape
        assert relative_error(got[0], want) <= TOLERANCE[dtype]
        p = probabilities(spec["loss"], want.astype(np.float64))
        assert len(got) == (1 if p is None else 2)
        if p is not None:
            assert relative_error(got[1], p) <= TOLERANCE[dtype]


@pytest.mark.parametrize("case", ["avgpool1d-0", "batchnorm-1", "dense-0"])
def test_the_oldest_opset_accepted_runs_the_same(case, onnx, ort):
    """The operator floors (writer.FORM_SINCE) are real: the oldest opset export accepts
    (ONNX Runtime runs opset 7 and newer) gives the same numbers, and one older is refused."""
    from bpcli.errors import InputError
    from bpcli.export import to_onnx

    spec = next(s for key, s in SPECS.items() if key.startswith(f"{case}-"))  # any head
    model = nontrivial(bpcli.build(spec))
    opset = 17
    while opset > 7:
        try:
            to_onnx(model, opset=opset - 1)
        except InputError as e:
            assert "--opset" in str(e) and "needs opset" in str(e)
            break
        opset -= 1
    X = np.random.default_rng(2).standard_normal((7, *spec["input"])).astype(np.float32)
    got = run_onnx(onnx, ort, to_onnx(model, opset=opset), X)
    assert relative_error(got[0], model.forward(X)) <= 1e-5


def layer_of(name) -> str:
    return LAYERS[name if isinstance(name, str) else next(iter(name))].name


def test_docs_export_md_names_every_layer_and_the_operators_it_is_written_with(onnx):
    from bpcli.export import to_onnx

    table = {}
    for row in (ROOT / "docs" / "export.md").read_text(encoding="utf-8").splitlines():
        if row.startswith("| `"):
            names, operators = row.split(" | ")[:2]
            table.update(dict.fromkeys(re.findall(r"`(\w+)`", names), operators))
    assert set(LAYERS) <= set(table), f"docs/export.md has no row for {set(LAYERS) - set(table)}"
    for key, spec in SPECS.items():
        for dtype in ("float32", "float64"):
            proto = to_onnx(nontrivial(bpcli.build({**spec, "dtype": dtype})))
            for i, entry in enumerate(spec["layers"][:-1]):
                name = layer_of(entry)
                ops = {n.op_type for n in proto.graph.node if n.name.startswith(f"layers.{i}.")}
                missing = {op for op in ops if f"`{op}`" not in table[name]}
                assert not missing, f"docs/export.md's row for {name} lacks {sorted(missing)}"


# ------------------------------------------------------------ the command, on trained runs
SHIPPED = ["image_cnn", "lecture_cnn", "linear_regression", "pulse_cnn", "two_layer_sumsq"]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_spec_trained_one_epoch_exports_and_runs_the_same(name, workdir, capsys,
                                                                    onnx, ort):
    spec = ROOT / "specs" / f"{name}.yaml"
    assert main(["train", str(spec), "--epochs", "1", "--out", "runs/r"]) == 0
    capsys.readouterr()
    assert main(["export", "runs/r", "--out", "net.onnx"]) == 0
    assert capsys.readouterr().out.strip() == "net.onnx"
    model = bpcli.load_run("runs/r")
    proto = onnx.load("net.onnx")
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["bpcli_version"] == bpcli.__version__ and meta["checkpoint"] == "final"
    assert meta["spec_name"] == model.spec.data["name"]
    assert meta["spec_fingerprint"] == model.spec.fingerprint()
    assert meta["loss"] == model.loss_def.name
    assert json.loads(meta.get("classes", "null")) == model.classes()
    assert proto.opset_import[0].version == 17
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] \
        == ["N", *model.spec.data["input"]]
    rng = np.random.default_rng(3)
    for n in (1, 7):
        X = rng.standard_normal((n, *model.spec.data["input"])).astype(model.dtype)
        got = run_onnx(onnx, ort, proto, X)
        want = model.forward(X)
        assert relative_error(got[0], want) <= TOLERANCE[str(model.dtype)]


def test_export_of_the_best_checkpoint_records_it(workdir, onnx, ort):
    (workdir / "tiny.yaml").write_text(tiny_spec())
    assert main(["train", "tiny.yaml", "--out", "runs/t"]) == 0
    assert main(["export", "runs/t", "--checkpoint", "best"]) == 0
    proto = onnx.load("t-best.onnx")   # the default name: the run folder's, here
    assert {p.key: p.value for p in proto.metadata_props}["checkpoint"] == "best"
    best = bpcli.load_run("runs/t", "best")
    X = np.random.default_rng(4).standard_normal((7, 32)).astype(np.float32)
    got = ort.InferenceSession("t-best.onnx", providers=["CPUExecutionProvider"]).run(None, {"X": X})
    assert relative_error(got[0], best.forward(X)) <= 1e-5


# ------------------------------------------------------------ bad input: exit 2, no file
@pytest.fixture
def tiny_run(workdir):
    (workdir / "tiny.yaml").write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", "tiny.yaml", "--out", "runs/t"]) == 0
    return workdir


def refused(workdir, capsys, args, says):
    assert main(["export", "runs/t", "--out", "x.onnx", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(workdir.glob("**/*.onnx")) and not list(workdir.glob("**/.*.tmp"))


@pytest.mark.parametrize("args, says", [
    (["--format", "tflite"], "--format: must be one of onnx, got 'tflite'"),
    (["--checkpoint", "last"], "--checkpoint: must be one of final, best, got 'last'"),
    (["--opset", "0"], "--opset: must be a positive integer, got 0"),
    (["--out", "no/such/x.onnx"], "--out: its folder does not exist"),
    (["--out", "x.txt"], "--out: the file name must end in .onnx"),
])
def test_bad_export_options_are_one_paragraph_and_exit_2(tiny_run, capsys, args, says):
    refused(tiny_run, capsys, args, says)


@pytest.mark.parametrize("args, says", [
    (["--opset", "9"], "--opset: opset 9 is too old for the ONNX operator Unsqueeze that "
                       "layers[0] (conv1d) is written with: it needs opset 13 or newer"),
    (["--opset", "999"], "--opset: must be an opset from 1 to"),
])
def test_an_opset_onnx_cannot_write_the_network_at_is_refused(tiny_run, capsys, onnx, args, says):
    refused(tiny_run, capsys, args, says)


def test_a_layer_without_an_onnx_form_is_refused_naming_it(tiny_run, capsys, monkeypatch, onnx):
    monkeypatch.setitem(LAYERS, "relu", replace(LAYERS["relu"], onnx="no operator computes it"))
    assert main(["export", "runs/t"]) == 2
    err = capsys.readouterr().err
    assert "layers[1]: relu cannot be exported to ONNX: no operator computes it" in err
    assert not list(tiny_run.glob("*.onnx"))


def test_without_onnx_export_names_the_missing_package(tiny_run, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx now raises ImportError
    assert main(["export", "runs/t"]) == 2
    err = capsys.readouterr().err
    assert "needs the onnx package" in err and "pip install 'bpcli[export]'" in err
    assert not list(tiny_run.glob("*.onnx"))


def test_a_float64_export_onnx_runtime_cannot_load_says_so_and_what_to_do(workdir, capsys, onnx):
    (workdir / "tiny.yaml").write_text(tiny_spec(training={"epochs": 1}, dtype="float64"))
    assert main(["train", "tiny.yaml", "--out", "runs/t64"]) == 0
    capsys.readouterr()
    assert main(["export", "runs/t64", "--out", "t64.onnx"]) == 0
    err = capsys.readouterr().err
    assert ("note: ONNX Runtime's CPU provider has no float64 kernel for Conv" in err
            and "--set dtype=float32" in err)
    (workdir / "tiny32.yaml").write_text(tiny_spec(training={"epochs": 1}, dtype="float32"))
    assert main(["train", "tiny32.yaml", "--out", "runs/t32"]) == 0
    capsys.readouterr()
    assert main(["export", "runs/t32", "--out", "t32.onnx"]) == 0
    assert "note:" not in capsys.readouterr().err    # ONNX Runtime runs a float32 Conv


def test_a_per_pixel_softmax_head_needs_opset_13_where_softmax_became_one_axiss(workdir, capsys,
                                                                                 onnx, ort):
    """Softmax(axis=1) before opset 13 normalizes over every axis after the first: over the
    pixels too of a (N, K, H, W) output. Such an export is refused below 13, and at 13 the
    probabilities are ONNX Runtime's per pixel, as predict's."""
    from bpcli.export import to_onnx
    model = bpcli.build({"name": "seg", "input": [1, 4, 4], "dtype": "float32", "loss":
                         "softmax_cross_entropy",
                         "layers": [{"conv2d": {"channels": 3, "kernel": 3, "pad": "same"}}]})
    with pytest.raises(bpcli.InputError, match="opset 12 is too old for the ONNX operator Softmax"
                                               ".* needs opset 13"):
        to_onnx(model, opset=12)
    proto = to_onnx(model, opset=13)
    X = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    _, probabilities = session.run(None, {"X": X})
    np.testing.assert_allclose(probabilities, model.predict(X).probabilities, rtol=1e-5,
                               atol=1e-6)
