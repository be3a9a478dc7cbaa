"""``bpcli sweep``: many variants of a spec, trained in parallel, in one sweep folder."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import CheckFailed, InputError, Interrupted
from ..core.fields import nonneg_int, one_of, positive_int
from ..train.sweep import EXECUTORS
from . import command, err, out
from .options import option, spec_check, threads_option


@command
def sweep(spec: Optional[Path] = typer.Argument(None, help="YAML spec file (not with --resume)"),
          grid: List[str] = typer.Option([], help="PATH=V1,V2,... e.g. optimizer.lr=0.3,0.1 "
                                                  "(repeatable; every combination runs)"),
          random: int = option(0, check=nonneg_int, help="draw this many random variants from "
                                                         "--range"),
          range_: List[str] = typer.Option([], "--range", help="PATH=LOW:HIGH[:linear|log|int]"),
          seeds: int = option(1, check=positive_int, help="seeds per variant (seed, seed+1, ...)"),
          set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                         help="change the spec of every variant: "
                                              "data.n=500 (repeatable; not part of the names)"),
          epochs: Optional[int] = option(None, check=spec_check("training.epochs"),
                                         help="override training.epochs of every variant"),
          data: Optional[Path] = typer.Option(None, help=".npz or .csv file for every variant"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
          out_dir: Optional[Path] = typer.Option(None, "--out", help="sweep folder [default: "
                                                                      "runs/<name>-sweep]"),
          workers: int = option(os.cpu_count() or 1, check=positive_int, help="parallel processes"),
          executor: str = option("local", check=one_of(*EXECUTORS),
                                 help="local (processes) or dask"),
          scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address, e.g. "
                                                             "tcp://127.0.0.1:8786"),
          resume: Optional[Path] = typer.Option(None, help="finish this interrupted sweep folder"),
          threads: Optional[int] = threads_option("1 a variant"),
          device: Optional[str] = option(None, check=spec_check("training.device"),
                                         help="cpu or gpu for every variant [default: each "
                                              "variant's training.device]; gpu: one variant "
                                              "per GPU at a time (local: one process per GPU; "
                                              "Dask: workers with --resources GPU=1)")):
    """Train many variants of SPEC in parallel: grids, random draws, seeds; sweep.csv and sweep.png.

    Each variant runs on --threads threads (default 1: the --workers processes share the cores)
    and gives the bits of `bpcli train` with the same spec, data and seed. With --device gpu each
    GPU trains one variant at a time."""
    from ..train import sweep as sw
    from ..train.executors import local_gpus
    from ..spec.validate import apply_sets, load, set_value

    if executor == "dask" and not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS", path="--scheduler")
    if resume is not None:
        given = [name for name, v in (("SPEC", spec), ("--grid", grid), ("--range", range_),
                                      ("--random", random), ("--seeds", seeds != 1),
                                      ("--set", set_), ("--epochs", epochs), ("--data", data),
                                      ("--out", out_dir), ("--threads", threads),
                                      ("--device", device)) if v]
        if given:
            raise InputError(f"{', '.join(given)} cannot change a sweep being resumed (it "
                             f"finishes its own plan)", path="--resume")
        folder = resume
        sw.load_plan(folder)
    else:
        if spec is None:
            raise InputError("give a spec file, or --resume SWEEP_FOLDER")
        s = apply_sets(load(spec), set_, data=data)  # --data replaces a builtin set first
        if epochs is not None:
            s = set_value(s, "training.epochs", epochs)
        g, r = sw.parse_grid(grid), sw.parse_ranges(range_)
        sw.check_paths(s, {**{p: "--grid" for p in g}, **{p: "--range" for p in r}})
        sw.check_values(s, g, r)
        variants = sw.plan(s, g, r, random, seeds, s.data["seed"])
        if device == "gpu" and executor == "local":  # no GPU here: refused before the folder
            local_gpus()
        sw.check_shared(s, data, target, [*g, *r])  # what would fail every variant alike
        folder = sw.new_sweep(s, variants, out_dir or Path("runs") / f"{s.data['name']}-sweep",
                              data, target, threads, device)
    try:
        rows = sw.run_sweep(folder, workers=workers, executor=executor, scheduler=scheduler,
                            echo=lambda m: err.print(m, markup=False))
    except InputError:
        if resume is None:  # refused before any variant ran (no scheduler, no GPU workers)
            sw.remove_unstarted(folder)
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the finished variants are kept in {folder}: finish the "
                          f"others with {shlex.join(['bpcli', 'sweep', '--resume', str(folder)])}"
                          ) from None
    failed = [r for r in rows if r["status"] not in ("ok", *sw.AGAIN)]
    stopped = [r["run"] for r in rows if r["status"] == "interrupted"]
    died = [r for r in rows if r["status"] == "died"]
    ok = len(rows) - len(failed) - len(stopped) - len(died)
    out.print(f"sweep folder: {folder}  ({ok} ok, {len(failed)} failed"
              + (f", {len(died)} died" if died else "")
              + (f", {len(stopped)} interrupted)" if stopped else ")"), markup=False)
    out.print(f"table: {folder / 'sweep.csv'}", markup=False)
    out.print(f"plot: {folder / 'sweep.png'}", markup=False)
    again = shlex.join(["bpcli", "sweep", "--resume", str(folder)])
    if died:  # not the variant's outcome: no result, as a diverged run has none (exit 1)
        raise CheckFailed(f"the worker process of {len(died)} variant(s) died ("
                          + "; ".join(f"{r['run']}: {r['message'].removeprefix('worker died: ')}"
                                      for r in died)
                          + (f"; {len(stopped)} more interrupted: {', '.join(stopped)}"
                             if stopped else "") + f"): run them again with {again}")
    if stopped:  # a worker stopped alone (its own SIGINT or SIGTERM): the sweep is not done
        raise Interrupted(f"{len(stopped)} variant(s) interrupted ({', '.join(stopped)}): run "
                          f"them with {again}")
