"""The thread policy: the engine's batch-slice workers and BLAS at one thread, set in-process,
recorded, and the same bits at every thread count."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from bpcli.cli import main
from bpcli.engine import backend, threads
from bpcli.engine.threads import available, default, limit, resolve
from bpcli.errors import InputError

from helpers import run_arrays, same_bits, tiny_spec


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_limit_sets_the_workers_holds_blas_at_one_and_gives_the_old_settings_back():
    before = blas_threads()
    for count in (1, 3):
        with limit(count) as n:
            assert n == count == threads.workers() and blas_threads() == {1}
        assert blas_threads() == before and threads.workers() == 1


def test_run_keeps_slice_order_raises_and_never_splits_inside_a_slice():
    with limit(3):
        assert threads.run(lambda b: b.start, [slice(i, i + 1) for i in range(7)]) == list(range(7))
        # a slice's own work runs on its worker's thread: no pool inside the pool
        assert threads.run(lambda b: threads.workers(), [slice(0, 1), slice(1, 2)]) == [1, 1]

        def bad(b):
            raise ValueError(f"slice {b.start}")
        with pytest.raises(ValueError, match="slice"):
            threads.run(bad, [slice(0, 1), slice(1, 2)])


def test_pieces_cover_the_batch_once_one_per_worker_at_least():
    x = np.zeros((10, 1000), dtype=np.float32)
    assert threads.pieces(x, 4000) == [slice(0, 10)]           # one worker: whole
    with limit(3):
        assert threads.pieces(x[:1], 10**9) == [slice(0, 1)]  # one sample: whole
        assert threads.pieces(x, 10) == [slice(0, 10)]        # under SPLIT_BYTES: whole
        for sample in (threads.SPLIT_BYTES // 4, threads.PIECE_BYTES):
            got = threads.pieces(x, sample)
            assert len(got) >= 3 and got[0].start == 0 and got[-1].stop == 10
            assert all(a.stop == b.start and a.stop > a.start for a, b in zip(got, got[1:]))


def test_the_default_is_every_core_and_bad_counts_are_refused():
    assert resolve(None) == default() == available() >= 1
    assert resolve(2) == 2
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InputError, match="--threads"):
            resolve(bad)


def test_summary_json_records_the_thread_count_and_the_pools(workdir):
    spec = workdir / "s.yaml"
    spec.write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", str(spec), "-q", "--out", "run"]) == 0
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert summary["threads"] == default()
    assert any(p["api"] == "blas" and p["threads"] == 1 for p in summary["thread_pools"])
    assert {"library": "bpcli", "api": "batch slices", "version": None,
            "threads": default()} in summary["thread_pools"]


@pytest.mark.slow
def test_train_threads_1_gives_the_bits_of_the_matching_sweep_variant(workdir):
    """The same spec, data, seed and thread count give the same weights in train and in sweep."""
    from helpers import run_arrays, same_bits

    spec = workdir / "s.yaml"
    spec.write_text(tiny_spec(training={"epochs": 2}))
    assert main(["train", str(spec), "-q", "--threads", "1", "--out", "alone",
                 "--set", "optimizer.lr=0.01"]) == 0
    assert main(["sweep", str(spec), "--grid", "optimizer.lr=0.01,0.02", "--workers", "2",
                 "--threads", "1", "--out", "sw"]) == 0
    variant = next(d for d in (workdir / "sw").iterdir() if d.is_dir() and "0.01" in d.name)
    assert same_bits(run_arrays(workdir / "alone"), run_arrays(variant))
    assert json.loads((variant / "summary.json").read_text())["threads"] == 1


@pytest.mark.slow
def test_a_resumed_run_runs_at_the_count_asked_or_the_default(workdir):
    spec = workdir / "s.yaml"
    spec.write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", str(spec), "-q", "--threads", "3", "--out", "run"]) == 0
    assert json.loads((workdir / "run" / "summary.json").read_text())["threads"] == 3
    assert main(["train", "--resume", str(workdir / "run"), "--epochs", "2", "-q"]) == 0
    assert json.loads((workdir / "run" / "summary.json").read_text())["threads"] == default()
    assert main(["train", "--resume", str(workdir / "run"), "--epochs", "3", "-q",
                 "--threads", "2"]) == 0
    assert json.loads((workdir / "run" / "summary.json").read_text())["threads"] == 2


def test_every_command_that_computes_takes_threads():
    """train, eval, predict, sweep, gradcheck and bench take --threads."""
    from bpcli.cli import app

    takes = {c.name for c in app.registered_commands
             if "threads" in c.callback.__wrapped__.__code__.co_varnames}
    assert {"train", "eval", "predict", "sweep", "gradcheck", "bench"} <= takes


def test_bench_says_how_many_threads_it_timed(workdir, capsys):
    # a timing means little without the thread count it was taken at
    spec = workdir / "spec.yaml"
    spec.write_text(tiny_spec())
    assert main(["bench", str(spec), "--steps", "1", "--batch", "2", "--threads", "2",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threads"] == 2 and report["device"] == "cpu"
    assert main(["bench", str(spec), "--steps", "1", "--batch", "2"]) == 0
    assert f", cpu, {default()} thread" in capsys.readouterr().out


BN_DROPOUT = """
name: bits
input: [1, 12, 12]
dtype: float32
seed: 3
data: {builtin: shapes, n: 96, classes: 3, val_split: 0.25}
layers:
  - conv2d: {channels: 4, kernel: 3, pad: same}
  - batchnorm
  - relu
  - maxpool2d: {size: 2}
  - conv2d: {channels: 6, kernel: 3, stride: 2}
  - batchnorm
  - elu
  - dropout: {rate: 0.3}
  - dense: {units: 3}
loss: softmax_cross_entropy
optimizer: {name: adam, lr: 0.01}
training: {epochs: 2, batch_size: 24, augment: {flip: true}}
"""


def test_the_same_spec_data_and_seed_give_the_same_bits_at_1_2_and_3_threads(workdir, monkeypatch):
    """The README's promise. The slice sizes are shrunk so that this small network's every
    layer is cut into many slices (the same cuts as at full size, in miniature): the batch
    norm moments, the bias and weight gradients sum across them, dropout and augmentation draw
    per sample; every step's slices are handed to the workers."""
    monkeypatch.setattr(threads, "SPLIT_BYTES", 0)
    monkeypatch.setattr(threads, "PIECE_BYTES", 700)
    monkeypatch.setattr(backend, "CACHE_BYTES", 2000)
    handed = []
    run = threads.run

    def counting(fn, slices):
        handed.append((threads.workers(), len(slices)))
        return run(fn, slices)
    monkeypatch.setattr(threads, "run", counting)
    spec = workdir / "bits.yaml"
    spec.write_text(BN_DROPOUT)
    for n in (1, 2, 3):
        assert main(["train", str(spec), "-q", "--threads", str(n), "--out", f"t{n}"]) == 0
    assert any(w == 3 and k >= 3 for w, k in handed)   # the workers did get slices
    first = run_arrays(workdir / "t1")
    for n in (2, 3):
        assert same_bits(first, run_arrays(workdir / f"t{n}")), f"{n} threads differ from 1"
        curves = [pd.read_csv(workdir / t / "metrics.csv").drop(columns="elapsed_s")
                  for t in ("t1", f"t{n}")]
        pd.testing.assert_frame_equal(*curves, check_exact=True)   # every loss, to the bit
