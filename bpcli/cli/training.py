"""Commands that train and compare runs: train, eval, sweep, runs, plot, diff."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import InputError
from . import SPEC, command, command_line, err, out
from .render import cell, report, with_progress

from rich.table import Table  # noqa: E402

@command
def train(spec: Optional[Path] = typer.Argument(None, help="YAML spec file (optional with --resume)",
                                               show_default=False),
          data: Optional[Path] = typer.Option(None, help=".npz (X, y), .csv, or a folder (or .npy) "
                                                         "with X.npy and y.npy, read memory-mapped; "
                                                         "wins over the spec's data entry"),
          out_dir: Optional[Path] = typer.Option(None, "--out", help="run folder [default: "
                                                                      "runs/<name>]"),
          epochs: Optional[int] = typer.Option(None, help="override training.epochs"),
          set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                         help="change the spec: optimizer.lr=0.01, "
                                              "layers[0].conv1d.kernel=5 (repeatable; YAML values)"),
          seed: Optional[int] = typer.Option(None, help="override seed"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
          preflight: bool = typer.Option(False, "--preflight", help="first run a fast gradcheck on "
                                                                    "a small batch; refuse to train "
                                                                    "if it fails"),
          resume: Optional[Path] = typer.Option(None, help="continue this run folder from its "
                                                           "last checkpoint"),
          force: bool = typer.Option(False, "--force", help="with --resume: continue even if SPEC "
                                                            "differs from the run's spec"),
          checkpoint_every: int = typer.Option(1, min=1, help="epochs between last.npz checkpoints"),
          on_nan: str = typer.Option("stop", help="a non-finite loss or gradient: stop (name the "
                                                  "node, keep the last finite checkpoint) or skip "
                                                  "the batch")):
    """Train SPEC and write a run folder: spec.yaml, metrics.csv, loss.png, model.npz, summary.json."""
    from ..explain.gradcheck_report import summary_line
    from ..spec.validate import apply_sets, load, set_value
    from ..train import run
    from ..train.run_folder import RunFolder

    if on_nan not in ("stop", "skip"):
        raise InputError(f"--on-nan must be stop or skip, got {on_nan!r}", path="--on-nan")
    options = {"checkpoint_every": checkpoint_every, "on_nan": on_nan}
    if resume is not None:
        ignored = [name for name, given in (("--set", set_), ("--seed", seed is not None),
                                            ("--data", data is not None), ("--out", out_dir is not None),
                                            ("--preflight", preflight)) if given]
        if ignored:
            raise InputError(f"{', '.join(ignored)} cannot change a run being resumed (it continues "
                             f"with its own spec, data and folder; only --epochs may extend it)",
                             path="--resume")
        s = None if spec is None else load(spec)
        RunFolder.open(resume)
        err.print(f"resuming {resume}")
        summary = with_progress(lambda cb: run.resume(
            resume, s, force=force, epochs=epochs, progress=cb, command=command_line(),
            on_change=lambda text: err.print(text, markup=False), **options), quiet)
        report(summary)
        return
    if spec is None:
        raise InputError("give a spec file to train (or --resume RUN to continue a run)")
    s = apply_sets(load(spec), set_)
    if epochs is not None:
        s = set_value(s, "training.epochs", epochs)
    if seed is not None:
        s = set_value(s, "seed", seed)
    p = run.prepare(s, data, target)
    if preflight:
        err.print("preflight gradcheck passed: " + summary_line(run.preflight(p)).splitlines()[-1])
    # all input is checked: only now does a run folder appear
    err.print(f"training {s.data['name']}: {p.model.n_params()} parameters, {p.train[0].shape[0]} "
              f"training and {0 if p.val is None else p.val[0].shape[0]} validation samples from "
              f"{p.source}")
    summary = with_progress(lambda cb: run.execute(
        p, out_dir or Path("runs") / s.data["name"], progress=cb, command=command_line(),
        **options), quiet)
    report(summary)


@command
def eval_(run: Path = typer.Argument(..., help="run folder written by bpcli train"),
          data: Optional[Path] = typer.Option(None, help=".npz or .csv file [default: the "
                                                         "validation split of the run's data]"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Loss (and accuracy, for classification losses) of a trained run on data."""
    from ..spec.validate import with_data
    from ..train import data as data_mod
    from ..train.run import fit
    from ..train.run_folder import RunFolder

    model = RunFolder.open(run).load_model()
    if data is not None:
        dataset = data_mod.from_spec(with_data(model.spec, data, target))
    else:
        dataset = data_mod.from_spec(model.spec)
        cfg = model.spec.data["data"]
        _, val = data_mod.split(dataset, cfg["val_split"], model.spec.data["seed"])
        if val is not None:
            dataset = data_mod.Dataset(*val, dataset.source + " (validation split)")
    X, y = fit(model, dataset)
    s = model.step(X, y, grad=False)
    result = {"loss": s.loss, "n": int(X.shape[0])}
    if model.loss_def.accuracy is not None:
        result["accuracy"] = model.loss_def.accuracy(s.output, y)
    if as_json:
        print(json.dumps(result))
        return
    line = f"{dataset.source}: loss {result['loss']:.6g} on {result['n']} samples"
    if "accuracy" in result:
        line += f", accuracy {result['accuracy']:.4f}"
    out.print(line)


