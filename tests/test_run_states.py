"""How a run stands, told truly: runs and diff say finished, interrupted, diverged, killed or
started, with the epochs done of those asked; eval, predict and export on a run without final
weights say what to do; eval names the weights it read and says why an AUC is undefined; export
never overwrites a file unless told; an exported model records what its input X holds."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bpcli.train import loop
from helpers import cli, ok, tiny_spec

EPOCHS = 10


@pytest.fixture
def interrupt_after(monkeypatch):
    """``interrupt_after(k)``: the next training gets SIGINT (as Ctrl-C sends it) once it has
    written its k-th metrics row, and stops there as it does at a real Ctrl-C."""
    def arm(rows: int):
        record, seen = loop.Trainer.record, []

        def record_then_signal(self, *args, **kwargs):
            result = record(self, *args, **kwargs)
            seen.append(1)
            if len(seen) == rows:
                os.kill(os.getpid(), signal.SIGINT)
            return result

        monkeypatch.setattr(loop.Trainer, "record", record_then_signal)
    return arm


def ctrl_c_run(workdir, capsys, interrupt_after, name="stopped", rows=2, **spec) -> Path:
    """The tiny pulse detector asked for EPOCHS epochs, stopped by Ctrl-C after ``rows`` epochs."""
    (workdir / f"{name}.yaml").write_text(tiny_spec(name=name, training={"epochs": EPOCHS},
                                                    **spec))
    interrupt_after(rows)
    code, _, err = cli(capsys, "train", f"{name}.yaml", "-q", "--out", f"runs/{name}")
    assert code == 130 and "stopped by SIGINT" in err
    return workdir / "runs" / name


def killed(run: Path) -> Path:
    """What ``kill -9`` leaves of a run: its spec, metrics and checkpoints, no summary.json, no
    model.npz (and no loss.png), all written when training ends."""
    for name in ("summary.json", "model.npz", "loss.png"):
        (run / name).unlink()
    return run


def listed(capsys, folder="runs") -> dict:
    out, _ = ok(capsys, "runs", folder, "--json")
    return {row["run"]: row for row in json.loads(out)}


# ---------------------------------------------------------------- 1. runs and diff
def test_a_ctrl_c_run_is_listed_interrupted_with_the_epochs_done_of_those_asked(
        workdir, capsys, interrupt_after):
    ctrl_c_run(workdir, capsys, interrupt_after)
    (workdir / "done.yaml").write_text(tiny_spec(name="done", training={"epochs": 1}))
    ok(capsys, "train", "done.yaml", "-q", "--out", "runs/done")
    rows = listed(capsys)
    assert rows["stopped"]["status"] == "interrupted"   # was "ok"
    assert (rows["stopped"]["epochs"], rows["stopped"]["epochs_asked"]) == (2, EPOCHS)
    assert rows["stopped"]["resumable"] is True
    assert rows["done"]["status"] == "finished" and rows["done"]["resumable"] is False
    out, _ = ok(capsys, "runs")
    assert "interrupted" in out and f"2/{EPOCHS}" in out and "1/1" in out
    assert "bpcli train --resume RUN" in out    # what the status means, under the table


def test_a_diverged_run_is_listed_diverged(workdir, capsys):
    (workdir / "d.yaml").write_text(tiny_spec(name="d", optimizer={"name": "sgd", "lr": 1.0e+6},
                                              training={"batch_size": 16}))
    assert cli(capsys, "train", "d.yaml", "-q", "--out", "runs/d")[0] == 1
    row = listed(capsys)["d"]
    assert row["status"] == "diverged" and row["resumable"] is False


def test_a_killed_run_is_listed_and_diffed_from_its_metrics(workdir, capsys, interrupt_after):
    run = killed(ctrl_c_run(workdir, capsys, interrupt_after))
    last = pd.read_csv(run / "metrics.csv").iloc[-1]
    row = listed(capsys)["stopped"]       # was missing: it has no summary.json
    assert row["status"] == "killed" and row["resumable"] is True
    assert (row["epochs"], row["epochs_asked"], row["steps"]) == (2, EPOCHS, int(last["step"]))
    assert row["final_val_loss"] == pytest.approx(last["val_loss"])
    assert row["final_train_loss"] == pytest.approx(last["train_loss"])

    (workdir / "other.yaml").write_text(tiny_spec(name="other", training={"epochs": 1}))
    ok(capsys, "train", "other.yaml", "-q", "--out", "runs/other")
    out, _ = ok(capsys, "diff", "runs/other", run, "--out", "d.png")
    line = next(x for x in out.splitlines() if "final val_loss" in x)
    assert f"{last['val_loss']:.4g}" in line  # was empty
    assert "killed" in out and f"2/{EPOCHS}" in out
    ok(capsys, "train", "--resume", run, "-q")  # and what it says to do works
    assert listed(capsys)["stopped"]["status"] == "finished"


def test_a_run_resumed_then_killed_is_killed_not_its_earlier_stop(workdir, capsys,
                                                                  interrupt_after, monkeypatch):
    from bpcli.train import run as run_mod

    run = ctrl_c_run(workdir, capsys, interrupt_after)

    def dies(self, log, stop):  # killed before it could write summary.json again
        raise SystemExit("killed")

    monkeypatch.setattr(loop.Trainer, "finish", dies)
    with pytest.raises(SystemExit):
        run_mod.resume(run, epochs=EPOCHS - 5)
    row = listed(capsys)["stopped"]
    assert row["status"] == "killed"          # the summary.json there is of the Ctrl-C
    assert row["epochs"] == EPOCHS - 5 and row["epochs_asked"] == EPOCHS - 5


def test_a_folder_with_only_its_spec_is_listed_as_started(workdir, capsys):
    (workdir / "runs" / "early").mkdir(parents=True)
    (workdir / "runs" / "early" / "spec.yaml").write_text(tiny_spec(name="early"))
    row = listed(capsys)["early"]
    assert (row["status"], row["epochs"], row["epochs_asked"]) == ("started", 0, 3)


# ---------------------------------------------------------------- 2. no model.npz: what to do
@pytest.mark.parametrize("command", [
    ["eval"], ["predict", "--data", "x.npz"], ["export", "--out", "x.onnx"]])
def test_a_killed_run_says_to_resume_it_or_read_its_best_checkpoint(workdir, capsys,
                                                                    interrupt_after, command):
    run = killed(ctrl_c_run(workdir, capsys, interrupt_after))
    np.savez("x.npz", X=np.zeros((3, 32), np.float32))
    code, out, err = cli(capsys, command[0], run, *command[1:])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no model.npz" in err and f"killed after epoch 2 of {EPOCHS}" in err
    assert f"bpcli train --resume {run}" in err and "--checkpoint best" in err


def test_a_killed_run_without_validation_names_no_best_checkpoint(workdir, capsys,
                                                                  interrupt_after):
    run = killed(ctrl_c_run(workdir, capsys, interrupt_after, data={"val_split": 0.0}))
    assert not (run / "best.npz").exists()
    code, _, err = cli(capsys, "eval", run, "--data", "none.npz")
    assert code == 2 and "bpcli train --resume" in err and "--checkpoint best" not in err


def test_a_run_killed_before_its_first_checkpoint_says_to_train_again(workdir, capsys):
    (workdir / "runs" / "early").mkdir(parents=True)
    (workdir / "runs" / "early" / "spec.yaml").write_text(tiny_spec(name="early"))
    code, _, err = cli(capsys, "eval", "runs/early")
    assert code == 2 and "no checkpoint to resume from" in err
    assert f"bpcli train {Path('runs/early/spec.yaml')}" in err


def test_eval_names_the_weights_it_read(workdir, capsys, interrupt_after):
    run = ctrl_c_run(workdir, capsys, interrupt_after)
    out, _ = ok(capsys, "eval", run)
    assert "(checkpoint final)" not in out  # they are not what training would end with
    assert (f"(model.npz, written when training was interrupted by SIGINT at epoch 3, step "
            f"{json.loads((run / 'summary.json').read_text())['steps']}: 2 of {EPOCHS} epochs "
            f"done)") in out
    best = json.loads(str(np.load(run / "best.npz")["__state__"]))["best"]
    out, _ = ok(capsys, "eval", run, "--checkpoint", "best")
    assert (f"(checkpoint best: best.npz, the best val_loss ({best['value']:.4g}) at epoch "
            f"{best['epoch']}, step {best['step']})") in out


# ---------------------------------------------------------------- 3. one class: no AUC
def one_class_run(workdir, capsys, loss: str, k: int):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6))
    y = np.arange(120) % k if loss == "softmax_cross_entropy" else np.where(np.arange(120) % 2, 1, -1)
    np.savez("train.npz", X=X, y=y)
    np.savez("one.npz", X=X[:20], y=np.full(20, y.max()))
    Path("s.yaml").write_text(yaml.safe_dump({
        "name": "c", "input": [6], "seed": 0, "data": {"path": "train.npz", "val_split": 0.25},
        "layers": [{"dense": {"units": k}}], "loss": loss,
        "optimizer": {"name": "adam", "lr": 0.01}, "training": {"epochs": 1, "batch_size": 30}}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "runs/c")
    return str(y.max()) if loss == "softmax_cross_entropy" else "+1"


@pytest.mark.parametrize("loss, k", [("softmax_cross_entropy", 3), ("logistic", 1)])
def test_eval_on_labels_of_one_class_says_the_auc_is_undefined_and_why(workdir, capsys, loss, k):
    only = one_class_run(workdir, capsys, loss, k)
    s = json.loads(ok(capsys, "eval", "runs/c", "--data", "one.npz", "--json")[0])
    assert s["roc_auc"] is None
    assert all(row.get("roc_auc") is None for row in s["per_class"].values())
    out, _ = ok(capsys, "eval", "runs/c", "--data", "one.npz")
    assert (f"ROC AUC: undefined: the labels hold one class only ({only}), and one class alone "
            f"cannot be ranked against another") in out
    assert "left out" not in out    # was: "left out (not in the labels): 0, 1, 2"


# ---------------------------------------------------------------- 4. export never overwrites
@pytest.fixture
def tiny_run(workdir, capsys):
    (workdir / "tiny.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capsys, "train", "tiny.yaml", "-q", "--out", "runs/t")
    return workdir / "runs" / "t"


@pytest.mark.parametrize("args, file", [(["--out", "x.onnx"], "x.onnx"), ([], "t.onnx")])
def test_export_refuses_an_existing_file_naming_it(tiny_run, capsys, args, file):
    Path(file).write_bytes(b"someone's model")
    code, _, err = cli(capsys, "export", tiny_run, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{file}: --out: the file exists" in err and "--force" in err
    assert Path(file).read_bytes() == b"someone's model"


def test_export_force_replaces_an_existing_file(tiny_run, capsys):
    onnx = pytest.importorskip("onnx")
    Path("x.onnx").write_bytes(b"someone's model")
    ok(capsys, "export", tiny_run, "--out", "x.onnx", "--force")
    assert onnx.load("x.onnx").graph.input[0].name == "X"


# ---------------------------------------------------------------- 5. what X holds, recorded
def metadata(onnx, path) -> dict:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def test_export_of_a_csv_run_records_its_feature_columns_in_order(workdir, capsys):
    onnx = pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.standard_normal((60, 3)), columns=["width", "mass", "age"])
    table.insert(1, "kind", np.where(table["mass"] > 0, "heavy", "light"))
    table.to_csv("t.csv", index=False)
    Path("s.yaml").write_text(yaml.safe_dump({
        "name": "c", "input": [3], "seed": 0, "data": {"path": "t.csv", "target": "kind"},
        "layers": [{"dense": {"units": 2}}], "loss": "softmax_cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.01}, "training": {"epochs": 1, "batch_size": 20}}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "runs/c")
    ok(capsys, "export", "runs/c", "--out", "c.onnx")
    meta = metadata(onnx, "c.onnx")
    assert json.loads(meta["input_columns"]) == ["width", "mass", "age"]   # file order, label out
    assert json.loads(meta["label_column"]) == "kind"
    assert json.loads(meta["classes"]) == ["heavy", "light"]
    assert "input_pictures" not in meta


def test_export_of_a_picture_run_records_how_a_picture_becomes_x(workdir, capsys):
    onnx = pytest.importorskip("onnx")
    from PIL import Image

    rng = np.random.default_rng(0)
    for kind in ("dark", "light"):
        for i in range(6):
            (workdir / "pics" / kind).mkdir(parents=True, exist_ok=True)
            level = 40 if kind == "dark" else 200
            Image.fromarray(rng.integers(level - 30, level + 30, (8, 8)).astype(np.uint8)).save(
                workdir / "pics" / kind / f"{i}.png")
    Path("s.yaml").write_text(yaml.safe_dump({
        "name": "p", "input": [1, 8, 8], "seed": 0, "data": {"path": "pics", "val_split": 0.0},
        "layers": ["flatten", {"dense": {"units": 2}}], "loss": "softmax_cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.01}, "training": {"epochs": 1, "batch_size": 4}}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "runs/p")
    ok(capsys, "export", "runs/p", "--out", "p.onnx")
    pictures = json.loads(metadata(onnx, "p.onnx")["input_pictures"])
    assert pictures == {"layout": ["channels", "height", "width"], "channels": 1, "height": 8,
                        "width": 8, "mode": "L", "resize": "none",
                        "divide_by": {"8-bit": 255, "16-bit": 65535}, "range": [0, 1]}
    # and that is what bpcli itself feeds the network: the first picture, read so, is sample 0
    import bpcli
    from bpcli.train import data

    model = bpcli.load_run("runs/p")
    d = data.read(model.spec, "pics", labels="none")
    # as docs/export.md writes it
    first = (np.asarray(Image.open(workdir / "pics" / "dark" / "0.png").convert("L"))
             / 255.0).astype(np.float32)
    np.testing.assert_array_equal(d.X[0], first[None])


# ---------------------------------------------------------------- a run being trained now
def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_run_training_now_is_running_and_its_killed_mark_is_not(workdir, capsys,
                                                                  interrupt_after):
    import socket

    run = killed(ctrl_c_run(workdir, capsys, interrupt_after))
    assert not (run / "running.json").exists()   # training cleared its mark when it stopped
    here = socket.gethostname()
    (run / "running.json").write_text(json.dumps({"host": here, "pid": os.getpid()}))
    assert listed(capsys)["stopped"]["status"] == "running"
    code, _, err = cli(capsys, "eval", run)
    assert code == 2 and f"training is still running (process {os.getpid()} on {here}" in err
    code, _, err = cli(capsys, "train", "--resume", run, "-q")  # two writers would corrupt it
    assert code == 2 and "this run is being trained now, by process" in err
    # kill -9 leaves the mark, naming a process that is gone: killed, and resumable
    (run / "running.json").write_text(json.dumps({"host": here, "pid": _dead_pid()}))
    assert listed(capsys)["stopped"]["status"] == "killed"
    ok(capsys, "train", "--resume", run, "-q")
    assert listed(capsys)["stopped"]["status"] == "finished"
    assert not (run / "running.json").exists()


def test_a_ctrl_c_at_an_epochs_end_resumes_to_the_bits_of_an_uninterrupted_run(
        workdir, capsys, interrupt_after):
    # the signal lands while epoch 2 is recorded: the stop must come before epoch 3 draws its
    # sample order, or the resumed run draws another one from the advanced generator
    from helpers import run_arrays, same_bits

    (workdir / "straight.yaml").write_text(tiny_spec(name="stopped", training={"epochs": EPOCHS}))
    ok(capsys, "train", "straight.yaml", "-q", "--out", "straight")
    run = ctrl_c_run(workdir, capsys, interrupt_after)
    state = json.loads((run / "summary.json").read_text())
    assert state["stop_reason"].startswith("interrupted by SIGINT at epoch 3")
    ok(capsys, "train", "--resume", run, "-q")
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(run))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc: Linux only")
def test_a_killed_but_unreaped_trainer_or_a_reused_process_id_is_not_running(
        workdir, capsys, interrupt_after):
    import socket
    import subprocess
    import sys

    from bpcli.train.run_folder import _started

    run = killed(ctrl_c_run(workdir, capsys, interrupt_after))
    here = socket.gethostname()
    # a trainer killed with kill -9 whose parent has not reaped it yet: a zombie, still a pid
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = _started(proc.pid)
    (run / "running.json").write_text(json.dumps({"host": here, "pid": proc.pid,
                                                  "started": started}))
    assert listed(capsys)["stopped"]["status"] == "running"
    proc.kill()
    import time

    deadline = time.time() + 10
    while _started(proc.pid) != "zombie" and time.time() < deadline:
        time.sleep(0.01)
    assert listed(capsys)["stopped"]["status"] == "killed"   # not reaped, but dead
    proc.wait()
    # the id alive again, but another process's: its start time differs from the mark's
    (run / "running.json").write_text(json.dumps({"host": here, "pid": os.getpid(),
                                                  "started": "1"}))
    assert listed(capsys)["stopped"]["status"] == "killed"


def test_resume_with_a_spec_of_another_network_says_no_force_can_continue_it(workdir, capsys,
                                                                              interrupt_after):
    run = ctrl_c_run(workdir, capsys, interrupt_after)
    (workdir / "wide.yaml").write_text(tiny_spec(
        name="stopped", training={"epochs": EPOCHS},
        layers=[{"conv1d": {"channels": 6, "kernel": 5, "pad": "same"}}, "relu",
                {"dense": {"units": 1}}]))
    for force in ([], ["--force"]):
        code, _, err = cli(capsys, "train", "--resume", run, "wide.yaml", "-q", *force)
        assert code == 2 and "its network's weights do not fit this run's" in err, err
        assert "layers.0.weight: run (4, 1, 5), spec (6, 1, 5)" in err
        assert "train it as a new run, bpcli train wide.yaml" in err and "add --force" not in err
    # a change that keeps every weight's shape still offers --force, and it works
    (workdir / "slow.yaml").write_text(tiny_spec(name="stopped", training={"epochs": EPOCHS},
                                                 optimizer={"name": "adam", "lr": 0.001}))
    code, _, err = cli(capsys, "train", "--resume", run, "slow.yaml", "-q")
    assert code == 2 and "add --force to continue with the given one" in err
    ok(capsys, "train", "--resume", run, "slow.yaml", "-q", "--force")


def test_a_sigterm_as_the_run_draws_its_curves_is_taken_as_ctrl_c(workdir, capsys, monkeypatch):
    # a scheduler's SIGTERM after the last epoch, halfway through writing loss.png: Python's
    # default ended the process on the spot (exit -15); bpcli takes it as Ctrl-C, so the half
    # picture's temporary file is removed, the run is finished, and the exit is 130, with a message
    from matplotlib.figure import Figure

    from bpcli.train.run_folder import RunFolder

    def half_written_then_terminated(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n half a picture")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Figure, "savefig", half_written_then_terminated)
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 2}))
    code, out, err = cli(capsys, "train", "s.yaml", "-q", "--out", "run")
    assert code == 130 and err.strip().endswith("bpcli: interrupted"), (code, err)
    assert "Traceback" not in err
    assert sorted(p.name for p in (workdir / "run").iterdir()) == [
        "best.npz", "last.npz", "metrics.csv", "model.npz", "spec.yaml", "summary.json"]
    assert RunFolder(workdir / "run").state().status == "finished"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # main() gave the handler back


def test_a_picture_named_without_a_suffix_is_a_png(workdir):
    # bpcli plot RUN --out curves: matplotlib would take the format from the temporary file's
    # .tmp suffix and refuse it
    from bpcli.explain.plots import pyplot, save

    fig = pyplot().figure()
    assert save(fig, workdir / "curves") == workdir / "curves"
    assert (workdir / "curves").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in workdir.iterdir()] == ["curves"]


def test_runs_shows_the_best_of_the_metric_the_run_watched(workdir, capsys):
    # early stopping on val_accuracy: best.npz is the best accuracy, so the listing says that,
    # not an empty best val_loss column
    (workdir / "s.yaml").write_text(tiny_spec(training={
        "epochs": 3, "early_stopping": {"metric": "val_accuracy", "patience": 5}}))
    assert cli(capsys, "train", "s.yaml", "-q", "--out", "runs/acc")[0] == 0
    (workdir / "t.yaml").write_text(tiny_spec(training={"epochs": 2}))
    assert cli(capsys, "train", "t.yaml", "-q", "--out", "runs/loss")[0] == 0
    code, out, _ = cli(capsys, "runs", "runs", "--json")
    rows = {r["run"]: r for r in json.loads(out)}
    accuracies = pd.read_csv(workdir / "runs" / "acc" / "metrics.csv")["val_accuracy"]
    assert rows["acc"]["best_val_accuracy"] == accuracies.max()
    assert "best_val_loss" not in rows["acc"]
    losses = pd.read_csv(workdir / "runs" / "loss" / "metrics.csv")["val_loss"]
    assert rows["loss"]["best_val_loss"] == losses.min()
    assert "best_val_accuracy" not in rows["loss"]
    from bpcli.cli.render import runs_table

    headers = [c.header for c in runs_table(list(rows.values()), "runs").columns]
    assert headers[-2:] == ["best\nval\nloss", "best\nval\naccuracy"]
