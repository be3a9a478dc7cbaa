"""What a run folder records is what happened: the validation data's fingerprint beside the
training data's (and resume refusing a changed validation file), ``--data`` replacing a builtin
set before ``--set`` is checked, and a NaN in metrics.csv read back, and drawn, apart from a
value that was never measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import cli, ok, tiny_spec


def table(path, n: int, seed: int, labels=("0", "1")) -> None:
    """A CSV of ``n`` samples: two features u, v and a label y (labels[0] left of u = 0,
    labels[1] right of it)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.where(X[:, 0] > 0, labels[1], labels[0])
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "y": y}).to_csv(path, index=False)


def file_spec(path, **overrides) -> None:
    """The tiny spec on 2 features from a file (no data entry: --data gives it), 1 epoch."""
    spec = {"input": [2], "data": None, "layers": [{"dense": {"units": 1}}],
            "training": {"epochs": 1, "batch_size": 8}, **overrides}
    Path(path).write_text(tiny_spec(**spec))


def folder_bytes(run) -> dict:
    return {p.name: p.read_bytes() for p in Path(run).iterdir() if p.is_file()}


def checkpoint_state(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["__state__"]))


# ---------------------------------------------------------------- 1. validation's fingerprint
def test_a_validation_file_is_fingerprinted_and_resume_refuses_it_changed(workdir, capsys):
    table("train.csv", 64, 0)
    table("val.csv", 24, 1)
    file_spec("s.yaml")
    ok(capsys, "train", "s.yaml", "--data", "train.csv", "--val-data", "val.csv", "-q",
       "--out", "r")
    summary = json.loads(Path("r/summary.json").read_text())
    digest = summary["val_data_fingerprint"]
    assert isinstance(digest, str) and len(digest) == 16 and digest != summary["data_fingerprint"]
    assert checkpoint_state("r/last.npz")["val_data_fingerprint"] == digest

    original = Path("val.csv").read_bytes()
    table("val.csv", 24, 2)                    # same file name, same size, other samples
    before = folder_bytes("r")
    code, _, err = cli(capsys, "train", "--resume", "r", "--epochs", 2, "-q")
    assert code == 2
    last = err.strip().splitlines()[-1]        # after "resuming r": one paragraph
    assert last.startswith(f"bpcli: error: {workdir / 'val.csv'}: the validation data differs")
    assert "resume needs the same validation data" in last
    assert folder_bytes("r") == before         # nothing written

    Path("val.csv").write_bytes(original)      # the very file again: it resumes
    ok(capsys, "train", "--resume", "r", "--epochs", 2, "-q")
    assert json.loads(Path("r/summary.json").read_text())["val_data_fingerprint"] == digest


