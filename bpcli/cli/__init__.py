"""The ``bpcli`` command: parse, call the library, print. Exit codes: 0 ok, 1 a check failed, 2 bad input."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import CheckFailed, InputError, Interrupted

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # help texts show [default: ...] literally
                  help="Train and check neural networks written as YAML specs, with bpcli's own "
                       "NumPy backpropagation.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SPEC = typer.Argument(..., help="YAML spec file", show_default=False)


def command(fn):
    """Register a command; bad input of any kind becomes one paragraph on stderr and exit code 2.

    This is the one place where errors turn into exit codes: InputError -> 2,
    CheckFailed -> 1, Ctrl-C -> 130; usage errors are Typer's (also 2).
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            print(f"bpcli: error: {e}", file=sys.stderr)
            raise typer.Exit(2) from None
        except CheckFailed as e:
            print(f"bpcli: {e}", file=sys.stderr)
            raise typer.Exit(1) from None
        except Interrupted as e:
            print(f"bpcli: {e}", file=sys.stderr)
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            print("bpcli: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except MemoryError:
            print("bpcli: error: out of memory: the spec's layers or the data are too large for "
                  "this machine (see bpcli inspect SPEC for sizes)", file=sys.stderr)
            raise typer.Exit(2) from None
    return app.command(fn.__name__.rstrip("_"))(wrapper)


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
    from ..train import run
    from ..explain.gradcheck_report import summary_line
    from ..spec.validate import apply_sets, load, set_value
    from ..train.loop import command_line

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
        err.print(f"resuming {resume}")
        summary = _with_progress(lambda cb: run.resume(
            resume, s, force=force, epochs=epochs, progress=cb, command=command_line(_argv),
            **options), load(resume / "spec.yaml") if (resume / "spec.yaml").exists() else s, quiet)
        _report(summary)
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
    summary = _with_progress(lambda cb: run.execute(
        p, out_dir or Path("runs") / s.data["name"], progress=cb, command=command_line(_argv),
        **options), s, quiet)
    _report(summary)


def _report(summary):
    run_dir = Path(summary["run_dir"])
    final = summary["final"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if v is not None)
    out.print(f"{summary['stop_reason']}; {shown}")
    out.print(f"run folder: {run_dir}")
    out.print(f"loss curve: {run_dir / 'loss.png'}")


def _with_progress(fn, s, quiet):
    """Run ``fn(callback)`` under a progress bar on stderr: epoch, step, losses, speed, ETA."""
    if quiet or not err.is_terminal:
        return fn(None)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from ..train.optim import OPTIMIZERS

    tcfg = s.data["training"]
    per_step = OPTIMIZERS[s.data["optimizer"]["name"]].full_batch
    total = min(tcfg["epochs"], tcfg["max_iters"] or tcfg["epochs"]) if per_step else tcfg["epochs"]
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("iteration" if per_step else "epoch", total=total, status="")

        def cb(row):
            status = f"step {row['step']}  loss {row['train_loss']:.4g}"
            if row.get("val_loss") is not None:
                status += f"  val {row['val_loss']:.4g}"
            if row.get("val_accuracy") is not None:
                status += f"  val acc {row['val_accuracy']:.3f}"
            status += f"  {row['step'] / max(row['elapsed_s'], 1e-9):.0f} steps/s"
            bar.update(task, completed=row["epoch"], status=status)
        return fn(cb)


def _load_run(run: Path):
    from ..nn.model import Model
    from ..spec.validate import load

    if not (run / "spec.yaml").exists() or not (run / "model.npz").exists():
        raise InputError("not a run folder: it needs spec.yaml and model.npz (written by bpcli "
                         "train)", file=str(run))
    model = Model(load(run / "spec.yaml"))
    model.load_params(run / "model.npz")
    return model


@command
def eval_(run: Path = typer.Argument(..., help="run folder written by bpcli train"),
          data: Optional[Path] = typer.Option(None, help=".npz or .csv file [default: the "
                                                         "validation split of the run's data]"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Loss (and accuracy, for classification losses) of a trained run on data."""
    from ..train import data as data_mod
    from ..train.run import fit

    model = _load_run(run)
    if data is not None:
        dataset = data_mod.from_spec(model.spec, str(data), target)
    else:
        dataset = data_mod.from_spec(model.spec, None, target)
        cfg = model.spec.data["data"]
        _, val = data_mod.split(dataset, cfg["val_split"], model.spec.data["seed"])
        if val is not None:
            dataset = data_mod.Dataset(*val, dataset.source + " (validation split)")
    X, y = fit(model, dataset)
    result = {"loss": model._loss(X, y), "n": int(X.shape[0])}
    if model.loss_def.accuracy is not None:
        result["accuracy"] = model._accuracy(X, y)
    if as_json:
        print(json.dumps(result))
        return
    line = f"{dataset.source}: loss {result['loss']:.6g} on {result['n']} samples"
    if "accuracy" in result:
        line += f", accuracy {result['accuracy']:.4f}"
    out.print(line)


@command
def gradcheck(spec: Path = SPEC,
              data: Optional[Path] = typer.Option(None, help="check on the first samples of this "
                                                             "file [default: a random batch]"),
              target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
              set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                             help="change the spec: optimizer.lr=0.01, "
                                                  "layers[0].conv1d.kernel=5 (repeatable)"),
              samples: int = typer.Option(4, min=1, help="batch size of the check"),
              seed: int = typer.Option(0, help="seed of the random batch and directions"),
              eps: Optional[float] = typer.Option(None, min=0.0, help="finite-difference step h "
                                                  "[default: eps^(1/3)·max(1,|w|)]"),
              mode: str = typer.Option("auto", help="exact (every entry), fast (random directions) "
                                                    "or auto (exact up to 2000 parameters)"),
              directions: int = typer.Option(8, min=1, help="random directions checked"),
              sweep: bool = typer.Option(False, "--sweep", help="also tabulate the error against "
                                                               "h over 12 decades, with a PNG"),
              sweep_out: Path = typer.Option(Path("gradcheck_sweep.png"), help="PNG of --sweep"),
              as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Check SPEC's gradients in float64: reverse mode, forward mode and central differences, layer by layer."""
    import numpy as np

    from ..train import data as data_mod
    from ..explain.gradcheck import gradcheck as run_check
    from ..nn.model import Model
    from ..train.run import fit
    from ..explain.gradcheck_report import gradcheck_tables, summary_line, sweep_png, sweep_table
    from ..spec.validate import apply_sets, load

    if mode not in ("auto", "exact", "fast"):
        raise InputError(f"--mode must be auto, exact or fast, got {mode!r}", path="--mode")
    model = Model(apply_sets(load(spec), set_), dtype=np.float64)
    X = y = None
    if data is not None:
        dataset = data_mod.from_spec(model.spec, str(data), target)
        fit(model, dataset)  # reject data that does not fit before checking
        X, y = dataset.X, dataset.y
    report = run_check(model, X, y, n=samples, seed=seed, eps=eps, mode=mode,
                       directions=directions, with_sweep=sweep)
    if sweep:
        report["sweep"]["png"] = str(sweep_png(report["sweep"], sweep_out))
    if as_json:
        print(json.dumps(report))
    else:
        for table in gradcheck_tables(report, f"gradcheck {spec}"):
            out.print(table)
        if sweep:
            out.print(sweep_table(report["sweep"]))
            out.print(f"sweep plot: {report['sweep']['png']}")
        out.print(summary_line(report))
    if not report["passed"]:
        raise typer.Exit(1)


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

    path = plot_runs(expand(runs), out_file, logy=logy, smoothing=smooth)
    out.print(f"plot: {path}")


@command
def diff(run_a: Path = typer.Argument(..., help="a run folder"),
         run_b: Path = typer.Argument(..., help="another run folder"),
         out_file: Path = typer.Option(Path("diff.png"), "--out", help="PNG of both runs' curves")):
    """What differs between two runs: their resolved specs, final metrics, and curves overlaid."""
    from ..explain.plots import plot_runs
    from ..train.runs import compare

    report = compare(run_a, run_b)
    table = Table(title=f"{run_a} vs {run_b}")
    for col in ("key", str(run_a), str(run_b)):
        table.add_column(col, overflow="fold")
    for key, a, b in report["spec"]:
        table.add_row(key, _cell(a), _cell(b))
    for key, a, b in report["final"]:
        table.add_row(f"final {key}", _cell(a), _cell(b))
    out.print(table)
    if not report["spec"]:
        out.print("the resolved specs are identical")
    path = plot_runs([run_a, run_b], out_file, title=f"{run_a.name} vs {run_b.name}")
    out.print(f"curves: {path}")


@command
def bench(spec: Path = SPEC,
          batch: int = typer.Option(64, min=1, help="samples per step"),
          steps: int = typer.Option(20, min=1, help="steps to time"),
          dtype: Optional[str] = typer.Option(None, help="float32 or float64 [default: the spec's]"),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Time forward and backward of each layer of SPEC on a random batch."""
    from ..nn.model import Model
    from ..explain.timing import profile
    from ..spec.validate import load

    if dtype not in (None, "float32", "float64"):
        raise InputError(f"--dtype must be float32 or float64, got {dtype!r}", path="--dtype")
    report = profile(Model(load(spec), dtype=dtype), batch, steps)
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"bench {spec}: batch {batch}, {report['dtype']}, {steps} steps")
    table.add_column("layer", no_wrap=True)
    for col in ("ops", "forward ms", "backward ms", "share"):
        table.add_column(col, justify="right")
    for r in report["layers"]:
        table.add_row(r["layer"], str(r["ops"]), f"{r['forward_ms']:.3f}", f"{r['backward_ms']:.3f}",
                      f"{100 * r['share']:.1f}%")
    out.print(table)
    out.print(f"one step (forward + backward): {report['step_ms']:.3f} ms, "
              f"{report['samples_per_s']:.0f} samples/s")


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
        table.add_row(*[_cell(r.get(c)) for c in cols])
    out.print(table)


def _cell(v) -> str:
    if v is None:
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@command
def inspect_(spec: Optional[Path] = typer.Argument(None, help="YAML spec file (or give --run)",
                                                   show_default=False),
             run: Optional[Path] = typer.Option(None, help="a run folder: its spec and trained "
                                                           "weights"),
             toeplitz: Optional[int] = typer.Option(None, metavar="I", help="draw layer I's "
                                                    "(conv1d/conv2d) Toeplitz matrix T(w)"),
             kernels: bool = typer.Option(False, "--kernels", help="draw the kernels of every "
                                                                  "conv layer"),
             out_file: Optional[Path] = typer.Option(None, "--out", help="PNG file (default: "
                                                     "<name>_toeplitz<I>.png or <name>_kernels.png)"),
             as_json: bool = typer.Option(False, "--json", help="print the table as one JSON "
                                                                "object")):
    """Layer table (output shapes, parameters, FLOPs per sample); Toeplitz matrix or kernel pictures."""
    from ..explain.layer_table import draw_kernels, draw_toeplitz, show_fields, summary

    if (spec is None) == (run is None):
        raise InputError("give a spec file or --run RUN (a run folder), not both" if spec else
                         "give a spec file, or --run RUN for a trained run")
    if toeplitz is not None and kernels:
        raise InputError("draw one picture at a time: --toeplitz I or --kernels", path="--kernels")
    if run is not None:
        model, source = _load_run(run), f"trained, {run}"
    else:
        from .. import build

        model, source = build(spec), "initial weights"
    name = model.spec.data["name"]
    picture = None
    if toeplitz is not None:
        picture = draw_toeplitz(model, toeplitz, out_file or Path(f"{name}_toeplitz{toeplitz}.png"),
                                source)
    elif kernels:
        picture = draw_kernels(model, out_file or Path(f"{name}_kernels.png"), source)
    report = summary(model)
    if as_json:
        print(json.dumps(dict(report, picture=None if picture is None else str(picture))))
        return
    table = Table(title=f"{name}: input {'×'.join(map(str, report['input']))}, {model.dtype}, "
                        f"{source}; FLOPs per sample", show_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    table.add_column("fields")  # the one column that wraps when the terminal is narrow
    table.add_column("output", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("FLOPs", justify="right", no_wrap=True)
    for r in report["layers"]:
        table.add_row(str(r["index"]), r["layer"], show_fields(r["fields"]),
                      "×".join(map(str, r["output_shape"])), f"{r['params']:,}", f"{r['flops']:,}")
    table.add_section()
    table.add_row("", "total", "", "", f"{report['total']['params']:,}",
                  f"{report['total']['flops']:,}")
    out.print(table)
    if picture is not None:
        out.print(f"picture: {picture}")


@command
def validate(spec: Path = SPEC,
             set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                            help="validate SPEC with this change (repeatable)"),
             as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Check SPEC: every problem at once, each with file:line:column and key path, then shapes."""
    from ..spec.authoring import summary_line, validate_spec

    try:
        summary = validate_spec(spec, set_)
    except InputError as e:
        if as_json:
            print(json.dumps({"ok": False, "errors": [
                {"file": x.file, "line": x.line, "column": x.column, "path": x.path,
                 "message": x.message} for x in e.errors]}))
            raise typer.Exit(2) from None
        _every_error(e)
    if as_json:
        print(json.dumps({"ok": True, **summary}))
    else:
        out.print(summary_line(summary), markup=False)


def _every_error(e: InputError):
    """Each problem on its own line (``bpcli validate`` and ``show`` find them all), exit code 2."""
    if len(e.errors) == 1:
        raise e
    for one in e.errors:
        print(f"bpcli: error: {one}", file=sys.stderr)
    print(f"bpcli: {len(e.errors)} errors in {e.errors[0].file or 'the spec'}", file=sys.stderr)
    raise typer.Exit(2)


@command
def show(spec: Path = SPEC,
         set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                        help="show SPEC with this change (repeatable)"),
         as_json: bool = typer.Option(False, "--json", help="print JSON instead of YAML")):
    """Print SPEC resolved, as bpcli trains it: every default filled in (YAML, or --json)."""
    from ..spec.authoring import show_text
    from ..spec.validate import check

    try:
        s = check(spec, sets=set_)
    except InputError as e:
        _every_error(e)
    sys.stdout.write(show_text(s, as_json))


@command
def schema(out_file: Optional[Path] = typer.Option(None, "--out", help="write it to this file "
                                                   "[default: print it]")):
    """A JSON Schema of specs, for editors that complete and check YAML while you type."""
    from ..spec.json_schema import dumps

    text = dumps()
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", file=str(out_file)) from None
    out.print(f"JSON Schema: {out_file}", markup=False)


@command
def init(template: str = typer.Option("lecture", help="lecture, cnn1d, cnn2d or mlp"),
         out_file: Optional[Path] = typer.Option(None, "--out", help="spec file to write "
                                                 "[default: <template>.yaml]; never overwritten")):
    """Write a commented starter spec (it validates as written) to edit and train."""
    from ..spec.authoring import write_template

    path = write_template(template, out_file or Path(f"{template}.yaml"))
    out.print(f"wrote {path} (template {template}); next: bpcli validate {path}, then "
              f"bpcli train {path}", markup=False)


def _point(text: str) -> dict[str, float]:
    """``x1=2,x2=5`` -> {"x1": 2.0, "x2": 5.0}."""
    point = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        try:
            if not eq or not name.strip():
                raise ValueError
            point[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"{part!r} is not NAME=NUMBER (e.g. --at x1=2,x2=5)", path="--at") from None
    return point


@command
def trace(expression: str = typer.Argument(..., help='e.g. "ln(x1) + x1*x2 - sin(x2)"'),
          at: str = typer.Option(..., help="the point, e.g. x1=2,x2=5"),
          wrt: Optional[str] = typer.Option(None, help="seed the tangent trace for this variable "
                                                       "[default: the first]"),
          digits: int = typer.Option(3, min=0, max=15, help="decimals shown"),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """The lecture's tables: forward primal trace, forward tangent trace, reverse adjoint trace."""
    from ..explain.traces import render, trace as run_trace

    t = run_trace(expression, _point(at), wrt, digits)
    if as_json:
        print(json.dumps(t, ensure_ascii=False))
    else:
        out.print(render(t, digits), markup=False)


@command
def graph(target: str = typer.Argument(..., help="a spec file, or an expression such as "
                                                 '"ln(x1) + x1*x2 - sin(x2)"'),
          out_file: Optional[Path] = typer.Option(None, "--out", help="PNG file [default: "
                                                                      "<name>_graph.png]"),
          dot: bool = typer.Option(False, "--dot", help="also print the graphs as Graphviz text")):
    """Draw the forward graph and the backward graph reverse mode walks."""
    from ..explain.graphs import backward_graph, forward_graph, to_dot, to_png

    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from .. import build

        model = build(Path(target))
        prog, output, wrt, name = model.program, "loss", list(model.params), model.spec.data["name"]
    else:
        from ..engine.expr import parse

        prog, output, name = parse(target), "y", "expression"
        wrt = list(prog.inputs)
    graphs = [forward_graph(prog, output), backward_graph(prog, output, wrt)]
    path = to_png(graphs, out_file or Path(f"{name}_graph.png"))
    if dot:
        print(to_dot(graphs), end="")
    out.print(f"graphs: {path} ({len(graphs[0].nodes)} forward nodes, "
              f"{len(graphs[1].nodes)} backward nodes)")


_argv = None  # the arguments main() was given, for summary.json's command


def main(argv=None) -> int:
    """Run the CLI on ``argv`` (default: the command line) and return its exit code."""
    global _argv
    _argv = None if argv is None else list(argv)
    try:
        app(args=argv, prog_name="bpcli")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def run() -> None:
    sys.exit(main())
