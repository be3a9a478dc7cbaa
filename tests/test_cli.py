"""The ``bpcli`` command line end to end: train, eval, plot and gradcheck on small data.

Every command runs in-process through :func:`bpcli.cli.main` (which returns the
exit code) inside a fresh ``tmp_path`` working directory, so the default run
folders land in ``tmp_path/runs``. One test runs the installed console script.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpcli
from bpcli.train.data import linear, pulses
from bpcli.engine.rules import PRIMITIVES
from helpers import cli, ok, tiny_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_FILES = {"spec.yaml", "metrics.csv", "loss.png", "model.npz", "summary.json", "last.npz", "best.npz"}
ALL_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
               "grad_norm", "lr", "elapsed_s"]
SUMMARY_KEYS = {"name", "stop_reason", "epochs", "steps", "final", "best", "n_params", "data",
                "seed", "spec_hash", "started", "ended", "elapsed_s", "command", "versions"}


def read_metrics(run: Path) -> tuple[list[str], list[dict]]:
    with open(run / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames), rows


def read_summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.fixture
def small_npz(workdir):
    """120 pulse signals of length 64 (labels 0/1), fitting specs/pulse_cnn.yaml."""
    d = pulses(120, [64], seed=7)
    path = workdir / "small.npz"
    np.savez(path, X=d.X, y=d.y)
    return path


@pytest.fixture
def tiny_file(workdir):
    """helpers.tiny_spec() as tiny.yaml: name tiny-pulses, 3 epochs on 200 builtin pulses."""
    path = workdir / "tiny.yaml"
    path.write_text(tiny_spec())
    return path


# ---------------------------------------------------------------- train
def test_train_writes_a_complete_run_folder(capsys, workdir, small_npz):
    spec = SPECS / "pulse_cnn.yaml"
    out, err = ok(capsys, "train", spec, "--data", small_npz, "--epochs", 2, "-q")
    run = workdir / "runs" / "pulse-cnn"
    assert {p.name for p in run.iterdir()} == RUN_FILES
    assert "finished 2 epochs" in out and str(Path("runs") / "pulse-cnn") in out
    assert "96 training and 24 validation samples" in err  # 120 samples, val_split 0.2

    # metrics.csv: every column that applies to a classification run, one row per epoch
    columns, rows = read_metrics(run)
    assert columns == ALL_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [int(r["step"]) for r in rows] == [2, 4]  # 96 samples in batches of 64: 2 steps/epoch
    for r in rows:
        assert all(np.isfinite(float(r[c])) for c in columns)
        assert 0.0 <= float(r["train_accuracy"]) <= 1.0 and 0.0 <= float(r["val_accuracy"]) <= 1.0
        assert float(r["lr"]) == 0.003
    assert float(rows[0]["elapsed_s"]) <= float(rows[1]["elapsed_s"])

    # summary.json
    summary = read_summary(run)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["name"] == "pulse-cnn"
    assert summary["stop_reason"] == "finished 2 epochs"
    assert summary["epochs"] == 2 and summary["steps"] == 4
    assert summary["data"] == str(small_npz)
    assert summary["seed"] == 0
    assert summary["command"] == f"bpcli train {spec} --data {small_npz} --epochs 2 -q"
    assert set(summary["final"]) == {"train_loss", "val_loss", "train_accuracy", "val_accuracy"}
    assert summary["final"]["val_loss"] == pytest.approx(float(rows[-1]["val_loss"]))
    assert summary["best"]["val_loss"] == pytest.approx(min(float(r["val_loss"]) for r in rows))

    # spec.yaml: the resolved spec, valid again, with the override and the data it trained on
    resolved = bpcli.load_spec(run / "spec.yaml")
    assert resolved.data["training"]["epochs"] == 2
    assert resolved.data["training"]["batch_size"] == 64
    assert resolved.data["optimizer"] == {"name": "adam", "lr": 0.003, "beta1": 0.9,
                                          "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
                                          "grad_clip": None}
    assert Path(resolved.data["data"]["path"]) == small_npz.resolve()

    # model.npz: plain arrays (no pickle), one per parameter, shaped as the spec says
    model = bpcli.build(run / "spec.yaml")
    with np.load(run / "model.npz", allow_pickle=False) as f:
        weights = {k: f[k] for k in f.files}
    assert set(weights) == set(model.params)
    assert {k: w.shape for k, w in weights.items()} == {k: w.shape for k, w in model.params.items()}
    assert summary["n_params"] == sum(w.size for w in weights.values()) == 1177

    assert (run / "loss.png").read_bytes()[:8] == PNG_MAGIC


def test_train_on_small_builtin_data(capsys, workdir, tiny_file):
    ok(capsys, "train", tiny_file, "-q")
    run = workdir / "runs" / "tiny-pulses"
    assert {p.name for p in run.iterdir()} == RUN_FILES
    columns, rows = read_metrics(run)
    assert columns == ALL_COLUMNS
    assert [int(r["step"]) for r in rows] == [5, 10, 15]  # 150 training samples, batch 32
    summary = read_summary(run)
    assert summary["data"] == "builtin pulses (n=200, seed=0)"
    assert summary["n_params"] == 4 * 5 + 4 + 4 * 32 + 1
    assert bpcli.load_spec(run / "spec.yaml").data["data"]["builtin"] == "pulses"


def test_train_again_never_overwrites(capsys, workdir, tiny_file):
    ok(capsys, "train", tiny_file, "-q", "--epochs", 1)
    first = workdir / "runs" / "tiny-pulses"
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    out, _ = ok(capsys, "train", tiny_file, "-q", "--epochs", 1)
    assert str(Path("runs") / "tiny-pulses-2") in out
    ok(capsys, "train", tiny_file, "-q", "--epochs", 1)
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == [
        "tiny-pulses", "tiny-pulses-2", "tiny-pulses-3"]
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert {p.name for p in (workdir / "runs" / "tiny-pulses-2").iterdir()} == RUN_FILES


def test_train_out_and_seed_options(capsys, workdir, tiny_file):
    ok(capsys, "train", tiny_file, "-q", "--epochs", 1, "--seed", 5, "--out", "elsewhere/mine")
    run = workdir / "elsewhere" / "mine"
    assert {p.name for p in run.iterdir()} == RUN_FILES
    assert not (workdir / "runs").exists()
    assert read_summary(run)["seed"] == 5
    assert bpcli.load_spec(run / "spec.yaml").data["seed"] == 5
    # --out names an existing folder: it is not overwritten either
    ok(capsys, "train", tiny_file, "-q", "--epochs", 1, "--out", "elsewhere/mine")
    assert (workdir / "elsewhere" / "mine-2" / "summary.json").exists()


def test_gd_writes_one_row_per_iteration_and_stops_by_precision(capsys, workdir):
    out, _ = ok(capsys, "train", SPECS / "linear_regression.yaml", "-q")
    run = workdir / "runs" / "linear-regression"
    summary = read_summary(run)
    assert "converged" in summary["stop_reason"] and "precision" in summary["stop_reason"]
    assert "converged" in out
    steps = summary["steps"]
    assert 1 < steps < 500  # stopped by precision, before the 500 epochs
    columns, rows = read_metrics(run)
    # regression: no accuracy columns
    assert columns == ["epoch", "step", "train_loss", "val_loss", "grad_norm", "lr", "elapsed_s"]
    assert len(rows) == steps
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    assert [int(r["epoch"]) for r in rows] == list(range(1, steps + 1))
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.02 < losses[0]  # y = X w* + 0.1 noise: the loss falls to the noise
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # steepest descent, small lr
    assert set(summary["final"]) == {"train_loss", "val_loss"}


def test_train_on_csv_with_target_then_eval(capsys, workdir):
    d = linear(80, [3], seed=1)
    with open("reg.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "label"])
        w.writerows([*x, t] for x, t in zip(d.X.tolist(), d.y.tolist()))
    Path("reg.yaml").write_text("name: reg\ninput: [3]\nlayers: [dense: {units: 1}]\nloss: mse\n"
                                "optimizer: {name: adam, lr: 0.05}\n"
                                "training: {epochs: 5, batch_size: 16}\n")
    _, err = ok(capsys, "train", "reg.yaml", "--data", "reg.csv", "--target", "label", "-q")
    assert "64 training and 16 validation samples from reg.csv" in err
    run = workdir / "runs" / "reg"
    assert read_summary(run)["data"] == "reg.csv"
    assert bpcli.load_spec(run / "spec.yaml").data["data"]["target"] == "label"
    # eval reads the label column the run was trained with, or the one given
    for extra in ([], ["--target", "label"]):
        out, _ = ok(capsys, "eval", run, "--data", "reg.csv", "--json", *extra)
        result = json.loads(out)
        assert set(result) == {"loss", "n", "data", "checkpoint", "mae", "rmse", "r2"}
        assert result["n"] == 80
    # without --data: the validation split of the data the run was trained on
    out, _ = ok(capsys, "eval", run, "--json")
    result = json.loads(out)
    assert result["n"] == 16
    assert result["loss"] == pytest.approx(read_summary(run)["final"]["val_loss"], rel=1e-6)


def test_spec_data_path_is_found_from_the_run_folder(capsys, workdir):
    """A spec's relative data.path is relative to the spec; eval of the run still finds it."""
    proj = workdir / "proj"
    proj.mkdir()
    d = pulses(100, [16], seed=3)
    np.savez(proj / "p.npz", X=d.X, y=d.y)
    (proj / "p.yaml").write_text("name: p\ninput: [16]\ndata: {path: p.npz}\nlayers: "
                                 "[dense: {units: 1}]\nloss: logistic\ntraining: {epochs: 1}\n")
    ok(capsys, "train", proj / "p.yaml", "-q")
    out, _ = ok(capsys, "eval", workdir / "runs" / "p", "--json")
    assert json.loads(out)["n"] == 20


