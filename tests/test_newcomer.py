"""What a newcomer ran into: a run that train accepts must be one eval can read, labels that are
class names mean a classifier, a shape error says how to fix it, and the small things (a long
expression for graph, a pipe closed early, singular counts, estimated times said to be so).

Bad input is refused with exit code 2, one paragraph on stderr naming the culprit and the fix,
no traceback, and no run folder left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import cli, ok, pictures, tiny_spec

# Line numbers: 1 name  2 input  3 seed  4 layers:  5 dense 8  6 relu  7 dense 5  8 loss
# 9 optimizer  10 training
CLASSIFIER = """\
name: newcomer
input: [4]
seed: 0
layers:
  - dense: {units: 8}
  - relu
  - dense: {units: 5}
loss: softmax_cross_entropy
optimizer: {name: adam, lr: 0.01}
training: {epochs: 1, batch_size: 8}
"""


def table(path: Path, labels, n: int = 40, features: int = 4) -> Path:
    """A CSV of ``n`` rows: ``features`` standard normal columns f0.. and the column ``label``
    (``labels`` repeated to n rows)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((n, features)), columns=[f"f{i}" for i in range(features)])
    df["label"] = np.resize(np.asarray(labels, dtype=object), n)
    df.to_csv(path, index=False)
    return path


def spec(workdir: Path, text: str = CLASSIFIER, name: str = "c.yaml") -> Path:
    (workdir / name).write_text(text)
    return workdir / name


def refused(capfd, *args) -> str:
    """bpcli ARGS must exit 2 with one paragraph on stderr and nothing on stdout: that paragraph."""
    code, out, err = cli(capfd, *args)
    assert code == 2, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert err.startswith("bpcli: error: ") and err.count("\n") == 1, err
    assert out == ""
    return err


def no_run_folder(workdir: Path) -> None:
    assert not (workdir / "runs").exists()
    assert not (workdir / "out").exists()


# ---------------------------------------------------------------- 1. classes against outputs
def test_train_refuses_two_named_classes_for_five_outputs(workdir, capfd):
    """yes/no labels are 2 classes; 5 outputs under softmax cross-entropy tell 5 apart: eval
    would refuse the run, so train refuses it first, at the layer that sets the outputs."""
    table(workdir / "yesno.csv", ["yes", "no"])
    spec(workdir)
    err = refused(capfd, "train", "c.yaml", "--data", "yesno.csv", "--target", "label",
                  "--out", "out")
    assert "c.yaml:7:13: layers[2].dense.units:" in err
    for fragment in ("yesno.csv", "2 classes (no, yes)", "5 outputs", "softmax_cross_entropy",
                     "units: 2", "--set 'layers[2].dense.units=2'"):
        assert fragment in err, (fragment, err)
    no_run_folder(workdir)


def test_the_suggested_set_trains_a_run_that_eval_reads(workdir, capfd):
    table(workdir / "yesno.csv", ["yes", "no"])
    spec(workdir)
    ok(capfd, "train", "c.yaml", "--data", "yesno.csv", "--target", "label", "--out", "out",
       "-q", "--set", "layers[2].dense.units=2")
    out, _ = ok(capfd, "eval", "out")
    assert "accuracy" in out


def test_gradcheck_and_sweeps_preparation_refuse_named_classes_that_do_not_fit(workdir, capfd):
    """gradcheck --data checks the data as train does; a sweep's variants go through
    run.prepare, as train does."""
    from bpcli.errors import InputError
    from bpcli.spec.validate import load
    from bpcli.train import run

    table(workdir / "yesno.csv", ["yes", "no"])
    spec(workdir)
    err = refused(capfd, "gradcheck", "c.yaml", "--data", "yesno.csv", "--target", "label")
    assert "2 classes (no, yes)" in err and "--set 'layers[2].dense.units=2'" in err
    with pytest.raises(InputError, match=r"2 classes \(no, yes\)"):
        run.prepare(load(workdir / "c.yaml"), workdir / "yesno.csv", "label")


def test_train_refuses_a_picture_folder_of_two_classes_for_the_cnn2d_template(workdir, capfd):
    """bpcli init --template cnn2d ends in dense: {units: 5}; a folder of cat/ and dog/ pictures
    holds 2 classes."""
    for kind in ("cat", "dog"):
        pictures(workdir / "pics" / kind, n=6, size=28)
    ok(capfd, "init", "--template", "cnn2d")
    err = refused(capfd, "train", "cnn2d.yaml", "--data", "pics", "--out", "out")
    assert "layers[6].dense.units" in err
    for fragment in ("2 classes (cat, dog)", "5 outputs", "--set 'layers[6].dense.units=2'"):
        assert fragment in err, (fragment, err)
    no_run_folder(workdir)


def test_train_refuses_class_indices_beyond_the_outputs_with_the_numbers(workdir, capfd):
    """Labels 0..6 are 7 classes; 5 outputs know 0..4."""
    table(workdir / "seven.csv", list(range(7)), n=42)
    spec(workdir)
    err = refused(capfd, "train", "c.yaml", "--data", "seven.csv", "--target", "label",
                  "--out", "out")
    for fragment in ("seven.csv", "integers 0..4 for 5 outputs", "found [5, 6]", "7 classes",
                     "--set 'layers[2].dense.units=7'"):
        assert fragment in err, (fragment, err)
    no_run_folder(workdir)


