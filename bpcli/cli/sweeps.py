"""``bpcli sweep``: many variants of a spec, trained in parallel, in one sweep folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import InputError
from . import command, err, out


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