# ---------------------------------------------------------------- eval, plot, gradcheck
@pytest.fixture
def trained(capsys, workdir, small_npz, tiny_file):
    """Two finished runs: pulse-cnn (2 epochs on small.npz) and tiny-pulses (builtin data)."""
    ok(capsys, "train", SPECS / "pulse_cnn.yaml", "--data", small_npz, "--epochs", 2, "-q")
    ok(capsys, "train", tiny_file, "-q")
    return workdir / "runs" / "pulse-cnn", workdir / "runs" / "tiny-pulses"


def test_eval_text_and_json_with_accuracy(capsys, trained, small_npz):
    run, _ = trained
    out, _ = ok(capsys, "eval", run, "--data", small_npz)
    assert out.startswith("small.npz: loss ") and "on 120 samples" in out and "accuracy" in out
    assert "confusion matrix" in out and "per class" in out

    out, _ = ok(capsys, "eval", run, "--data", small_npz, "--json")
    result = json.loads(out)  # one JSON object and nothing else
    assert {"loss", "n", "accuracy", "confusion_matrix", "roc_auc"} <= set(result)
    assert result["n"] == 120
    assert 0.0 <= result["accuracy"] <= 1.0 and result["loss"] > 0
    model = bpcli.build(run / "spec.yaml")
    model.load_params(run / "model.npz")
    d = np.load(small_npz)
    assert result["loss"] == pytest.approx(model.loss(d["X"], d["y"]), rel=1e-6)
    assert result["accuracy"] == pytest.approx(model.accuracy(d["X"], d["y"]))

    # default data: the run's validation split, scoring as summary.json's final row
    out, _ = ok(capsys, "eval", run, "--json")
    result, final = json.loads(out), read_summary(run)["final"]
    assert result["n"] == 24
    assert result["loss"] == pytest.approx(final["val_loss"], rel=1e-5)
    assert result["accuracy"] == pytest.approx(final["val_accuracy"])


