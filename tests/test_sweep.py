"""bpcli sweep: a grid with seeds runs in parallel processes and on Dask, with the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bpcli.cli import main
from bpcli.train import executors
from bpcli.train import sweep as sw
from helpers import tiny_spec

SPEC = tiny_spec(name="tiny", data={"n": 240, "val_split": 0.2},
                 optimizer={"name": "sgd", "lr": 0.1})
GRID = ["--grid", "optimizer.lr=0.3,0.03", "--grid", "training.batch_size=16,full", "--seeds", "2"]
METRICS = ["final_train_loss", "final_val_loss", "final_val_accuracy"]


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(SPEC)
    return tmp_path / "s.yaml"


def _table(folder):
    return pd.read_csv(Path(folder) / "sweep.csv").sort_values("index").reset_index(drop=True)


@pytest.mark.slow
def test_grid_with_seeds_runs_every_variant_in_its_own_run_folder(spec, capsys):
    assert main(["sweep", str(spec), *GRID, "--workers", "2", "--out", "sw"]) == 0
    table = _table("sw")
    assert len(table) == 8 and set(table["status"]) == {"ok"}
    assert sorted(table["optimizer.lr"].unique()) == [0.03, 0.3]
    assert sorted(table["training.batch_size"].astype(str).unique()) == ["16", "full"]
    assert sorted(table["seed"].unique()) == [0, 1]
    for run in table["run"]:
        folder = Path("sw") / run
        assert {"spec.yaml", "metrics.csv", "model.npz", "summary.json", "loss.png",
                "status.json"} <= {p.name for p in folder.iterdir()}
    # the variant's resolved spec says what was varied
    spec0 = (Path("sw") / table["run"][0] / "spec.yaml").read_text()
    assert "lr: 0.3" in spec0 and "batch_size: 16" in spec0
    assert (Path("sw") / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    # runs and plot understand sweep folders
    capsys.readouterr()
    assert main(["runs", "sw", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 8
    assert main(["plot", "sw", "--out", "all.png"]) == 0


@pytest.mark.slow
def test_same_seed_gives_the_same_metrics_as_bpcli_train(spec):
    assert main(["sweep", str(spec), "--grid", "optimizer.lr=0.1", "--workers", "1", "--out", "sw"]) == 0
    assert main(["train", str(spec), "-q", "--out", "single"]) == 0
    single = json.loads((Path("single") / "summary.json").read_text())["final"]
    row = _table("sw").iloc[0]
    for k in ("train_loss", "val_loss", "val_accuracy"):
        assert row[f"final_{k}"] == single[k]


@pytest.mark.slow
def test_an_impossible_variant_fails_alone(spec):
    # pad: same with stride 2 is impossible (as in PyTorch)
    assert main(["sweep", str(spec), "--grid", "layers[0].conv1d.stride=1,2", "--workers", "2",
                 "--out", "sw"]) == 0
    table = _table("sw")
    assert list(table["status"]) == ["ok", "failed"]
    assert "layers[0].conv1d.pad" in table["message"][1] and "stride 2" in table["message"][1]
    written = pd.read_csv("sw/sweep.csv", dtype=str, keep_default_na=False)
    assert written["steps"].str.fullmatch(r"\d*").all()   # counts, not 5.0, beside a failed row


def test_unknown_paths_and_bad_grids_are_refused_up_front(spec, capsys):
    assert main(["sweep", str(spec), "--grid", "optimizer.lrr=0.1"]) == 2
    assert "optimizer.lrr" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--grid", "optimizer.lr"]) == 2
    assert main(["sweep", str(spec), "--range", "optimizer.lr=1:0.1:log", "--random", "2"]) == 2
    assert not Path("runs").exists()


@pytest.mark.parametrize("args, says", [
    (["--grid", "optimizer.lr=0.01,-1"], "--grid optimizer.lr=-1: must be a number > 0, got -1"),
    (["--grid", "training.batch_size=16,zero"], "--grid training.batch_size=zero:"),
    (["--range", "training.epochs=0:3:int", "--random", "2"],
     "--range training.epochs=0: must be a positive integer, got 0"),
])
def test_a_value_its_own_key_refuses_is_refused_before_the_sweep_folder(spec, capsys, args, says):
    assert main(["sweep", str(spec), *args, "--out", "sw"]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not Path("sw").exists()


@pytest.mark.slow
def test_a_variant_that_diverges_at_once_is_a_result_named_in_its_own_folder(spec, capsys):
    # lr 1e6 diverges in the first epoch: its metrics.csv has a header and no row, which the
    # sweep's table, plot, bpcli plot and --resume read (they raised on it); and the message
    # names the variant's folder, not the worker's scratch copy of it
    assert main(["sweep", str(spec), "--grid", "optimizer.lr=1e6,0.1", "--workers", "2",
                 "--out", "sw"]) == 0
    err = capsys.readouterr().err
    table = _table("sw")
    assert list(table["status"]) == ["diverged", "ok"]
    assert f"are in {Path('sw') / table['run'][0]} (" in table["message"][0]
    assert "bpcli-sweep-" not in table["message"][0] + err and "Traceback" not in err
    assert (Path("sw") / "sweep.png").exists()
    assert main(["plot", str(Path("sw") / table["run"][0]), "--out", "d.png"]) == 0
    assert main(["sweep", "--resume", "sw"]) == 0
    # bpcli runs of the folder holding it points at the sweep; of an empty one says so
    capsys.readouterr()
    assert main(["runs", "."]) == 0
    assert "sweep: sw (bpcli runs sw lists its variants)" in capsys.readouterr().out
    Path("empty").mkdir()
    assert main(["runs", "empty"]) == 0
    assert capsys.readouterr().err.strip() == "no runs in empty"


def test_a_variant_interrupted_alone_is_run_again_by_resume(spec, monkeypatch):
    # a worker that got SIGINT or SIGTERM by itself stops its variant with a checkpoint: that
    # variant is not done, so --resume runs it (it was stored as an "error", done for resume)
    from bpcli.errors import Interrupted
    from bpcli.spec.validate import load
    from bpcli.train import run

    s = load(spec)
    folder = sw.new_sweep(s, sw.plan(s, sw.parse_grid(["optimizer.lr=0.3"]), {}, 0, 1, 0),
                          Path("sw"), None, None)
    p, variants = sw.load_plan(folder)

    def stopped(prep, run_dir, **kwargs):
        raise Interrupted(f"stopped by SIGTERM; resume with: bpcli train --resume {run_dir}")

    monkeypatch.setattr(run, "execute", stopped)
    result = sw.run_variant(p["spec"], p["spec_file"], variants[0].values, variants[0].seed,
                            None, None)
    status = sw._store(folder, variants[0], result)
    assert status["status"] == "interrupted"
    assert status["message"].endswith(f"--resume {folder / variants[0].name}")
    assert not sw._finished(folder, variants[0])


@pytest.mark.slow
def test_random_search_draws_within_the_range(spec):
    assert main(["sweep", str(spec), "--random", "3", "--range", "optimizer.lr=0.001:0.5:log",
                 "--workers", "2", "--out", "sw"]) == 0
    table = _table("sw")
    assert len(table) == 3 and table["optimizer.lr"].between(0.001, 0.5).all()


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_redoing_finished_runs(spec):
    from bpcli.spec.validate import load

    s = load(spec)
    g = sw.parse_grid(["optimizer.lr=0.3,0.1,0.03"])
    folder = sw.new_sweep(s, sw.plan(s, g, {}, 0, 1, 0), Path("sw"), None, None)
    # finish one variant by hand, as if the sweep had been stopped after it
    p, variants = sw.load_plan(folder)
    sw._store(folder, variants[1], sw.run_variant(p["spec"], p["spec_file"], variants[1].values,
                                                   variants[1].seed, None, None))
    before = (folder / variants[1].name / "model.npz").stat().st_mtime_ns
    assert main(["sweep", "--resume", str(folder), "--workers", "2"]) == 0
    assert (folder / variants[1].name / "model.npz").stat().st_mtime_ns == before
    assert list(_table(folder)["status"]) == ["ok", "ok", "ok"]


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_sweep_csv(spec):
    distributed = pytest.importorskip("dask.distributed")
    assert main(["sweep", str(spec), *GRID, "--workers", "2", "--out", "local"]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(["sweep", str(spec), *GRID, "--executor", "dask", "--scheduler",
                     cluster.scheduler_address, "--out", "dask"]) == 0
    local, dask = _table("local"), _table("dask")
    assert list(dask["status"]) == ["ok"] * 8
    pd.testing.assert_frame_equal(local[["optimizer.lr", "seed", *METRICS]],
                                  dask[["optimizer.lr", "seed", *METRICS]])
    assert sorted(p.name for p in Path("dask").iterdir() if p.is_dir()) == \
        sorted(p.name for p in Path("local").iterdir() if p.is_dir())


# ---------------------------------------------------------------- --device gpu: one variant per GPU
def test_a_gpu_sweep_without_a_gpu_is_refused_before_its_folder(spec, capsys):
    assert main(["sweep", str(spec), "--grid", "optimizer.lr=0.3,0.03", "--device", "gpu",
                 "--out", "g"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpcli: error: --device: gpu needs CuPy") and "Traceback" not in err
    assert not Path("g").exists()


def test_each_local_gpu_worker_sees_only_its_own_gpu():
    # the worker processes a GPU sweep runs on: one per GPU (not one per --workers), each with
    # CUDA_VISIBLE_DEVICES naming its own GPU, set before anything in it can load CuPy
    import os

    pool = executors.local_executor(4, ["5", "7"])
    try:
        seen = {pool.submit(os.getenv, "CUDA_VISIBLE_DEVICES").result() for _ in range(12)}
        assert pool._max_workers == 2 and seen <= {"5", "7"}
    finally:
        pool.shutdown()


@pytest.mark.parametrize("visible, count, ids", [(None, 2, ["0", "1"]), ("3,1", 2, ["3", "1"]),
                                                 ("2, 5 ,6", 2, ["2", "5"])])
def test_local_gpus_are_cudas_visible_devices(monkeypatch, visible, count, ids):
    import types

    from bpcli.engine import backend

    runtime = types.SimpleNamespace(getDeviceCount=lambda: count)
    monkeypatch.setattr(backend, "_cupy", lambda: types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=runtime)))
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert executors.local_gpus() == ids


@pytest.mark.slow
def test_a_dask_gpu_sweep_needs_workers_that_offer_a_gpu_and_runs_on_them(spec, capsys):
    distributed = pytest.importorskip("dask.distributed")
    args = ["sweep", str(spec), "--grid", "optimizer.lr=0.3,0.03", "--device", "gpu",
            "--executor", "dask"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main([*args, "--scheduler", cluster.scheduler_address, "--out", "none"]) == 2
        err = capsys.readouterr().err
        assert "--device: no worker of this Dask cluster offers a GPU" in err
        assert "--resources GPU=1" in err and "Traceback" not in err
        assert not Path("none").exists()   # refused: no sweep folder left behind
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  resources={"GPU": 1}) as cluster:
        # the variants reach the GPU worker with --device gpu; it has no CuPy, and says so
        assert main([*args, "--scheduler", cluster.scheduler_address, "--out", "one"]) == 0
        err = capsys.readouterr().err
        assert "(1 GPUs, one variant each at a time)" in err
    table = _table("one")
    assert list(table["status"]) == ["failed", "failed"]
    assert all("gpu needs CuPy" in m for m in table["message"])
    assert json.loads(Path("one/sweep.json").read_text())["device"] == "gpu"


# ---------------------------------------------------------------- refused before the sweep folder
PETS = """\
input: [2]
layers: [{dense: {units: 5}}]
loss: softmax_cross_entropy
optimizer: {name: sgd, lr: 0.1}
training: {epochs: 1, batch_size: 8}
"""


@pytest.fixture
def pets(tmp_path, monkeypatch):
    """A 2-class CSV (cat, dog) and a spec whose last layer gives 5 outputs."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    X = np.random.default_rng(0).standard_normal((60, 2))
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "y": np.where(X[:, 0] > 0, "cat", "dog")}).to_csv(
        "pets.csv", index=False)
    Path("s.yaml").write_text(PETS)