def test_train_refuses_three_classes_for_the_logistic_loss(workdir, capfd):
    """Logistic tells 2 classes apart: 3 class names need softmax cross-entropy, 3 outputs."""
    table(workdir / "abc.csv", ["a", "b", "c"], n=42)
    spec(workdir, CLASSIFIER.replace("units: 5", "units: 1").replace("softmax_cross_entropy",
                                                                     "logistic"))
    err = refused(capfd, "train", "c.yaml", "--data", "abc.csv", "--target", "label",
                  "--out", "out")
    for fragment in ("3 classes (a, b, c)", "logistic", "tells 2 apart",
                     "--set loss=softmax_cross_entropy --set 'layers[2].dense.units=3'"):
        assert fragment in err, (fragment, err)
    no_run_folder(workdir)


# ---------------------------------------------------------------- 2. class names, regression loss
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_class_names_under_a_regression_loss_are_refused(workdir, capfd, loss):
    table(workdir / "yesno.csv", ["yes", "no"])
    spec(workdir, CLASSIFIER.replace("units: 5", "units: 1").replace("softmax_cross_entropy", loss))
    err = refused(capfd, "train", "c.yaml", "--data", "yesno.csv", "--target", "label",
                  "--out", "out")
    assert "c.yaml:8:1: loss:" in err
    for fragment in ("'label'", "class names (no, yes)", loss, "classifier",
                     "softmax_cross_entropy", "one output per class", "logistic", "1 output"):
        assert fragment in err, (fragment, err)
    no_run_folder(workdir)


def test_a_label_column_of_numbers_but_one_is_named_as_such(workdir, capfd):
    """One cell that is not a number makes the column text: the message says which."""
    table(workdir / "mixed.csv", ["1.5", "2.5", "?"], n=42)
    spec(workdir, CLASSIFIER.replace("units: 5", "units: 1").replace("softmax_cross_entropy", "mse"))
    err = refused(capfd, "train", "c.yaml", "--data", "mixed.csv", "--target", "label",
                  "--out", "out")
    assert "class names (1.5, 2.5, ?)" in err and "cells that are not: ?" in err
    no_run_folder(workdir)


def test_numbers_under_a_regression_loss_still_train(workdir, capfd):
    table(workdir / "numbers.csv", [0.5, 1.5, -2.0])
    spec(workdir, CLASSIFIER.replace("units: 5", "units: 1").replace("softmax_cross_entropy", "mse"))
    ok(capfd, "train", "c.yaml", "--data", "numbers.csv", "--target", "label", "--out", "out", "-q")


# ---------------------------------------------------------------- 3. the input shape
def test_a_shape_mismatch_says_how_to_fix_the_spec(workdir, capfd):
    table(workdir / "yesno.csv", [0, 1])
    spec(workdir, CLASSIFIER.replace("input: [4]", "input: [8]"))
    err = refused(capfd, "train", "c.yaml", "--data", "yesno.csv", "--target", "label",
                  "--out", "out")
    for fragment in ("yesno.csv", "samples of shape (4,)", "input is [8]", "c.yaml:2:1",
                     "input: [4]", "--set 'input=[4]'"):
        assert fragment in err, (fragment, err)
    no_run_folder(workdir)
    err = refused(capfd, "gradcheck", "c.yaml", "--data", "yesno.csv", "--target", "label")
    assert "--set 'input=[4]'" in err


def test_eval_of_data_of_another_shape_does_not_suggest_changing_the_run(workdir, capfd):
    """A trained run's input is fixed: eval names the shapes, and no --set of the spec."""
    rng = np.random.default_rng(0)
    np.savez(workdir / "four.npz", X=rng.standard_normal((40, 4)), y=np.arange(40) % 2)
    np.savez(workdir / "six.npz", X=rng.standard_normal((40, 6)), y=np.arange(40) % 2)
    spec(workdir, CLASSIFIER.replace("units: 5", "units: 2"))
    ok(capfd, "train", "c.yaml", "--data", "four.npz", "--out", "out", "-q")
    err = refused(capfd, "eval", "out", "--data", "six.npz")
    assert "samples of shape (6,)" in err and "--set" not in err


# ---------------------------------------------------------------- 4.-6. the small things
def test_graph_reads_a_target_too_long_to_be_a_file_name_as_an_expression(workdir, capfd):
    deep = "sin(" * 60 + "x" + ")" * 60
    out, _ = ok(capfd, "graph", deep, "--out", "g.png")
    assert Path("g.png").exists() and "forward nodes" in out


def test_graph_counts_one_node_in_the_singular(workdir, capfd):
    out, _ = ok(capfd, "graph", "x", "--out", "g.png")
    assert "(1 forward node," in out


def test_gradcheck_cost_table_says_its_times_are_estimates(workdir, capfd):
    (workdir / "tiny.yaml").write_text(tiny_spec())
    out, _ = ok(capfd, "gradcheck", "tiny.yaml")
    assert "estimated" in out and "est. time" in out


def _bpcli(*args, cwd) -> subprocess.CompletedProcess:
    """bpcli ARGS in a subprocess whose stdout pipe is closed before it writes: what
    ``bpcli ... | head -0`` does."""
    proc = subprocess.Popen([sys.executable, "-c", "from bpcli.cli import run; run()", *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "100"})
    proc.stdout.close()  # the reader goes away before bpcli has printed anything
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return subprocess.CompletedProcess(args, proc.wait(), "", err)


@pytest.mark.parametrize("json_", [False, True], ids=["tables", "json"])
def test_a_closed_stdout_ends_eval_quietly(workdir, capfd, json_):
    (workdir / "tiny.yaml").write_text(tiny_spec())
    ok(capfd, "train", "tiny.yaml", "--out", "run", "-q")
    done = _bpcli("eval", "run", *(["--json"] if json_ else []), cwd=workdir)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_closed_stdout_ends_any_command_quietly(workdir):
    done = _bpcli("schema", cwd=workdir)
    assert (done.returncode, done.stderr) == (0, "")
