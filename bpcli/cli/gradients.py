"""Commands that explain a network and its gradients: gradcheck, trace, graph, inspect, bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from rich.table import Table

from ..errors import InputError
from ..core.fields import nonneg_int, one_of, positive_float, positive_int
from . import SPEC, command, err, out
from .options import device_option, int_between, option, spec_check, threads_option


@command
def gradcheck(spec: Path = SPEC,
              data: Optional[Path] = typer.Option(None, help="check on the first samples of this "
                                                             "file [default: a random batch]"),
              target: Optional[str] = typer.Option(None, help="label column of a .csv file"),
              set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                             help="change the spec: optimizer.lr=0.01, "
                                                  "layers[0].conv1d.kernel=5 (repeatable)"),
              samples: int = option(4, check=positive_int, help="batch size of the check"),
              seed: int = option(0, check=nonneg_int, help="seed of the random batch and "
                                                           "directions"),
              eps: Optional[float] = option(None, check=positive_float, help="finite-difference "
                                            "step h [default: eps^(1/3)·max(1,|w|)]"),
              mode: str = option("auto", check=one_of("auto", "exact", "fast"),
                                 help="exact (every entry), fast (random directions) or auto "
                                      "(exact up to 2000 parameters)"),
              directions: int = option(8, check=positive_int, help="random directions checked"),
              sweep: bool = typer.Option(False, "--sweep", help="also tabulate the error against "
                                                               "h over 12 decades, with a PNG"),
              sweep_out: Path = typer.Option(Path("gradcheck_sweep.png"), help="PNG of --sweep"),
              as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
              threads: Optional[int] = threads_option(),
              device: Optional[str] = device_option()):
    """Check SPEC's gradients in float64: reverse mode, forward mode and central differences, layer by layer."""
    import numpy as np

    from ..explain.gradcheck import gradcheck as run_check
    from ..explain.gradcheck_report import gradcheck_tables, summary_line, sweep_png, sweep_table
    from ..nn.model import Model
    from ..spec.validate import apply_sets, load, with_data
    from ..train import data as data_mod
    from ..train.data_fit import check_data
    from ..train.run import fit

    model = Model(apply_sets(load(spec), set_, data=data), dtype=np.float64)
    X = y = None
    if data is not None:  # the first samples, prepared and checked as training sees them
        dataset = data_mod.from_spec(with_data(model.spec, data, target))
        check_data(model.spec, model, dataset)
        X, y = fit(model, dataset)
    report = run_check(model, X, y, n=samples, seed=seed, eps=eps, mode=mode,
                       directions=directions, with_sweep=sweep, device=device)
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
def bench(spec: Path = SPEC,
          batch: int = option(64, check=positive_int, help="samples per step"),
          steps: int = option(20, check=positive_int, help="steps to time"),
          dtype: Optional[str] = option(None, check=spec_check("dtype"),
                                        help="float32 or float64 [default: the spec's]"),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
          threads: Optional[int] = threads_option(),
          device: Optional[str] = device_option()):
    """Time forward and backward of each layer of SPEC on a random batch."""
    from ..nn.model import Model
    from ..explain.timing import profile
    from ..spec.validate import load

    from ..engine.threads import resolve

    model = Model(load(spec), dtype=dtype).to(device)
    report = profile(model, batch, steps) | {"threads": resolve(threads),
                                              "device": model.device}
    if as_json:  # a layer is an Origin: written as it reads, conv1d's "layers[0] (conv1d)"
        print(json.dumps(report))
        return
    thr = report["threads"]
    table = Table(title=f"bench {spec}: batch {batch}, {report['dtype']}, {steps} steps, "
                        f"{report['device']}, {thr} thread{'s' * (thr > 1)}")
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
def inspect_(spec: Optional[Path] = typer.Argument(None, help="YAML spec file (or give --run)",
                                                   show_default=False),
             run: Optional[Path] = typer.Option(None, help="a run folder: its spec and trained "
                                                           "weights"),
             toeplitz: Optional[int] = option(None, metavar="I", check=nonneg_int, help="draw layer I's "
                                                    "matrix: a conv layer's Toeplitz matrix T(w), "
                                                    "a dense layer's weight"),
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
        from ..train.run_folder import RunFolder

        model, source = RunFolder.open(run).load_model(), f"trained, {run}"
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
    # a graph's layers show their wiring as the spec writes it (name=, from=, with=), first in
    # the fields: branches and merges can be read down the table
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    table.add_column("fields")  # the one column that wraps when the terminal is narrow
    table.add_column("output", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("FLOPs", justify="right", no_wrap=True)
    for r in report["layers"]:
        table.add_row(str(r["index"]), r["layer"], escape(show_fields({**r["wiring"], **r["fields"]})),
                      "×".join(map(str, r["output_shape"])), f"{r['params']:,}", f"{r['flops']:,}")
    table.add_section()
    table.add_row("", "total", "", "", f"{report['total']['params']:,}",
                  f"{report['total']['flops']:,}")
    out.print(table)
    if picture is not None:
        out.print(f"picture: {picture}")


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
          digits: int = option(3, check=int_between(0, 15), help="decimals shown"),
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

    if target.endswith((".yaml", ".yml")) or _is_file(target):
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
        print(to_dot(graphs).rstrip("\n"))
    # with --dot, stdout is the Graphviz text alone: the note goes to stderr
    forward, backward = (len(g.nodes) for g in graphs)
    (err if dot else out).print(f"graphs: {path} ({_count(forward, 'forward node')}, "
                                f"{_count(backward, 'backward node')})", markup=False)


def _is_file(target: str) -> bool:
    """Whether ``target`` names a file; a text that cannot be a file name (too long for one, or
    refused by the system) is not one, and graph reads it as an expression."""
    try:
        return Path(target).is_file()
    except (OSError, ValueError):
        return False


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")
