"""Bad input of every kind: exit code 2, one paragraph on stderr naming the culprit, no traceback,
and no run folder left behind.

Each case writes its files into a fresh working directory, runs one command in-process through
:func:`bpcli.cli.main`, and lists the fragments the message must contain: the file, the line
(where YAML gives one), the key path and the numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bpcli.cli import main
from bpcli.train.data import pulses
from helpers import cli

# A valid spec; each case below breaks one thing in it. Line numbers:
#  1 name  2 input  3 seed  4 data  5 layers:  6 conv1d  7 relu  8 conv1d  9 relu  10 dense
# 11 loss  12 optimizer  13 training
BASE = """\
name: base
input: [16]
seed: 0
data: {builtin: pulses, n: 100, val_split: 0.2}
layers:
  - conv1d: {channels: 2, kernel: 3, pad: same}
  - relu
  - conv1d: {channels: 2, kernel: 3}
  - relu
  - dense: {units: 1}
loss: logistic
optimizer: {name: adam, lr: 0.01}
training: {epochs: 1, batch_size: 16}
"""


def spec_with(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def write_pulses(path: Path, n=100, length=16, y=None, X=None, **extra):
    d = pulses(n, [length], seed=1)
    np.savez(path, X=d.X if X is None else X, y=d.y if y is None else y, **extra)


def write_csv(path: Path, rows, header):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))


def run_bad(capfd, args, fragments):
    """Run bpcli; check exit code 2, the fragments in stderr, no traceback, nothing on stdout."""
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert code == 2, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err and "Traceback" not in out
    assert err.startswith("bpcli: error: "), err
    assert out == ""
    # one line, or for a YAML syntax error one line and the quoted source lines with their carets
    first, *quoted = err.strip().splitlines()
    assert all(re.match(r"  [\d ]+ \| ", line) for line in quoted), f"not one paragraph:\n{err}"
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"
    return err


@pytest.fixture(autouse=True)
def base_yaml(workdir):
    """Every test here starts in conftest's workdir, with BASE in it as base.yaml."""
    (workdir / "base.yaml").write_text(BASE)


def no_run_folder(workdir: Path):
    assert not (workdir / "runs").exists() or not any((workdir / "runs").iterdir())
    assert not list(workdir.glob("runs*"))


# ---------------------------------------------------------------- bpcli train
# Each case: (spec text or None for base.yaml, setup(workdir) -> extra argv, fragments).
def _spec(text):
    def setup(w):
        (w / "bad.yaml").write_text(text)
        return ["bad.yaml"]
    return setup


def _data(make, spec="base.yaml", extra=()):
    def setup(w):
        name = make(w)
        return [spec, "--data", name, *extra]
    return setup


def _npz(name, **kw):
    def make(w):
        write_pulses(w / name, **kw)
        return name
    return make


def _object_npz(w):
    X = np.empty(100, dtype=object)
    X[:] = [list(range(16))] * 100
    np.savez(w / "objects.npz", X=X, y=np.zeros(100))  # saving object arrays uses pickle
    return "objects.npz"


def _nan_npz(w):
    X = pulses(100, [16], seed=1).X
    X[3, 7] = np.nan
    np.savez(w / "nan.npz", X=X, y=np.zeros(100))
    return "nan.npz"


def _text_in_csv(w):
    rows = [[*range(16), i % 2] for i in range(30)]
    rows[3][5] = "abc"  # data row 4, file line 5 (after the header)
    write_csv(w / "cells.csv", rows, [f"f{i}" for i in range(16)] + ["y"])
    return "cells.csv"


def _csv_without_y(w):
    write_csv(w / "t.csv", [[*range(16), 1]] * 10, [f"f{i}" for i in range(16)] + ["label"])
    return "t.csv"


def _not_a_zip(w):
    (w / "junk.npz").write_bytes(b"this is not a zip archive\n")
    return "junk.npz"


def _suffix(w):
    # 1,2,3 would be a table by its content (tests/test_data_edges.py): notes are not
    (w / "data.txt").write_text("Pulse recordings\nsee the lab book, page 3\n")
    return "data.txt"


