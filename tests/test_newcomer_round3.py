"""A third round as a new user (issue 22, item 8): the package imported from beside its clone,
a one-epoch run's loss curve, class names at 80 and 100 columns and in the confusion picture,
progress from the first step, other libraries' layer names, one line for many pictures of one
wrong size, validate reading the data it names, and colour pictures read as gray said so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import cli, ok, tiny_spec

REPO = Path(__file__).resolve().parents[1]


def render(renderable, width: int) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, highlight=False, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


# ---------------------------------------------------------------- import beside the clone
def test_import_bpcli_from_the_folder_that_holds_the_clone(tmp_path):
    """Clone into ~/bpcli, work from ~: the folder ./bpcli (the clone, no __init__.py) came
    before the editable install's finder, and `import bpcli` gave an empty namespace package."""
    (tmp_path / "bpcli").symlink_to(REPO, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", "import bpcli; print(bpcli.__file__); "
                           "print(callable(bpcli.load_run))"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    where, has_load_run = done.stdout.split()
    assert Path(where).name == "__init__.py" and has_load_run == "True", done.stdout


# ---------------------------------------------------------------- a one-epoch loss curve
def test_a_one_epoch_loss_curve_marks_both_points_and_reads_epoch_1():
    from bpcli.explain.plots import runs_figure

    df = pd.DataFrame({"epoch": [1], "step": [10], "train_loss": [0.7], "val_loss": [0.5]})
    fig = runs_figure([("run", df)])
    ax = fig.axes[0]
    drawn = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    validation = [ln for ln in drawn if ln.get_linestyle() == "--"]
    assert validation and all(ln.get_marker() not in (None, "None", "") for ln in validation)
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert shown == [1.0], (lo, hi, ax.get_xticks())


# ---------------------------------------------------------------- class names at full length
CLASSES = [f"digit_{i}" for i in range(10)]


def test_the_confusion_picture_keeps_its_predicted_class_label_with_10_classes():
    from bpcli.explain.score_plots import confusion_figure

    cm = np.full((10, 10), 7) + np.eye(10, dtype=int) * 980
    fig = confusion_figure(cm, CLASSES, "run: test.csv")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        box = ax.xaxis.label.get_window_extent(renderer)
        assert box.y0 >= 0 and box.x0 >= 0 and box.x1 <= fig.bbox.width, box
    __import__("matplotlib.pyplot").pyplot.close(fig)


@pytest.mark.parametrize("width", [80, 100])
def test_the_confusion_table_keeps_class_names_whole(width):
    from bpcli.cli.render import confusion_table

    cm = (np.full((10, 10), 7) + np.eye(10, dtype=int) * 980).tolist()
    text = render(confusion_table(CLASSES, cm, "confusion matrix (rows: true class)", width),
                  width)
    lines = text.splitlines()
    assert "…" not in text and max(map(len, lines)) <= width, text
    rows = [line.split() for line in lines if len(line.split()) in (11, 12)
            and set(line.split()[:2]) & set(CLASSES) and line.split()[-1].isdigit()]
    assert len(rows) == 10, text
    for i, (name, row) in enumerate(zip(CLASSES, rows)):  # the row's name whole, its counts
        assert name in row[:2] and row[-10:] == [str(v) for v in cm[i]], row
    if width == 80:  # columns numbered, said so
        assert "numbered as the rows" in text


def test_the_runs_table_keeps_run_names_longer_than_12_characters_on_one_line():
    from bpcli.cli.render import runs_table

    rows = [{"run": name, "status": "finished", "epochs": "10/10", "steps": 500,
             "final_train_loss": 0.12345, "final_val_loss": 0.2345, "final_val_accuracy": 0.9123,
             "best_val_loss": 0.2211, "best_val_accuracy": 0.93}
            for name in ("lecture_cnn_lr0.01_seed3", "mnist-baseline-2024")]
    for width in (80, 100):
        text = render(runs_table(rows, "runs", width), width)
        assert "…" not in text and max(map(len, text.splitlines())) <= width, text
        for r in rows:
            assert any(line.startswith(r["run"] + " ") for line in text.splitlines()), text
    assert "left out" not in render(runs_table(rows, "runs", 100), 100)


# ---------------------------------------------------------------- progress within an epoch
def test_progress_starts_with_training_and_tells_steps_within_an_epoch(workdir, monkeypatch):
    from bpcli.spec.validate import load
    from bpcli.train import loop, run

    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 0.0)
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 2, "batch_size": 8},
                                              data={"n": 80}))
    told = []
    run.execute(run.prepare(load(workdir / "s.yaml")), workdir / "runs" / "r",
                progress=lambda at, row: told.append((at, row)))
    first, row = told[0]
    assert row is None and (first.epoch, first.batch, first.done) == (1, 0, 0.0)
    before_row = [at for at, r in told[:next(i for i, (_, r) in enumerate(told) if r)]]
    assert [at.batch for at in before_row] == list(range(first.batches + 1)), before_row
    assert [at.done for at, r in told if r] == [1.0, 2.0] and first.total == 2


