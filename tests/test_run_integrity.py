"""Runs that lose nothing (issue 22, items 1-3): a damaged file read back is named with what to
do, and resume falls back to the checkpoint before it; a write the disk refuses is one message
(exit 74) that leaves the earlier files whole and the run's state saying so; one process
writes a run (or sweep) folder at a time, and a second is refused, naming the first."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import cli, ok, run_arrays, same_bits, tiny_spec

BPCLI = str(Path(sys.executable).parent / "bpcli")


def cut(path: Path, keep: float = 0.5) -> None:
    """Cut the file at ``path`` short, as a copy stopped halfway or a full disk leaves it."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])


def no_temporary_files(folder: Path) -> bool:
    return not [p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- 1. damaged files read back
def test_a_weights_file_cut_short_is_named_by_eval_predict_and_export(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 2}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "r")
    x = np.random.default_rng(0).normal(size=(5, 32))
    np.savez("new.npz", X=x)
    cut(workdir / "r" / "model.npz")
    for args in (["eval", "r"], ["predict", "r", "--data", "new.npz"],
                 ["export", "r", "--out", "r.onnx"]):
        code, _, err = cli(capsys, *args)
        assert code == 2, (args, err)
        assert "r/model.npz: damaged: cut short" in err and "--checkpoint best" in err, err
        assert "bpcli train r/spec.yaml" in err and len(err.strip().splitlines()) == 1
    ok(capsys, "eval", "r", "--checkpoint", "best")        # best.npz is whole: it still works
    cut(workdir / "r" / "best.npz", 0.9)
    code, _, err = cli(capsys, "eval", "r", "--checkpoint", "best")
    assert code == 2 and "r/best.npz: damaged" in err and "leave out --checkpoint best" in err


def test_resume_falls_back_to_the_checkpoint_before_a_damaged_last_npz(workdir, capsys):
    # epoch 1's checkpoint is kept as last.prev.npz while epoch 2's is written; epoch 2's is then
    # cut short and the run killed: resume continues from epoch 1's, to an uninterrupted run's bits
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 3}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "straight")
    ok(capsys, "train", "s.yaml", "-q", "--out", "r", "--epochs", "1")
    first = (workdir / "r" / "last.npz").read_bytes()
    ok(capsys, "train", "--resume", "r", "-q", "--epochs", "2")
    assert not (workdir / "r" / "last.prev.npz").exists()   # removed when training ended
    run = workdir / "r"
    (run / "last.prev.npz").write_bytes(first)
    for name in ("summary.json", "model.npz", "loss.png"):  # killed after epoch 2's checkpoint
        (run / name).unlink()
    cut(run / "last.npz")
    out = json.loads(cli(capsys, "runs", ".", "--json")[1])
    assert {r["run"]: r["status"] for r in out}["r"] == "killed"   # last.prev.npz resumes it
    _, err = ok(capsys, "train", "--resume", "r", "-q", "--epochs", "3")
    assert "last.npz is damaged" in err and "continuing from last.prev.npz" in err
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(run))
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [1, 2, 3]
    assert not (run / "last.prev.npz").exists()


def test_resume_with_no_whole_checkpoint_says_to_train_again(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "r")
    shutil.copy("r/last.npz", "r/last.prev.npz")
    cut(workdir / "r" / "last.npz")
    cut(workdir / "r" / "last.prev.npz", 0.3)
    spec_before = (workdir / "r" / "spec.yaml").read_bytes()
    code, _, err = cli(capsys, "train", "--resume", "r", "-q", "--epochs", "2")
    assert code == 2 and "r/last.npz: damaged" in err and "last.prev.npz" in err
    assert "nothing can resume this run; train it again: bpcli train r/spec.yaml" in err
    assert (workdir / "r" / "spec.yaml").read_bytes() == spec_before


