"""A sweep on a real Dask cluster: a scheduler and workers in processes of their own, each in its
own working folder, and data that exists only in the client's folder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bpcli.spec.validate import load
from bpcli.train import sweep as sw
from bpcli.train.data import pulses

from helpers import tiny_spec

distributed = pytest.importorskip("dask.distributed")


def _start(args, cwd: Path):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, worker folders): 1 scheduler and 2 workers, none in the client's folder."""
    home = tmp_path / "scheduler"
    home.mkdir()
    info = home / "scheduler.json"
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(info)], home)]
    try:
        deadline = time.time() + 60
        address = None
        while address is None and time.time() < deadline:
            # the scheduler creates the file, then writes it: an empty or partial file is not yet
            # its answer (seen on a loaded machine: JSONDecodeError on an empty file)
            try:
                address = json.loads(info.read_text())["address"]
            except (FileNotFoundError, ValueError, KeyError):
                time.sleep(0.2)
        assert address is not None, "the dask scheduler wrote no address in 60 s"
        workers = []
        for k in range(2):
            folder = tmp_path / f"worker{k}"
            folder.mkdir()
            workers.append(folder)
            procs.append(_start(["distributed.cli.dask_worker", address, "--nworkers", "1",
                                 "--nthreads", "1", "--no-dashboard", "--local-directory",
                                 str(folder)], folder))
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_variants_train_on_data_sent_through_dask_not_on_the_clients_path(tmp_path, cluster,
                                                                          monkeypatch):
    address, workers = cluster
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    monkeypatch.chdir(client_dir)
    d = pulses(160, (32,), 0)
    data = client_dir / "mine.npz"
    np.savez(data, X=d.X, y=d.y)
    spec_file = client_dir / "s.yaml"
    spec_file.write_text(tiny_spec(training={"epochs": 1}))
    spec = load(spec_file)
    variants = sw.plan(spec, {"optimizer.lr": [0.01, 0.02]}, {}, 0, 1, spec.data["seed"])
    folder = sw.new_sweep(spec, variants, client_dir / "sw", str(data), None)

    def echo(message):
        # run_sweep has read and sent the data before it says anything: from here on, the file
        # is gone from the client's disk, so a variant that looked for it by path would fail
        if data.exists():
            data.rename(client_dir / "elsewhere.npz")

    rows = sw.run_sweep(folder, workers=2, executor="dask", scheduler=address, echo=echo)
    assert [r["status"] for r in rows] == ["ok", "ok"], [r["message"] for r in rows]
    for v in variants:
        run = folder / v.name
        summary = json.loads((run / "summary.json").read_text())
        assert summary["data"] == str(data) and summary["n_train"] + summary["n_val"] == 160
        # the run folder names the client's file, as a local sweep's does
        assert load(run / "spec.yaml").data["data"]["path"] == str(data)
    # nothing of the sweep was left in the workers' folders
    assert not any(p.suffix in (".npz", ".csv") for w in workers for p in w.rglob("*"))
