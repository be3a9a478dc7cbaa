"""Commands that read run folders: runs, plot, diff."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import List, Optional

import typer

from rich.table import Table

from ..core.fields import positive_int
from . import command, err, out
from .options import option

from .render import cell, runs_table


@command
def runs(folder: Path = typer.Argument(Path("runs"), help="a folder of runs, or a sweep folder"),
         as_json: bool = typer.Option(False, "--json", help="print JSON rows")):
    """List runs (or a sweep's variants): how each stands (finished, interrupted, diverged,
    killed), epochs done of those asked for, and final metrics."""
    from ..train.run_folder import STATUSES
    from ..train.runs import list_runs

    from ..train.run_folder import RunFolder

    rows = list_runs(folder)
    if as_json:
        print(json.dumps(rows))
        return
    sweeps = ([] if RunFolder.is_sweep(folder) else
              sorted(d for d in folder.iterdir() if d.is_dir() and RunFolder.is_sweep(d)))
    if rows:
        out.print(runs_table([{**r, "epochs": epochs_cell(r)} for r in rows], str(folder),
                             out.width))
    elif not sweeps:
        err.print(f"no runs in {folder}", markup=False)
    for status in dict.fromkeys(r["status"] for r in rows):
        if status != "finished" and status in STATUSES:
            out.print(f"{status}: {STATUSES[status]}", markup=False)
    for r in rows:  # what went wrong in a run whose write failed, or whose file is damaged
        if r.get("note"):
            out.print(f"{r['run']}: {r['note']}", markup=False)
    for d in sweeps:  # their variants are listed by bpcli runs SWEEP
        out.print(f"sweep: {d} (bpcli runs {shlex.quote(str(d))} lists its variants)", markup=False)


def epochs_cell(row: dict) -> str | None:
    """``26/300``: the epochs done of those asked for."""
    if row.get("epochs") is None:
        return None
    asked = row.get("epochs_asked")
    return f"{row['epochs']}/{asked}" if asked is not None else str(row["epochs"])


@command
def plot(runs: List[Path] = typer.Argument(..., help="one or more run folders or sweep folders"),
         out_file: Path = typer.Option(Path("loss_curves.png"), "--out", help="PNG file to write"),
         logy: Optional[bool] = typer.Option(None, "--logy/--linear", help="loss axis scale "
                                                                           "(default: log when all "
                                                                           "losses are positive)"),
         smooth: int = option(1, check=positive_int, help="moving-average window, in rows")):
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
    states = report["state"]
    table.add_row("status", *(s.status for s in states))
    table.add_row("epochs", *(epochs_cell({"epochs": s.epochs, "epochs_asked": s.epochs_asked})
                              for s in states))
    for key, a, b in report["final"]:
        table.add_row(f"final {key}", cell(a), cell(b))
    out.print(table)
    if not report["spec"]:
        out.print("the resolved specs are identical")
    runs = [RunFolder.open(r, RunFolder.METRICS) for r in (run_a, run_b)]
    path = plot_runs([(r.path.name, r.read_metrics()) for r in runs], out_file,
                     title=f"{run_a.name} vs {run_b.name}")
    out.print(f"curves: {path}")