def test_plot_two_runs(capsys, trained, workdir):
    out, _ = ok(capsys, "plot", *trained, "--out", "both.png")
    png = workdir / "both.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert "both.png" in out
    ok(capsys, "plot", trained[0])  # default --out
    assert (workdir / "loss_curves.png").read_bytes()[:8] == PNG_MAGIC


def test_gradcheck_text_and_json(capsys, workdir, small_npz):
    spec = SPECS / "pulse_cnn.yaml"
    out, _ = ok(capsys, "gradcheck", spec)
    assert "all gradients agree" in out
    for name in ("layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.4.weight"):
        assert name in out

    out, _ = ok(capsys, "gradcheck", spec, "--json", "--data", small_npz)
    report = json.loads(out)
    assert report["passed"] is True
    model = bpcli.build(spec)
    assert [p["name"] for p in report["parameters"]] == list(model.params)
    for p in report["parameters"]:
        assert {"name", "max_abs_err", "max_rel_err", "passed"} <= set(p)
        assert p["passed"] is True
        assert p["max_rel_err"] < 1e-5


@pytest.mark.parametrize("spec", ["linear_regression.yaml", "two_layer_sumsq.yaml",
                                  "lecture_cnn.yaml"])
def test_gradcheck_passes_on_every_example_spec(capsys, workdir, spec):
    out, _ = ok(capsys, "gradcheck", SPECS / spec, "--json")
    assert json.loads(out)["passed"] is True