def test_a_checkpoint_from_before_the_validation_fingerprint_still_resumes(workdir, capsys):
    table("train.csv", 64, 0)
    table("val.csv", 24, 1)
    file_spec("s.yaml")
    ok(capsys, "train", "s.yaml", "--data", "train.csv", "--val-data", "val.csv", "-q",
       "--out", "r")
    with np.load("r/last.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    state = json.loads(str(arrays["__state__"]))
    del state["val_data_fingerprint"]          # as an older bpcli wrote it
    arrays["__state__"] = np.array(json.dumps(state))
    np.savez("r/last.npz", **arrays)
    table("val.csv", 24, 2)                    # nothing recorded to compare it with
    ok(capsys, "train", "--resume", "r", "--epochs", 2, "-q")
    summary = json.loads(Path("r/summary.json").read_text())
    assert summary["epochs"] == 2
    # from now on the run records the validation data it was resumed with
    assert checkpoint_state("r/last.npz")["val_data_fingerprint"] == summary["val_data_fingerprint"]


def test_a_validation_split_records_the_fingerprint_of_its_part(workdir, capsys):
    from bpcli.spec.validate import load
    from bpcli.train import run
    from bpcli.train.loop import fingerprint

    Path("s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "r")
    summary = json.loads(Path("r/summary.json").read_text())
    p = run.prepare(load("s.yaml"))
    assert summary["n_val"] == 50 and p.val[0].shape[0] == 50
    # the split-off samples as validation evaluates them, not the whole data set again
    assert summary["val_data_fingerprint"] == fingerprint(*p.val) != summary["data_fingerprint"]

    # another split of the same data: the data's fingerprint is the same, the split's is not
    Path("t.yaml").write_text(tiny_spec(training={"epochs": 1}, data={"val_split": 0.5}))
    before = folder_bytes("r")
    code, _, err = cli(capsys, "train", "t.yaml", "--resume", "r", "--epochs", 2, "--force", "-q")
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"bpcli: error: {Path('r') / 'last.npz'}: the validation split differs from the one this "
        f"run was validated on (its fingerprint changed: the data, data.val_split or the seed "
        f"differ); resume needs the same validation data")
    assert folder_bytes("r") == before

    Path("n.yaml").write_text(tiny_spec(training={"epochs": 1}, data={"val_split": 0}))
    ok(capsys, "train", "n.yaml", "-q", "--out", "none")
    assert json.loads(Path("none/summary.json").read_text())["val_data_fingerprint"] is None


# ---------------------------------------------------------------- 2. --data replaces a builtin set
def test_data_from_a_file_takes_a_class_list_set_on_a_builtin_spec(workdir, capsys):
    table("pets.csv", 48, 0, labels=("cat", "dog"))
    Path("s.yaml").write_text(tiny_spec(input=[2], layers=[{"dense": {"units": 2}}],
                                        loss="softmax_cross_entropy", training={"epochs": 1}))
    assert "builtin: pulses" in Path("s.yaml").read_text()
    # [dog, cat], not the sorted order reading would find: the set is what was applied
    ok(capsys, "train", "s.yaml", "--data", "pets.csv", "--set", "data.classes=[dog, cat]",
       "-q", "--out", "r")
    entry = yaml.safe_load(Path("r/spec.yaml").read_text())["data"]
    assert entry["classes"] == ["dog", "cat"] and entry["builtin"] is None
    assert entry["path"] == str(workdir / "pets.csv")


@pytest.mark.parametrize("command", [["gradcheck", "s.yaml", "--samples", "4"],
                                     ["sweep", "s.yaml", "--grid", "optimizer.lr=0.01,0.02",
                                      "--out", "sw"]])
def test_gradcheck_and_sweep_take_a_class_list_set_with_data_too(workdir, capsys, command):
    table("pets.csv", 48, 0, labels=("cat", "dog"))
    Path("s.yaml").write_text(tiny_spec(input=[2], layers=[{"dense": {"units": 2}}],
                                        loss="softmax_cross_entropy", training={"epochs": 1}))
    ok(capsys, *command, "--data", "pets.csv", "--set", "data.classes=[dog, cat]")


def test_a_class_list_on_a_builtin_set_without_data_is_still_refused(workdir, capsys):
    message = "a builtin set names its own classes; a list of class names is for data from a file"
    Path("s.yaml").write_text(tiny_spec())
    code, _, err = cli(capsys, "train", "s.yaml", "--set", "data.classes=[dog, cat]", "-q")
    assert code == 2 and "--set data.classes=[dog, cat]" in err and message in err
    Path("both.yaml").write_text(tiny_spec(data={"classes": ["dog", "cat"]}))
    for extra in ([], ["--data", "pets.csv"]):   # the spec itself is wrong, --data or not
        code, _, err = cli(capsys, "train", "both.yaml", *extra, "-q")
        assert code == 2 and "both.yaml" in err and "data.classes" in err and message in err
    assert not Path("runs").exists()


# ---------------------------------------------------------------- 3. NaN is not an empty cell
def nan_run(capsys) -> Path:
    """A run whose validation loss is NaN from epoch 1: an lr of 1e30 sends the weights to inf
    after the first step, and every later batch is skipped (so train_loss is not measured)."""
    Path("nan.yaml").write_text(tiny_spec(optimizer={"name": "sgd", "lr": 1e30},
                                          training={"epochs": 3}))
    ok(capsys, "train", "nan.yaml", "-q", "--on-nan", "skip", "--out", "r")
    return Path("r")


def test_metrics_csv_writes_nan_as_nan_and_not_measured_as_an_empty_cell(workdir, capsys):
    run = nan_run(capsys)
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["val_loss"]] for r in rows] == ["nan"] * 3
    assert [r[col["train_loss"]] for r in rows][1:] == ["", ""]   # every batch skipped