SOFTMAX = spec_with("dense: {units: 1}", "dense: {units: 3}").replace(
    "loss: logistic", "loss: softmax_cross_entropy")

TRAIN_CASES = {
    # ------------------------------------------------ the spec file
    "malformed-yaml": (_spec(spec_with("input: [16]", "input: [16")),
                       ["bad.yaml:2:8:", "invalid YAML", "'[' is not closed",
                        "expected ',' or ']'"]),
    "tab-indentation": (_spec(spec_with("  - relu\n  - conv1d", "\t- relu\n  - conv1d")),
                        ["bad.yaml:7:", "invalid YAML"]),
    "unknown-layer": (_spec(spec_with("  - relu\n  - conv1d", "  - rleu\n  - conv1d")),
                      ["bad.yaml:7:5", "layers[1]", "unknown layer 'rleu'",
                       "did you mean 'relu'?"]),
    "softmax-layer": (_spec(SOFTMAX.replace("dense: {units: 3}", "dense: {units: 3}\n  - softmax")),
                      ["bad.yaml:", "layers[", "softmax is not a layer here",
                       "the softmax_cross_entropy loss applies it", "leave softmax out"]),
    "unknown-loss": (_spec(spec_with("loss: logistic", "loss: logistc")),
                     ["bad.yaml:11:1", "loss", "unknown loss 'logistc'",
                      "did you mean 'logistic'?"]),
    "unknown-optimizer": (_spec(spec_with("name: adam", "name: adma")),
                          ["bad.yaml:12:", "optimizer", "unknown optimizer 'adma'",
                           "did you mean 'adam'?"]),
    "unknown-top-key": (_spec(BASE + "traning: {epochs: 3}\n"),
                        ["bad.yaml:14:1", "traning", "unknown key 'traning'",
                         "did you mean 'training'?"]),
    "unknown-layer-key": (_spec(spec_with("{channels: 2, kernel: 3}", "{channels: 2, kernal: 3}")),
                          ["bad.yaml:8:27", "layers[2].conv1d.kernal", "unknown key 'kernal'",
                           "did you mean 'kernel'?"]),
    "unknown-optimizer-key": (_spec(spec_with("lr: 0.01", "lr: 0.01, beta_1: 0.8")),
                              ["bad.yaml:12:", "optimizer.beta_1", "did you mean 'beta1'?"]),
    "wrong-type-int": (_spec(spec_with("{units: 1}", "{units: one}")),
                       ["bad.yaml:10:", "layers[4].dense.units", "positive integer", "'one'"]),
    "wrong-type-float": (_spec(spec_with("lr: 0.01", "lr: fast")),
                         ["bad.yaml:12:", "optimizer.lr", "number > 0", "'fast'"]),
    "wrong-type-epochs": (_spec(spec_with("epochs: 1", "epochs: -3")),
                          ["bad.yaml:13:", "training.epochs", "positive integer", "-3"]),
    "wrong-type-input": (_spec(spec_with("input: [16]", "input: 16")),
                         ["bad.yaml:2:", "input", "list of 1 to 3 positive integers", "16"]),
    "wrong-dtype": (_spec(BASE + "dtype: float16\n"),
                    ["bad.yaml:14:", "dtype", "float32, float64", "float16"]),
    "layers-not-a-list": (_spec(BASE.split("layers:")[0] + "layers: relu\nloss: mse\n"),
                          ["bad.yaml:5:", "layers", "non-empty list"]),
    "missing-required-key": (_spec(BASE.replace("loss: logistic\n", "")),
                             ["bad.yaml", "missing required key 'loss'"]),
    "conv-kernel-longer-than-input": (
        _spec(spec_with("{channels: 2, kernel: 3}", "{channels: 2, kernel: 32}")),
        ["bad.yaml:8:", "layers[2].conv1d.kernel:", "kernel 32", "(16 + 0 padding = 16)"]),
    "logistic-with-3-outputs": (_spec(spec_with("{units: 1}", "{units: 3}")),
                                ["bad.yaml:11:", "loss", "logistic", "1 value per sample",
                                 "(3,)"]),
    "gd-with-minibatches": (_spec(spec_with("name: adam", "name: gd")),
                            ["bad.yaml:13:", "training.batch_size", "gd", "16"]),
    "duplicate-key": (_spec(BASE + "loss: mse\n"),
                      ["bad.yaml:14:1", "key 'loss' appears twice"]),
    "duplicate-nested-key": (_spec(spec_with("{units: 1}", "{units: 1, units: 2}")),
                             ["bad.yaml:10:", "layers[4].dense.units", "appears twice"]),
    "python-tag": (_spec(spec_with("loss: logistic",
                                   'loss: !!python/object/apply:os.system ["echo hacked > hacked"]')),
                   ["bad.yaml:11:", "python/object/apply:os.system", "refused"]),
    "empty-spec": (_spec(""), ["bad.yaml", "empty"]),
    "spec-not-a-mapping": (_spec("- relu\n- dense\n"), ["bad.yaml:1", "mapping", "list"]),
    "spec-not-utf8": (lambda w: (w / "bad.yaml").write_bytes(b"name: \xff\xfe\n") and ["bad.yaml"],
                      ["bad.yaml", "cannot read spec file"]),
    "missing-spec-file": (lambda w: ["nothere.yaml"], ["nothere.yaml", "spec file not found"]),
    "val-split-out-of-range": (_spec(spec_with("val_split: 0.2", "val_split: 1.5")),
                               ["bad.yaml:4:", "data.val_split", "[0, 1)", "1.5"]),
    "epochs-option": (lambda w: ["base.yaml", "--epochs", "0"],
                      ["--epochs: must be a positive integer, got 0"]),
    "no-data": (_spec(BASE.replace("data: {builtin: pulses, n: 100, val_split: 0.2}\n", "")),
                ["bad.yaml", "no data", "--data"]),
    # ------------------------------------------------ the data file
    "missing-data-file": (lambda w: ["base.yaml", "--data", "nothere.npz"],
                          ["nothere.npz", "data file not found"]),
    "unknown-data-suffix": (_data(_suffix), ["data.txt", "'.txt'", ".npz", ".csv",
                                             "its content (", "data.format"]),
    "npz-not-a-zip": (_data(_not_a_zip), ["junk.npz", "not a .npz file"]),
    "npz-without-X": (_data(lambda w: np.savez(w / "a.npz", A=np.zeros(3)) or "a.npz"),
                      ["a.npz", "array named X", "it has A"]),
    "npz-object-array": (_data(_object_npz), ["objects.npz", "object arrays", "pickle"]),
    "npz-complex": (_data(_npz("c.npz", X=np.ones((100, 16)) * 1j)),
                    ["c.npz", "complex128", "real numbers"]),
    "wrong-sample-shape": (_data(_npz("short.npz", length=12)),
                           ["short.npz", "samples of shape (12,)", "input is [16]"]),
    "X-and-y-lengths-differ": (_data(_npz("len.npz", y=np.zeros(90))),
                               ["len.npz", "X has 100 samples but y has 90"]),
    "y-a-single-number": (_data(_npz("one.npz", y=np.float64(1.0))),
                          ["one.npz", "X has 100 samples but y has a single value"]),
    "labels-0-to-4-for-logistic": (_data(_npz("five.npz", y=np.arange(100) % 5)),
                                   ["five.npz", "logistic loss", "-1/+1", "[2, 3, 4]"]),
    "labels-two-columns-for-logistic": (_data(_npz("cols.npz", y=np.ones((100, 2)))),
                                        ["cols.npz", "logistic loss", "(2,)", "(1,)"]),
    "labels-missing": (_data(lambda w: np.savez(w / "noy.npz", X=np.ones((100, 16))) or "noy.npz"),
                       ["noy.npz", "logistic loss needs labels y"]),
    "labels-at-least-K-for-softmax": (
        _data(_npz("four.npz", y=np.arange(100) % 4), spec="soft.yaml"),
        ["four.npz", "softmax_cross_entropy loss", "integers 0..2 for 3 outputs", "found [3"]),
    "nan-in-X": (_data(_nan_npz), ["nan.npz", "non-finite value nan", "sample 3", "position [7]"]),
    "inf-in-y": (_data(_npz("infy.npz", y=np.r_[np.zeros(50), np.inf, np.zeros(49)])),
                 ["infy.npz", "y has a non-finite value at sample 50"]),
    "non-numeric-csv-cell": (_data(_text_in_csv), ["cells.csv", "line 5", "column 'f5'", "'abc'",
                                                   "not a number"]),
    "csv-without-label-column": (_data(_csv_without_y), ["t.csv", "no label column 'y'",
                                                         "label", "--target"]),
    "csv-target-not-there": (_data(_csv_without_y, extra=("--target", "class")),
                             ["t.csv", "no label column 'class'"]),
    "csv-row-longer-than-header": (_data(lambda w: (w / "long.csv").write_text("a,y\n1,2,3\n")
                                         and "long.csv"), ["long.csv", "more fields than the header"]),
    "csv-ragged-rows": (_data(lambda w: (w / "rag.csv").write_text("a,y\n1,2\n1,2,3\n") and "rag.csv"),
                        ["rag.csv", "cannot read CSV", "line 3"]),
    "csv-header-only": (_data(lambda w: (w / "h.csv").write_text("a,y\n") and "h.csv"),
                        ["h.csv", "no data rows"]),
    "csv-empty": (_data(lambda w: (w / "e.csv").write_text("") or "e.csv"),
                  ["e.csv", "cannot read CSV"]),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES), ids=list(TRAIN_CASES))