def test_runs_lists_a_damaged_run_as_damaged_and_the_others_as_they_stand(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    for name in ("good", "empty-summary", "cut-last", "bad-spec", "bad-metrics"):
        ok(capsys, "train", "s.yaml", "-q", "--out", f"runs/{name}")
    (workdir / "runs/empty-summary/summary.json").write_text("")
    (workdir / "runs/cut-last/summary.json").unlink()        # killed, its last.npz cut short
    cut(workdir / "runs/cut-last/last.npz")
    (workdir / "runs/bad-spec/spec.yaml").write_text("training: [unclosed\n")
    with open(workdir / "runs/bad-metrics/metrics.csv", "a") as f:
        f.write("2,\x00\x00garbage,,\n")
    code, out, err = cli(capsys, "runs", "--json")
    assert code == 0, err
    status = {r["run"]: r for r in json.loads(out)}
    assert status["good"]["status"] == "finished"
    for name, file in (("empty-summary", "summary.json"), ("cut-last", "last.npz"),
                       ("bad-spec", "spec.yaml"), ("bad-metrics", "metrics.csv")):
        assert status[name]["status"] == "damaged", status[name]
        assert f"{name}/{file}: damaged" in status[name]["note"], status[name]["note"]
    code, out, _ = cli(capsys, "runs")
    assert code == 0 and "good" in out and "damaged: a file it needs cannot be read back" in out
    assert "empty-summary: runs/empty-summary/summary.json: damaged" in out
    # the commands that read these files name them too, one paragraph, exit 2
    for args, named in ((["plot", "runs/bad-metrics"], "metrics.csv"),
                        (["diff", "runs/good", "runs/bad-spec"], "spec.yaml"),
                        (["diff", "runs/good", "runs/empty-summary"], "summary.json"),
                        (["train", "--resume", "runs/bad-metrics", "--epochs", "2", "-q"],
                         "metrics.csv")):
        code, _, err = cli(capsys, *args)
        assert code == 2 and f"{named}: damaged" in err, (args, err)


# ---------------------------------------------------------------- 2. writes that fail
def _wide(epochs: int = 3) -> str:
    """A network whose checkpoint (weights and adam's two buffers, ~50 kB) is larger than its
    spec.yaml and metrics.csv: a file size limit between them stops the first checkpoint."""
    return tiny_spec(layers=[{"conv1d": {"channels": 64, "kernel": 5, "pad": "same"}}, "relu",
                             {"dense": {"units": 1}}], training={"epochs": epochs})


def test_a_file_size_limit_stops_training_with_one_message_and_the_state_says_so(workdir):
    (workdir / "s.yaml").write_text(_wide())

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past it fails, not the process

    proc = subprocess.run([BPCLI, "train", "s.yaml", "-q", "--out", "r"], capture_output=True,
                          text=True, preexec_fn=limited, timeout=300)
    err = proc.stderr
    assert proc.returncode == 74, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2   # the header, then it
    assert "cannot write r/last.npz: File too large (EFBIG): the file size limit (ulimit -f) is " \
           "30 kB;" in err and "free on its disk" in err and "before its first checkpoint" in err
    run = workdir / "r"
    assert no_temporary_files(run) and not (run / "last.npz").exists()
    note = json.loads((run / "write_failed.json").read_text())
    assert note["file"].endswith("last.npz") and "EFBIG" in note["reason"]
    assert "training" in (run / "spec.yaml").read_text()          # written before: whole
    pd.read_csv(run / "metrics.csv")
    rows = json.loads(subprocess.run([BPCLI, "runs", ".", "--json"], capture_output=True,
                                     text=True).stdout)
    assert rows[0]["status"] == "write_failed" and rows[0]["resumable"] is False
    assert "writing last.npz failed: File too large" in rows[0]["note"]


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_resume_finishes_the_run(
        workdir, capsys, monkeypatch):
    from bpcli.train import checkpoint

    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 3}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "straight")
    real, writes = checkpoint.atomic_write, []

    def full_at_the_second_last_npz(path, write, **kw):
        if Path(path).name == "last.npz":
            writes.append(path)
            if len(writes) == 2:
                def half(f):
                    f.write(b"PK half a checkpoint")
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real(path, half, **kw)
        return real(path, write, **kw)

    monkeypatch.setattr(checkpoint, "atomic_write", full_at_the_second_last_npz)
    monkeypatch.setattr("bpcli.train.loop.CHECKPOINT_SECONDS", 0.0)
    code, _, err = cli(capsys, "train", "s.yaml", "-q", "--out", "r")
    assert code == 74, err
    assert "cannot write r/last.npz: No space left on device (ENOSPC);" in err
    assert "free on its disk" in err and "bpcli train --resume r continues from last.npz" in err
    run = workdir / "r"
    assert no_temporary_files(run) and not (run / "summary.json").exists()
    with np.load(run / "last.npz", allow_pickle=False) as f:   # the one before: whole
        assert json.loads(str(f["__state__"]))["epoch"] == 2
    rows = json.loads(cli(capsys, "runs", ".", "--json")[1])
    assert {r["run"]: (r["status"], r["resumable"]) for r in rows}["r"] == ("write_failed", True)
    code, _, err = cli(capsys, "eval", "r")
    assert code == 2 and "training stopped after epoch 2 of 3: writing last.npz failed" in err
    monkeypatch.setattr(checkpoint, "atomic_write", real)
    ok(capsys, "train", "--resume", "r", "-q")
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(run))
    assert not (run / "write_failed.json").exists()


def test_a_full_disk_at_the_final_weights_is_finished_by_resume(workdir, capsys, monkeypatch):
    from bpcli.train import loop

    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 2}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "straight")
    real = loop.atomic_write

    def full_at_model_npz(path, write, **kw):
        if Path(path).name == "model.npz":
            raise loop.WriteFailed(path, OSError(errno.ENOSPC, "No space left on device"))
        return real(path, write, **kw)

    monkeypatch.setattr(loop, "atomic_write", full_at_model_npz)
    code, _, err = cli(capsys, "train", "s.yaml", "-q", "--out", "r")
    assert code == 74 and "cannot write r/model.npz: No space left on device" in err
    rows = json.loads(cli(capsys, "runs", ".", "--json")[1])
    assert {r["run"]: r["status"] for r in rows}["r"] == "write_failed"
    monkeypatch.setattr(loop, "atomic_write", real)
    ok(capsys, "train", "--resume", "r", "-q")   # every epoch trained: it writes the end
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(workdir / "r"))
    a, b = (json.loads((workdir / d / "summary.json").read_text()) for d in ("straight", "r"))
    assert (b["stop_reason"], b["epochs"], b["final"]) == (a["stop_reason"], a["epochs"],
                                                             a["final"])
    assert list(pd.read_csv(workdir / "r" / "metrics.csv")["epoch"]) == [1, 2]