def test_gradcheck_with_a_wrong_rule_fails_with_exit_1(capsys, workdir, monkeypatch):
    relu = PRIMITIVES["relu"]
    wrong = dataclasses.replace(relu, vjp=(lambda g, y, x: -g * (x > 0),))  # sign flipped
    monkeypatch.setitem(PRIMITIVES, "relu", wrong)

    code, out, err = cli(capsys, "gradcheck", SPECS / "pulse_cnn.yaml", "--json")
    assert code == 1 and "Traceback" not in err
    report = json.loads(out)
    assert report["passed"] is False
    passed = {p["name"]: p["passed"] for p in report["parameters"]}
    # conv, relu, conv, relu, dense: the second conv's gradient crosses one flipped relu and is
    # wrong; the first conv's crosses two, whose flips cancel; the dense layer's crosses none
    assert passed == {"layers.0.weight": True, "layers.0.bias": True, "layers.2.weight": False,
                      "layers.2.bias": False, "layers.4.weight": True, "layers.4.bias": True}

    code, out, err = cli(capsys, "gradcheck", SPECS / "pulse_cnn.yaml")
    assert code == 1 and "gradients DISAGREE" in out and "FAIL" in out

    monkeypatch.undo()
    assert PRIMITIVES["relu"] is relu
    assert cli(capsys, "gradcheck", SPECS / "pulse_cnn.yaml")[0] == 0


# ---------------------------------------------------------------- divergence, slow training
def test_divergence_exits_1_with_a_clear_message(capsys, workdir, recwarn):
    Path("div.yaml").write_text("name: div\ninput: [8]\nlayers: [dense: {units: 1, bias: false}]\n"
                                "loss: mse\ndata: {builtin: linear, n: 100}\n"
                                "optimizer: {name: sgd, lr: 1e6}\n"
                                "training: {epochs: 5, batch_size: 10}\n")
    code, out, err = cli(capsys, "train", "div.yaml", "-q")
    assert code == 1
    assert "Traceback" not in err and "Warning" not in err
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # no overflow noise
    assert "diverged" in err and "lr" in err and "1000000.0" in err
    summary = read_summary(workdir / "runs" / "div")  # the run so far is kept, saying so
    assert summary["stop_reason"].startswith("diverged")


def test_pulse_cnn_full_training_reaches_97_percent(capsys, workdir):
    ok(capsys, "train", SPECS / "pulse_cnn.yaml", "-q")
    summary = read_summary(workdir / "runs" / "pulse-cnn")
    assert summary["stop_reason"] == "finished 15 epochs"
    assert summary["final"]["val_accuracy"] >= 0.97


# ---------------------------------------------------------------- the installed command
def test_console_script_runs():
    script = Path(sys.executable).parent / "bpcli"
    assert script.exists(), f"no console script at {script} (pip install -e .)"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "eval", "gradcheck", "plot"):
        assert command in proc.stdout


# ---------------------------------------------------------------- trace and graph
def test_trace_prints_the_lecture_tables(capsys, workdir):
    out, _ = ok(capsys, "trace", "ln(x1) + x1*x2 - sin(x2)", "--at", "x1=2,x2=5", "--wrt", "x1")
    for text in ["Forward primal trace", "v₅  = v₄ − v₃  = 10.693 − (−0.959) = 11.652",
                 "Forward tangent trace", "ẏ   = v̇₅", "= 5.5", "Reverse adjoint trace",
                 "∂y/∂x1 = 5.5, ∂y/∂x2 = 1.716", "forward mode 2", "reverse mode 1"]:
        assert text in out, text


def test_trace_json(capsys, workdir):
    out, _ = ok(capsys, "trace", "ln(x1) + x1*x2 - sin(x2)", "--at", "x1=2,x2=5", "--json")
    t = json.loads(out)
    assert t["dy_dwrt"] == 5.5 and t["wrt"] == "x1"
    assert t["gradient"]["x2"] == pytest.approx(2 - np.cos(5))
    assert t["passes"] == {"forward_mode": 2, "reverse_mode": 1, "inputs": 2}


@pytest.mark.parametrize("args, words", [
    (["x +", "--at", "x=1"], "expected a number"),
    (["x", "--at", "x:1"], "'x:1' is not NAME=NUMBER"),
    (["x*y", "--at", "x=1"], "no value for y"),
])
def test_trace_bad_input_exits_2(capsys, workdir, args, words):
    code, out, err = cli(capsys, "trace", *args)
    assert code == 2 and words in err and "Traceback" not in err


def test_graph_of_a_spec_and_of_an_expression(capsys, workdir):
    out, _ = ok(capsys, "graph", SPECS / "lecture_cnn.yaml", "--out", "g.png")
    assert Path("g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "forward nodes" in out
    out, _ = ok(capsys, "graph", "ln(x1) + x1*x2 - sin(x2)", "--dot")
    assert Path("expression_graph.png").exists()
    assert "digraph bpcli" in out and 'label="forward graph"' in out and 'label="backward graph"' in out
    assert "vjp log" in out and "∂L/∂x1" in out