def test_train_bad_input(case, workdir, capfd):
    setup, fragments = TRAIN_CASES[case]
    (workdir / "soft.yaml").write_text(SOFTMAX)
    args = setup(workdir)
    run_bad(capfd, ["train", *args, "-q"], fragments)
    no_run_folder(workdir)


def test_python_tag_executes_nothing(workdir, capfd):
    (workdir / "evil.yaml").write_text(
        BASE.replace("loss: logistic", 'loss: !!python/object/apply:os.system ["echo hacked"]'))
    for command in ("train", "gradcheck"):
        err = run_bad(capfd, [command, "evil.yaml"], ["evil.yaml:11:7", "refused"])
        assert "hacked" not in err.replace('"echo hacked"', "")
    out, err = capfd.readouterr()
    assert "hacked" not in out  # os.system's output would reach file descriptor 1
    no_run_folder(workdir)


def test_bad_option_value_is_a_usage_error(workdir, capfd):
    code = main(["train", "base.yaml", "--epochs", "many"])
    out, err = capfd.readouterr()
    assert code == 2 and "Traceback" not in err and "--epochs" in err
    no_run_folder(workdir)


# ---------------------------------------------------------------- bpcli eval
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One finished run of BASE (1 epoch on its builtin pulses)."""
    root = tmp_path_factory.mktemp("run")
    (root / "base.yaml").write_text(BASE)
    assert main(["train", str(root / "base.yaml"), "--out", str(root / "run"), "-q"]) == 0
    return root / "run"


def _corrupt_weights(run_dir, w):
    import shutil

    broken = w / "broken"
    shutil.copytree(run_dir, broken)
    np.savez(broken / "model.npz", **{"layers.0.weight": np.zeros((5, 1, 3))})
    return broken


EVAL_CASES = {
    "missing-run-folder": (lambda r, w: ["nothere", "--data", "x.npz"],
                           ["nothere", "not a run folder", "no such folder"]),
    "not-a-run-folder": (lambda r, w: (w / "plain").mkdir() or ["plain"],
                         ["plain", "not a run folder"]),
    "spec-file-as-run": (lambda r, w: ["base.yaml"], ["base.yaml", "not a run folder"]),
    "weights-of-another-shape": (lambda r, w: [_corrupt_weights(r, w)],
                                 ["model.npz", "layers.0.weight", "(5, 1, 3)", "(2, 1, 3)"]),
    "missing-data-file": (lambda r, w: [r, "--data", "nothere.npz"],
                          ["nothere.npz", "data file not found"]),
    "wrong-sample-shape": (lambda r, w: write_pulses(w / "s.npz", length=20) or [r, "--data", "s.npz"],
                           ["s.npz", "samples of shape (20,)", "input is [16]"]),
    "labels-0-to-4": (lambda r, w: write_pulses(w / "f.npz", y=np.arange(100) % 5)
                      or [r, "--data", "f.npz", "--json"],
                      ["f.npz", "logistic loss", "[2, 3, 4]"]),
    "nan-in-data": (lambda r, w: [r, "--data", _nan_npz(w)], ["nan.npz", "sample 3"]),
    "object-array": (lambda r, w: [r, "--data", _object_npz(w)], ["objects.npz", "object arrays"]),
}


@pytest.mark.parametrize("case", list(EVAL_CASES), ids=list(EVAL_CASES))
def test_eval_bad_input(case, run_dir, workdir, capfd):
    setup, fragments = EVAL_CASES[case]
    args = setup(run_dir, workdir)
    run_bad(capfd, ["eval", *args], fragments)
    no_run_folder(workdir)


# ---------------------------------------------------------------- bpcli gradcheck
GRADCHECK_CASES = {
    "missing-spec-file": (lambda w: ["nothere.yaml"], ["nothere.yaml", "spec file not found"]),
    "malformed-yaml": (lambda w: (w / "bad.yaml").write_text(spec_with("input: [16]", "input: [16"))
                       and ["bad.yaml"], ["bad.yaml:2:8:", "invalid YAML"]),
    "unknown-layer": (lambda w: (w / "bad.yaml").write_text(spec_with("  - relu\n  - conv1d",
                                                                      "  - rleu\n  - conv1d"))
                      and ["bad.yaml"], ["bad.yaml:7:5", "layers[1]", "did you mean 'relu'?"]),
    "impossible-shape": (lambda w: (w / "bad.yaml").write_text(spec_with("{units: 1}", "{units: 3}"))
                         and ["bad.yaml"], ["bad.yaml:11:", "logistic", "(3,)"]),
    "missing-data-file": (lambda w: ["base.yaml", "--data", "nothere.npz"],
                          ["nothere.npz", "data file not found"]),
    "wrong-sample-shape": (lambda w: write_pulses(w / "s.npz", length=20)
                           or ["base.yaml", "--data", "s.npz", "--json"],
                           ["s.npz", "samples of shape (20,)", "input is [16]"]),
    "labels-0-to-4": (lambda w: write_pulses(w / "f.npz", y=np.arange(100) % 5)
                      or ["base.yaml", "--data", "f.npz"], ["f.npz", "logistic", "[2, 3, 4]"]),
    "non-numeric-csv-cell": (lambda w: ["base.yaml", "--data", _text_in_csv(w)],
                             ["cells.csv", "line 5", "column 'f5'", "'abc'"]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES), ids=list(GRADCHECK_CASES))
def test_gradcheck_bad_input(case, workdir, capfd):
    setup, fragments = GRADCHECK_CASES[case]
    args = setup(workdir)
    run_bad(capfd, ["gradcheck", *args], fragments)
    no_run_folder(workdir)


# ---------------------------------------------------------------- bpcli plot
def test_plot_of_a_folder_that_is_not_a_run(workdir, capfd, run_dir):
    (workdir / "plain").mkdir()
    run_bad(capfd, ["plot", run_dir, "plain", "--out", "p.png"],
            ["plain", "not a run folder", "spec.yaml"])
    assert not (workdir / "p.png").exists()


@pytest.mark.parametrize("args, says", [
    (["bad.yaml"], "training.batch_size 500 is more than the 80 training samples"),
    (["base.yaml", "--data", "few.npz"], "training.batch_size 16 is more than the 8 training"),
])
def test_a_batch_beyond_the_training_samples_takes_them_all(workdir, capfd, args, says):
    # not bad input: PyTorch's DataLoader and Keras take a short last (here: only) batch; bpcli
    # takes every sample each step and says so (it refused, even for the default batch_size)
    _spec(spec_with("batch_size: 16", "batch_size: 500"))(workdir)
    _npz("few.npz", n=10)(workdir)
    code, out, err = cli(capfd, "train", *args, "-q", "--epochs", "1", "--out", "run")
    assert code == 0 and f"bpcli: note: {says}" in err, err