@command
def sweep(spec: Optional[Path] = typer.Argument(None, help="YAML spec file (not with --resume)"),
          grid: List[str] = typer.Option([], help="PATH=V1,V2,... e.g. optimizer.lr=0.3,0.1 "
                                                  "(repeatable; every combination runs)"),
          random: int = typer.Option(0, min=0, help="draw this many random variants from --range"),
          range_: List[str] = typer.Option([], "--range", help="PATH=LOW:HIGH[:linear|log|int]"),
          seeds: int = typer.Option(1, min=1, help="seeds per variant (seed, seed+1, ...)"),
          data: Optional[Path] = typer.Option(None, help=".npz or .csv file for every variant"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
          out_dir: Optional[Path] = typer.Option(None, "--out", help="sweep folder [default: "
                                                                      "runs/<name>-sweep]"),
          workers: int = typer.Option(os.cpu_count() or 1, min=1, help="parallel processes"),
          executor: str = typer.Option("local", help="local (processes) or dask"),
          scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address, e.g. "
                                                             "tcp://127.0.0.1:8786"),
          resume: Optional[Path] = typer.Option(None, help="finish this interrupted sweep folder")):
    """Train many variants of SPEC in parallel: grids, random draws, seeds; sweep.csv and sweep.png."""
    from ..train import sweep as sw
    from ..spec.validate import load

    if executor not in ("local", "dask"):
        raise InputError(f"--executor must be local or dask, got {executor!r}", path="--executor")
    if executor == "dask" and not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS", path="--scheduler")
    if resume is not None:
        folder = resume
        sw.load_plan(folder)
    else:
        if spec is None:
            raise InputError("give a spec file, or --resume SWEEP_FOLDER")
        s = load(spec)
        g, r = sw.parse_grid(grid), sw.parse_ranges(range_)
        sw.check_paths(s, [*g, *r])
        variants = sw.plan(s, g, r, random, seeds, s.data["seed"])
        folder = sw.new_sweep(s, variants, out_dir or Path("runs") / f"{s.data['name']}-sweep",
                              data, target)
    rows = sw.run_sweep(folder, workers=workers, executor=executor, scheduler=scheduler,
                        echo=lambda m: err.print(m, markup=False))
    failed = [r for r in rows if r["status"] != "ok"]
    out.print(f"sweep folder: {folder}  ({len(rows) - len(failed)} ok, {len(failed)} failed)")
    out.print(f"table: {folder / 'sweep.csv'}")
    out.print(f"plot: {folder / 'sweep.png'}")


@command
def runs(folder: Path = typer.Argument(Path("runs"), help="a folder of runs, or a sweep folder"),
         as_json: bool = typer.Option(False, "--json", help="print JSON rows")):
    """List runs (or a sweep's variants) with their final metrics."""
    from ..train.runs import list_runs

    rows = list_runs(folder)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=str(folder))
    cols = [c for c in ("run", "status", "epochs", "steps", "final_train_loss", "final_val_loss",
                        "final_val_accuracy", "best_val_loss") if any(c in r for r in rows)]
    for c in cols:
        table.add_column(c.replace("final_", ""), justify="left" if c in ("run", "status") else "right")
    for r in rows:
        table.add_row(*[cell(r.get(c)) for c in cols])
    out.print(table)


@command
def plot(runs: List[Path] = typer.Argument(..., help="one or more run folders or sweep folders"),
         out_file: Path = typer.Option(Path("loss_curves.png"), "--out", help="PNG file to write"),
         logy: Optional[bool] = typer.Option(None, "--logy/--linear", help="loss axis scale "
                                                                           "(default: log when all "
                                                                           "losses are positive)"),
         smooth: int = typer.Option(1, min=1, help="moving-average window, in rows")):
    """Overlay the loss curves of one or several runs (or every run of a sweep folder) in one picture."""
    from ..explain.plots import plot_runs
    from ..train.runs import expand

    path = plot_runs([(r.path.name, r.read_metrics()) for r in expand(runs)], out_file, logy=logy,
                     smoothing=smooth)
    out.print(f"plot: {path}")


@command
def diff(run_a: Path = typer.Argument(..., help="a run folder"),
         run_b: Path = typer.Argument(..., help="another run folder"),
         out_file: Path = typer.Option(Path("diff.png"), "--out", help="PNG of both runs' curves")):
    """What differs between two runs: their resolved specs, final metrics, and curves overlaid."""
    from ..explain.plots import plot_runs
    from ..train.run_folder import RunFolder
    from ..train.runs import compare

    report = compare(run_a, run_b)
    table = Table(title=f"{run_a} vs {run_b}")
    for col in ("key", str(run_a), str(run_b)):
        table.add_column(col, overflow="fold")
    for key, a, b in report["spec"]:
        table.add_row(key, cell(a), cell(b))
    for key, a, b in report["final"]:
        table.add_row(f"final {key}", cell(a), cell(b))
    out.print(table)
    if not report["spec"]:
        out.print("the resolved specs are identical")
    runs = [RunFolder.open(r, RunFolder.METRICS) for r in (run_a, run_b)]
    path = plot_runs([(r.path.name, r.read_metrics()) for r in runs], out_file,
                     title=f"{run_a.name} vs {run_b.name}")
    out.print(f"curves: {path}")