def test_what_would_fail_every_variant_is_refused_before_the_sweep_folder(pets, capsys):
    assert main(["sweep", "s.yaml", "--data", "pets.csv", "--grid", "optimizer.lr=0.1,0.01",
                 "--out", "sw"]) == 2
    err = capsys.readouterr().err
    assert "layers[0].dense.units: pets.csv holds 2 classes" in err and "Traceback" not in err
    assert not Path("sw").exists()


def test_an_error_at_a_varied_key_is_left_to_the_variants(pets, capsys):
    # the grid changes the very key the shared spec gets wrong: one variant trains
    assert main(["sweep", "s.yaml", "--data", "pets.csv", "--grid", "layers[0].dense.units=2,5",
                 "--out", "sw"]) == 0
    assert sorted(_table("sw")["status"]) == ["failed", "ok"]


def test_a_varied_key_is_compared_part_by_part_not_as_text(pets, capsys):
    # the grid varies layers[1] whole; the shared spec is wrong at layers[10], which layers[1]
    # is no prefix of: refused up front (as text, "layers.10" starts with "layers.1")
    deep = [{"dense": {"units": 4}}, "relu"]
    deep += [{"dense": {"units": 4}}, "relu"] * 4 + [{"dense": {"units": 5}}]
    assert len(deep) == 11
    Path("deep.yaml").write_text(PETS.replace("layers: [{dense: {units: 5}}]",
                                              f"layers: {json.dumps(deep)}"))
    assert main(["sweep", "deep.yaml", "--data", "pets.csv", "--grid",
                 "layers[1]=relu,tanh", "--out", "sw"]) == 2
    assert "layers[10].dense.units: pets.csv holds 2 classes" in capsys.readouterr().err
    assert not Path("sw").exists()