def test_the_progress_line_shows_the_step_within_the_epoch_at_80_columns():
    from rich.console import Console

    from bpcli.cli.render import progress_bar, status_text, where_text
    from bpcli.train.loop import Position

    at = Position("epoch", 10, 3, 40, 50)
    assert where_text(at) == "3/10 · step 40/50" and at.done == 2.8
    assert where_text(Position("epoch", 10, 3, 50, 50)) == "3/10"
    bar = progress_bar(Console(width=80, file=open(os.devnull, "w")))
    task = bar.add_task("epoch", total=10, where=where_text(at), status=status_text(
        {"epoch": 2, "step": 100, "train_loss": 0.1234567, "val_loss": 0.2345678,
         "val_accuracy": 0.9, "elapsed_s": 12.5}))
    bar.update(task, completed=at.done)
    line, = render(bar.make_tasks_table(bar.tasks), 80).strip("\n").splitlines()
    assert line.startswith("epoch 3/10 · step 40/50 ") and "ETA" in line and len(line) <= 80


# ---------------------------------------------------------------- other libraries' names
@pytest.mark.parametrize("written, meant", [
    ("deconv2d", "conv2d_transpose"), ("ConvTranspose2d", "conv2d_transpose"),
    ("Conv2DTranspose", "conv2d_transpose"), ("deconv1d", "conv1d_transpose"),
    ("Upsample", "upsample2d"), ("interpolate", "upsample2d"), ("Linear", "dense"),
    ("BatchNorm2d", "batchnorm"), ("MaxPool2d", "maxpool2d")])
def test_another_librarys_layer_name_points_at_bpclis(written, meant, workdir, capsys):
    (workdir / "a.yaml").write_text(f"input: [1, 8, 8]\nlayers:\n  - {written}\n  - flatten\n"
                                    f"  - dense: {{units: 2}}\nloss: softmax_cross_entropy\n")
    code, _, err = cli(capsys, "validate", "a.yaml")
    assert code == 2 and f"unknown layer '{written}' (" in err and f"'{meant}'" in err, err
    assert err.split("(")[1].count("'") == 2, err   # that name alone, not a near spelling too


def test_another_librarys_loss_name_points_at_bpclis(workdir, capsys):
    (workdir / "a.yaml").write_text("input: [4]\nlayers: [{dense: {units: 2}}]\n"
                                    "loss: CrossEntropyLoss\n")
    code, _, err = cli(capsys, "validate", "a.yaml")
    assert code == 2 and "(bpcli calls it 'softmax_cross_entropy')" in err, err


# ---------------------------------------------------------------- many pictures, one size
def _pictures(folder: Path, n: int, size: tuple, colour: bool = False, seed: int = 0):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (*size, 3) if colour else size
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i:02d}.png")


PICTURE_SPEC = {"input": [1, 8, 8], "layers": ["flatten", {"dense": {"units": 2}}],
                "loss": "softmax_cross_entropy", "training": {"epochs": 1, "batch_size": 8}}


def test_many_pictures_of_one_wrong_size_are_one_line(workdir, capfd):
    _pictures(workdir / "p" / "a", 10, (32, 32))
    _pictures(workdir / "p" / "b", 10, (32, 32), seed=1)
    _pictures(workdir / "p" / "b", 1, (16, 16), seed=2)  # 00.png of b: another size
    (workdir / "s.yaml").write_text(yaml.safe_dump(PICTURE_SPEC))
    code, out, err = cli(capfd, "train", "s.yaml", "--data", "p", "-q")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    big = [line for line in lines if "32x32" in line]
    assert len(big) == 1 and "19 pictures (p/a/00.png, p/a/01.png, p/a/02.png and 16 more) " \
                             "are 32x32 pixels" in big[0], err
    assert sum("16x16" in line for line in lines) == 1 and len(lines) <= 3, err


# ---------------------------------------------------------------- validate reads the data
def test_validate_refuses_a_spec_whose_outputs_do_not_fit_its_data(workdir, capsys):
    rng = np.random.default_rng(0)
    np.savez(workdir / "d.npz", X=rng.standard_normal((40, 4)), y=np.arange(40) % 7)
    text = ("input: [4]\nlayers:\n  - dense: {units: 8}\n  - relu\n  - dense: {units: 5}\n"
            "loss: softmax_cross_entropy\ndata: {path: d.npz}\n")
    (workdir / "v.yaml").write_text(text)
    code, out, err = cli(capsys, "validate", "v.yaml")
    assert code == 2 and out == "" and "7 outputs" in err and "units=7" in err, err
    (workdir / "v.yaml").write_text(text.replace("units: 5", "units: 7"))
    out, _ = ok(capsys, "validate", "v.yaml")
    assert ": ok," in out


# ---------------------------------------------------------------- colour read as gray
def test_colour_pictures_for_a_one_channel_spec_are_noted_once(workdir, capfd):
    _pictures(workdir / "p" / "a", 6, (8, 8), colour=True)
    _pictures(workdir / "p" / "b", 6, (8, 8), colour=True, seed=1)
    (workdir / "s.yaml").write_text(yaml.safe_dump(PICTURE_SPEC))
    _, err = ok(capfd, "train", "s.yaml", "--data", "p", "-q", "--out", "r")
    notes = [line for line in err.splitlines() if "colour" in line]
    assert len(notes) == 1 and "12 of 12 pictures" in notes[0] and "input: [3, 8, 8]" in notes[0]
    # gray pictures (and gray ones stored as RGB) say nothing
    _pictures(workdir / "g" / "a", 6, (8, 8))
    _pictures(workdir / "g" / "b", 6, (8, 8), seed=1)
    _, err = ok(capfd, "train", "s.yaml", "--data", "g", "-q", "--out", "r2")
    assert "colour" not in err
