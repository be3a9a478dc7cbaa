"""Runs that survive: checkpoints, resume to the same bits, Ctrl-C, kill -9, NaN localisation."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpcli.cli import main
from helpers import run_arrays, same_bits, tiny_spec

BPCLI = str(Path(sys.executable).parent / "bpcli")


def spec_file(path: Path, epochs: int, optimizer: dict | None = None) -> Path:
    """helpers.tiny_spec on 3000 pulses (adam, lr 0.003, batches of 16) for ``epochs`` epochs."""
    path.write_text(tiny_spec(name="long", data={"n": 3000, "val_split": 0.2},
                              optimizer=optimizer or {"lr": 0.003},
                              training={"epochs": epochs, "batch_size": 16}))
    return path


def test_same_spec_data_and_seed_give_identical_weights(workdir):
    spec = spec_file(workdir / "s.yaml", 2)
    assert main(["train", str(spec), "-q", "--out", "a"]) == 0
    assert main(["train", str(spec), "-q", "--out", "b"]) == 0
    assert same_bits(run_arrays(workdir / "a"), run_arrays(workdir / "b"))


@pytest.mark.slow
def test_resume_continues_exactly_where_the_run_stopped(workdir):
    spec = spec_file(workdir / "s.yaml", 4)
    assert main(["train", str(spec), "-q", "--out", "straight"]) == 0
    assert main(["train", str(spec), "-q", "--out", "split", "--epochs", "2"]) == 0
    assert main(["train", "--resume", "split", "--epochs", "4", "-q"]) == 0
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(workdir / "split"))
    a = pd.read_csv(workdir / "straight" / "metrics.csv")
    b = pd.read_csv(workdir / "split" / "metrics.csv")
    pd.testing.assert_frame_equal(a.drop(columns="elapsed_s"), b.drop(columns="elapsed_s"))


def test_resume_refuses_a_different_spec_unless_forced(workdir, capsys):
    spec = spec_file(workdir / "s.yaml", 2)
    other = spec_file(workdir / "t.yaml", 2, {"lr": 0.01})
    assert main(["train", str(spec), "-q", "--out", "r", "--epochs", "1"]) == 0
    assert main(["train", str(other), "--resume", "r", "-q"]) == 2
    assert "differs from the spec this run was trained with" in capsys.readouterr().err
    assert main(["train", str(other), "--resume", "r", "-q", "--force"]) == 0
    assert "lr: 0.01" in (workdir / "r" / "spec.yaml").read_text()


def test_resume_with_its_spec_and_more_epochs_needs_no_force(workdir, capsys):
    # the spec file says 2 epochs, the run was trained --epochs 1: --epochs 3 wins over both, as
    # in train, so the spec does not differ from the run's (it used to report epochs: 1 -> 2)
    spec = spec_file(workdir / "s.yaml", 2)
    assert main(["train", str(spec), "-q", "--out", "r", "--epochs", "1"]) == 0
    assert main(["train", str(spec), "--resume", "r", "-q", "--epochs", "3"]) == 0, \
        capsys.readouterr().err
    assert len(pd.read_csv(workdir / "r" / "metrics.csv")) == 3


def test_a_finished_run_needs_more_epochs_to_resume(workdir, capsys):
    spec = spec_file(workdir / "s.yaml", 1)
    assert main(["train", str(spec), "-q", "--out", "r"]) == 0
    assert main(["train", "--resume", "r", "-q"]) == 2
    assert "already finished its 1 epoch;" in capsys.readouterr().err


def _wait_for_rows(metrics: Path, rows: int, proc, timeout=60):
    t = time.time()
    while time.time() - t < timeout:
        if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("no metrics rows appeared")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_run_resumes_to_the_same_weights(workdir, how):
    spec = spec_file(workdir / "s.yaml", 6)
    assert main(["train", str(spec), "-q", "--out", "straight"]) == 0
    proc = subprocess.Popen([BPCLI, "train", str(spec), "-q", "--out", "stopped"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(workdir / "stopped" / "metrics.csv", 2, proc)
    time.sleep(0.03)  # mid-epoch
    proc.send_signal(getattr(signal, how))
    out, err = proc.communicate(timeout=60)
    run = workdir / "stopped"
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert f"stopped by {how}" in err and "bpcli train --resume" in err and "Traceback" not in err
        summary = json.loads((run / "summary.json").read_text())
        assert summary["stop_reason"].startswith(f"interrupted by {how}")
    # whatever happened, the run folder is readable
    pd.read_csv(run / "metrics.csv")
    with np.load(run / "last.npz", allow_pickle=False) as f:
        assert "__state__" in f.files
    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(run))
    rows = pd.read_csv(run / "metrics.csv")
    assert list(rows["epoch"]) == [1, 2, 3, 4, 5, 6]


def test_a_step_that_is_finite_when_recomputed_reads_as_a_sentence():
    # the divergence message says "the first non-finite value appears in {where}"
    import yaml

    import bpcli
    from bpcli.explain.gradcheck import random_batch
    from bpcli.train.loop import locate_nonfinite

    model = bpcli.build(yaml.safe_load(tiny_spec()))
    X, y = model.prepare(*random_batch(model, 4, 0))
    where = locate_nonfinite(model, X, y, model.draw_masks(4, np.random.default_rng(0)))
    assert where == "no single node: its values are finite when recomputed"


def test_a_diverging_run_names_the_node_and_keeps_the_last_finite_checkpoint(workdir, capsys):
    spec = spec_file(workdir / "s.yaml", 3, {"name": "sgd", "lr": 1.0e+6})
    assert main(["train", str(spec), "-q", "--out", "d"]) == 1
    err = capsys.readouterr().err
    assert "training diverged" in err and "the first non-finite value appears in the" in err
    assert "layers[" in err and ("forward pass" in err or "backward pass" in err)
    assert "Traceback" not in err
    summary = json.loads((workdir / "d" / "summary.json").read_text())
    assert summary["stop_reason"].startswith("diverged")
    for w in run_arrays(workdir / "d").values():
        assert np.isfinite(w).all()


def test_on_nan_skip_skips_the_bad_batch(workdir):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 8)).astype(np.float32)
    y = X.sum(axis=1)
    y[5] = 1e30            # its squared error overflows float32: that batch's loss is inf
    np.savez(workdir / "d.npz", X=X, y=y)
    (workdir / "r.yaml").write_text(
        "name: r\ninput: [8]\nlayers: [{dense: {units: 1}}]\nloss: mse\n"
        "optimizer: {name: sgd, lr: 0.01}\ntraining: {epochs: 2, batch_size: 8, shuffle: false}\n"
        "data: {path: d.npz, val_split: 0.0}\n")
    assert main(["train", "r.yaml", "-q", "--out", "stop"]) == 1
    assert main(["train", "r.yaml", "-q", "--out", "skip", "--on-nan", "skip"]) == 0
    summary = json.loads((workdir / "skip" / "summary.json").read_text())
    assert summary["skipped_batches"] == 2 and summary["steps"] == 14


def test_summary_records_provenance(workdir):
    spec = spec_file(workdir / "s.yaml", 1)
    assert main(["train", str(spec), "-q", "--out", "p"]) == 0
    s = json.loads((workdir / "p" / "summary.json").read_text())
    for key in ("versions", "command", "seed", "spec_hash", "data_fingerprint", "started", "ended",
                "final", "best", "peak_rss_mb", "time_s"):
        assert key in s, key
    assert set(s["versions"]) == {"bpcli", "numpy", "python"}
    assert s["command"].startswith("bpcli train")
    assert set(s["time_s"]) == {"data", "compute", "metrics", "optimizer", "evaluation", "checkpoint"}


def test_training_on_memory_mapped_npy_reads_batches_not_the_file(workdir):
    """X.npy + y.npy are memory-mapped: the training split stays a view of the file."""
    from bpcli.train import data as data_mod
    from bpcli.train import run
    from bpcli.spec.validate import load

    rng = np.random.default_rng(0)
    folder = workdir / "big"
    folder.mkdir()
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float64, shape=(3000, 32))
    X[:] = rng.standard_normal((3000, 32))
    y = (X[:, 10:20].sum(axis=1) > 0).astype(np.int64)
    X.flush()
    del X
    np.save(folder / "y.npy", y)
    spec = spec_file(workdir / "s.yaml", 2)
    p = run.prepare(load(spec), folder)
    assert isinstance(p.train[0], np.memmap) and isinstance(p.val[0], np.memmap)
    assert main(["train", str(spec), "--data", str(folder), "-q", "--out", "m"]) == 0
    s = json.loads((workdir / "m" / "summary.json").read_text())
    assert s["n_train"] == 2400 and s["n_val"] == 600 and s["final"]["val_accuracy"] > 0.8
    # a single .npy path means its folder
    assert data_mod.load_file(folder / "X.npy", "y").X.shape == (3000, 32)


@pytest.mark.slow
def test_diff_names_the_keys_that_differ_and_plot_smooths(workdir, capsys):
    spec = spec_file(workdir / "s.yaml", 2)
    assert main(["train", str(spec), "-q", "--out", "a"]) == 0
    assert main(["train", str(spec), "-q", "--out", "b", "--seed", "3", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["diff", "a", "b", "--out", "d.png"]) == 0
    out = capsys.readouterr().out
    assert "seed" in out and "training.epochs" in out and "final val_loss" in out
    assert "optimizer.lr" not in out
    assert (workdir / "d.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", "a", "b", "--smooth", "2", "--linear", "--out", "p.png"]) == 0
    assert main(["diff", "a", "nowhere"]) == 2


def test_resume_refuses_options_it_would_ignore(workdir, capsys):
    spec = spec_file(workdir / "s.yaml", 2)
    assert main(["train", str(spec), "-q", "--out", "r", "--epochs", "1"]) == 0
    assert main(["train", "--resume", "r", "--set", "optimizer.lr=0.1", "--seed", "2"]) == 2
    assert "--set, --seed cannot change a run being resumed" in capsys.readouterr().err


def test_a_row_cut_short_by_a_kill_is_dropped_on_resume(workdir):
    spec = spec_file(workdir / "s.yaml", 2)
    assert main(["train", str(spec), "-q", "--out", "r", "--epochs", "1"]) == 0
    metrics = workdir / "r" / "metrics.csv"
    metrics.write_text(metrics.read_text() + "2,30")       # half a row, no newline
    assert main(["train", "--resume", "r", "--epochs", "2", "-q"]) == 0
    assert list(pd.read_csv(metrics)["epoch"]) == [1, 2]


def test_a_run_stopped_after_the_last_batch_of_an_epoch_resumes_to_its_row(workdir):
    """The checkpoint may fall between an epoch's last step and its metrics row."""
    from bpcli.train import loop as train_mod
    from bpcli.train import run
    from bpcli.train.run_folder import RunFolder
    from bpcli.spec.validate import load

    spec = spec_file(workdir / "s.yaml", 2)
    assert main(["train", str(spec), "-q", "--out", "straight"]) == 0
    p = run.prepare(load(spec))
    folder = RunFolder.create(workdir / "cut")
    folder.write_spec(p.model.spec)
    t = train_mod.Trainer(p.model, p.train, p.val, folder, data_fingerprint=p.fingerprint)
    log = train_mod.MetricsLog(folder.metrics, t.columns)
    t.state.order = t.state.rng.permutation(t.n)
    starts = range(0, t.n, t.bs)
    while t.state.batch < len(starts):       # every step of epoch 1, then stop before its row
        t.step(log, starts)
    t.checkpoint(force=True)
    log.close()
    run_dir = folder.path
    assert main(["train", "--resume", str(run_dir), "-q"]) == 0
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(run_dir))
    assert list(pd.read_csv(run_dir / "metrics.csv")["epoch"]) == [1, 2]
