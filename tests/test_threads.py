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