def test_a_refused_new_sweep_leaves_no_folder_but_a_started_one_stays(spec):
    from bpcli.spec.validate import load

    s = load(spec)
    variants = sw.plan(s, sw.parse_grid(["optimizer.lr=0.3,0.1"]), {}, 0, 1, 0)
    folder = sw.new_sweep(s, variants, Path("sw"), None, None)
    sw.remove_unstarted(folder)
    assert not folder.exists()
    folder = sw.new_sweep(s, variants, Path("sw"), None, None)
    (folder / variants[0].name).mkdir()
    sw.remove_unstarted(folder)
    assert (folder / sw.SWEEP_PLAN).exists()


@pytest.mark.slow
def test_a_sigterm_to_the_sweep_alone_stops_its_workers_too(spec):
    # Ctrl-C reaches the whole process group; `kill PID` (a scheduler stopping the job) only the
    # sweep, whose shutdown would then wait for the variants still training
    import signal
    import subprocess
    import sys
    import time

    Path("long.yaml").write_text(tiny_spec(name="long", data={"n": 240, "val_split": 0.2},
                                           training={"epochs": 100000}))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "bpcli"), "sweep", "long.yaml",
                             "--grid", "optimizer.lr=0.1,0.01", "--out", "sw"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "running 2 on" in proc.stderr.readline()
        time.sleep(3)   # the workers are training
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "bpcli: interrupted; the finished variants are kept in sw" in err
    assert "Traceback" not in err
