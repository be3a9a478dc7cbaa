"""Runs with dropout, batchnorm, augmentation and preprocessing survive as any run does: the same
spec and seed give the same bits, and a run stopped anywhere resumes to them, because the noise
generator and the running statistics are in every checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bpcli.cli import main
from helpers import run_arrays, same_bits

BPCLI = str(Path(sys.executable).parent / "bpcli")
SPEC = """\
name: modal
input: [2, 32]
data: {builtin: pulses, n: N}
preprocess: standardize
layers:
  - conv1d: {channels: 4, kernel: 5, pad: same}
  - batchnorm
  - relu
  - dropout: {rate: 0.3}
  - dense: {units: 8}
  - batchnorm
  - relu
  - dense: {units: 1}
loss: logistic
optimizer: {name: adam, lr: 0.003}
training:
  epochs: EPOCHS
  batch_size: 16
  augment: {flip: true, shift: 3, scale: [0.8, 1.2], noise: {std: 0.1}}
"""


def spec_file(path: Path, epochs: int, n: int) -> Path:
    path.write_text(SPEC.replace("EPOCHS", str(epochs)).replace("N", str(n)))
    return path


def test_same_spec_and_seed_give_the_same_weights_and_statistics(workdir):
    spec = spec_file(workdir / "s.yaml", 2, 400)
    assert main(["train", str(spec), "-q", "--out", "a"]) == 0
    assert main(["train", str(spec), "-q", "--out", "b"]) == 0
    a = run_arrays(workdir / "a")
    assert {"layers.1.running_mean", "layers.5.running_var", "preprocess.shift"} <= set(a)
    assert same_bits(a, run_arrays(workdir / "b"))


@pytest.mark.slow
def test_resume_after_an_epoch_gives_the_bits_of_an_uninterrupted_run(workdir):
    spec = spec_file(workdir / "s.yaml", 4, 400)
    assert main(["train", str(spec), "-q", "--out", "straight"]) == 0
    assert main(["train", str(spec), "-q", "--out", "split", "--epochs", "2"]) == 0
    assert main(["train", "--resume", "split", "--epochs", "4", "-q"]) == 0
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(workdir / "split"))
    a = pd.read_csv(workdir / "straight" / "metrics.csv")
    b = pd.read_csv(workdir / "split" / "metrics.csv")
    pd.testing.assert_frame_equal(a.drop(columns="elapsed_s"), b.drop(columns="elapsed_s"))


def _stop_in_epoch_two(spec: Path, out: str, how: str) -> subprocess.CompletedProcess:
    """Train ``spec`` into ``out`` in a subprocess and send ``how`` halfway through its second
    epoch: the first epoch's duration (its metrics row's elapsed_s) sets the delay, so the
    signal lands mid-epoch however loaded the machine is, not at the epoch's end."""
    import pandas as pd

    proc = subprocess.Popen([BPCLI, "train", str(spec), "-q", "--out", out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = spec.parent / out / "metrics.csv"
    t = time.time()
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > 1):
        assert proc.poll() is None and time.time() - t < 60, proc.communicate()
        time.sleep(0.01)
    epoch = float(pd.read_csv(metrics)["elapsed_s"].iloc[0])
    time.sleep(0.5 * epoch)
    proc.send_signal(getattr(signal, how))
    out_, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out_, err)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_run_stopped_mid_epoch_resumes_to_the_same_bits(workdir, how):
    spec = spec_file(workdir / "s.yaml", 4, 3000)
    assert main(["train", str(spec), "-q", "--out", "straight"]) == 0
    _stop_in_epoch_two(spec, "stopped", how)
    if how == "SIGINT":  # it stopped inside an epoch (150 steps each), checkpointing there
        summary = json.loads((workdir / "stopped" / "summary.json").read_text())
        assert summary["stop_reason"].startswith("interrupted by SIGINT")
        assert 150 < summary["steps"] < 300, summary["steps"]
    assert main(["train", "--resume", "stopped", "-q"]) == 0
    assert same_bits(run_arrays(workdir / "straight"), run_arrays(workdir / "stopped"))