def test_read_metrics_tells_a_nan_from_an_empty_cell(workdir, capsys):
    from bpcli.train.run_folder import RunFolder

    df = RunFolder(nan_run(capsys)).read_metrics()
    val, train = df["val_loss"], df["train_loss"]
    assert val.notna().all() and np.isnan(val.to_numpy(float)).all()        # measured: NaN
    assert train.isna().tolist() == [False, True, True]                      # not measured
    assert np.isfinite(train.to_numpy(float)[0])
    assert df["epoch"].tolist() == [1, 2, 3] and df["epoch"].dtype == np.int64


def test_read_metrics_by_hand_keeps_numbers_numbers_and_drops_a_line_cut_short(tmp_path):
    from bpcli.errors import InputError
    from bpcli.train.run_folder import RunFolder

    (tmp_path / "spec.yaml").write_text("")
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss,val_loss,lr\n"
                                          "1,10,0.5,0.6,0.1\n"
                                          "2,20,nan,,0.1\n"
                                          "3,30,inf,0.4,0.1\n"
                                          "4,40,0.3")              # killed mid-row
    df = RunFolder(tmp_path).read_metrics()
    assert df["epoch"].tolist() == [1, 2, 3]
    assert df["lr"].dtype == np.float64                                # no gap: plain floats
    assert df["train_loss"].isna().tolist() == [False, False, False]  # a NaN is a value
    loss = df["train_loss"].to_numpy(float)
    assert np.isnan(loss[1]) and loss[2] == np.inf
    assert df["val_loss"].isna().tolist() == [False, True, False]     # the empty cell is missing
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss\n1,10,0.5\n2,20,O.4\n")
    with pytest.raises(InputError, match=r"metrics.csv.*train_loss.*'O.4'"):
        RunFolder(tmp_path).read_metrics()


@pytest.fixture
def close_figures():
    yield
    from bpcli.explain.plots import pyplot

    pyplot().close("all")


def nan_marks(ax) -> list:
    return [ln for ln in ax.get_lines() if ln.get_marker() == "x" and ln.get_color() == "red"
            and len(ln.get_xdata()) and set(ln.get_ydata()) == {0.0}]


def test_the_loss_plot_marks_nan_epochs_with_a_red_x_and_a_legend_entry(workdir, capsys,
                                                                         close_figures):
    from bpcli.explain.plots import runs_figure
    from bpcli.train.run_folder import RunFolder

    fig = runs_figure([("r", RunFolder(nan_run(capsys)).read_metrics())])
    ax = fig.axes[0]
    # on the bottom edge (axes coordinates) at each NaN epoch; +inf keeps the top edge
    assert sorted(x for ln in nan_marks(ax) for x in ln.get_xdata()) == [1, 2, 3]
    assert "NaN loss" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "validation: nan at epoch 1 (and 2 more)" in " ".join(t.get_text() for t in ax.texts)


def test_an_unmeasured_value_is_still_a_gap_or_joined_never_a_nan_mark(tmp_path, close_figures):
    from bpcli.explain.plots import runs_figure
    from bpcli.train.run_folder import RunFolder

    (tmp_path / "spec.yaml").write_text("")
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss,val_loss\n"
                                          "1,10,0.9,0.8\n2,20,,\n3,30,0.7,\n4,40,0.6,0.5\n")
    fig = runs_figure([("r", RunFolder(tmp_path).read_metrics())])
    ax = fig.axes[0]
    assert nan_marks(ax) == []
    assert "NaN loss" not in [t.get_text() for t in ax.get_legend().get_texts()]
    # validation evaluated every few rows is joined across the rows without it
    val = next(ln for ln in ax.get_lines() if ln.get_linestyle() == "--")
    assert list(val.get_xdata()) == [1, 4]
