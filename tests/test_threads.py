"""The BLAS thread policy: set in-process with threadpoolctl, recorded, part of the same-bits promise."""

from __future__ import annotations

import json

import pytest
from threadpoolctl import threadpool_info

from bpcli.cli import main
from bpcli.engine.threads import DEFAULT_THREADS, limit, resolve
from bpcli.errors import InputError

from helpers import tiny_spec


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_limit_sets_every_blas_pool_and_gives_the_old_count_back():
    before = blas_threads()
    with limit(1) as n:
        assert n == 1 and blas_threads() == {1}
    assert blas_threads() == before


def test_the_default_is_the_measured_one_and_bad_counts_are_refused():
    assert resolve(None) == DEFAULT_THREADS == 1
    assert resolve(2) == 2
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InputError, match="--threads"):
            resolve(bad)


def test_summary_json_records_the_thread_count_and_the_pools(workdir):
    spec = workdir / "s.yaml"
    spec.write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", str(spec), "-q", "--out", "run"]) == 0
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert summary["threads"] == DEFAULT_THREADS
    assert any(p["api"] == "blas" and p["threads"] == DEFAULT_THREADS
               for p in summary["thread_pools"])


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
def test_a_resumed_run_keeps_its_thread_count(workdir):
    spec = workdir / "s.yaml"
    spec.write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", str(spec), "-q", "--threads", "2", "--out", "run"]) == 0
    assert main(["train", "--resume", str(workdir / "run"), "--epochs", "2", "-q"]) == 0
    assert json.loads((workdir / "run" / "summary.json").read_text())["threads"] == 2
    assert main(["train", "--resume", str(workdir / "run"), "--epochs", "3", "-q",
                 "--threads", "1"]) == 0
    assert json.loads((workdir / "run" / "summary.json").read_text())["threads"] == 1


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
    assert f", cpu, {DEFAULT_THREADS} thread" in capsys.readouterr().out