def test_a_write_another_command_cannot_make_is_one_message_too(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "r")

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    proc = subprocess.run([BPCLI, "plot", "r", "--out", "curves.png"], capture_output=True,
                          text=True, preexec_fn=limited, timeout=300)
    assert proc.returncode == 74 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write curves.png: File too large (EFBIG)" in proc.stderr
    assert not Path("curves.png").exists() and no_temporary_files(workdir)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a folder without write permission")
def test_a_folder_without_write_permission_is_one_message(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "r")
    Path("locked").mkdir()
    os.chmod("locked", 0o500)
    try:
        code, _, err = cli(capsys, "plot", "r", "--out", "locked/curves.png")
        assert code == 74 and "cannot write locked/curves.png: Permission denied (EACCES)" in err
        code, _, err = cli(capsys, "train", "s.yaml", "-q", "--out", "locked/run")
        assert code == 74 and "cannot write locked/run: Permission denied" in err
    finally:
        os.chmod("locked", 0o700)


def test_temporary_names_are_unique_to_the_process_and_the_write(tmp_path):
    from bpcli.train.run_folder import atomic_write

    names = []
    for _ in range(2):
        atomic_write(tmp_path / "x.json", lambda f: names.append(Path(f.name).name))
    assert names[0] != names[1] and all(f".x.json.{os.getpid()}." in n for n in names)
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


# ---------------------------------------------------------------- 3. two writers
def _slow_spec(path: Path, epochs: int) -> Path:
    path.write_text(tiny_spec(name="long", data={"n": 3000, "val_split": 0.2},
                              optimizer={"lr": 0.003}, training={"epochs": epochs,
                                                                 "batch_size": 16}))
    return path


def _wait_for(path: Path, proc, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        if path.exists() and path.stat().st_size:
            return
        if proc.poll() is not None:
            raise AssertionError(f"it ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def test_a_second_writer_of_a_run_training_now_is_refused_naming_the_first(workdir, capsys):
    spec = _slow_spec(workdir / "s.yaml", 40)
    proc = subprocess.Popen([BPCLI, "train", str(spec), "-q", "--out", "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(workdir / "run" / "metrics.csv", proc)
        spec_before = (workdir / "run" / "spec.yaml").read_bytes()
        code, _, err = cli(capsys, "train", "--resume", "run", "-q", "--epochs", "50")
        assert code == 2, err
        assert (f"this run is being trained now, by process {proc.pid} on "
                f"{socket.gethostname()} since ") in err
        assert (workdir / "run" / "spec.yaml").read_bytes() == spec_before  # not rewritten
        # a new run asked for at its folder gets a folder of its own
        ok(capsys, "train", str(spec), "-q", "--out", "run", "--epochs", "1")
        assert (workdir / "run-2" / "summary.json").exists()
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    assert proc.returncode == 130


def test_four_resumes_at_once_give_one_trainer_and_one_row_per_epoch(workdir, capsys):
    spec = _slow_spec(workdir / "s.yaml", 1)
    ok(capsys, "train", str(spec), "-q", "--out", "run")
    procs = [subprocess.Popen([BPCLI, "train", "--resume", "run", "--epochs", "5", "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.pid, p.wait(timeout=600), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    winners = [pid for pid, code, _ in results if code == 0]
    assert len(winners) == 1, results
    for pid, code, err in results:
        if pid != winners[0]:
            assert code == 2 and "Traceback" not in err, err
            assert (f"being trained now, by process {winners[0]}" in err
                    or "already finished its 5 epochs" in err), err
    assert list(pd.read_csv(workdir / "run" / "metrics.csv")["epoch"]) == [1, 2, 3, 4, 5]
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "finished 5 epochs"
    assert no_temporary_files(workdir / "run") and not (workdir / "run" / "running.json").exists()


def test_sweep_resume_of_a_sweep_running_now_is_refused_naming_it(workdir, capsys):
    spec = _slow_spec(workdir / "s.yaml", 40)
    proc = subprocess.Popen([BPCLI, "sweep", str(spec), "--grid", "optimizer.lr=0.003,0.001",
                             "--workers", "1", "--out", "sw"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(workdir / "sw" / "running.json", proc)
        code, _, err = cli(capsys, "sweep", "--resume", "sw")
        assert code == 2 and f"this sweep is being run now, by process {proc.pid} on " in err, err
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    assert not (workdir / "sw" / "running.json").exists()
