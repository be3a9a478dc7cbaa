"""``bpcli export``: a trained run's network as an ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..export import DEFAULT_OPSET
from . import command, err, out


@command
def export(run: Path = typer.Argument(..., help="run folder written by bpcli train"),
           fmt: str = typer.Option("onnx", "--format", help="file format: onnx"),
           to: Optional[Path] = typer.Option(None, "--out", help="the .onnx file to write "
                                             "[default: RUN's folder name.onnx, here]"),
           checkpoint: str = typer.Option("final", help="final or best"),
           opset: int = typer.Option(DEFAULT_OPSET, help="ONNX operator set version")):
    """The run's network as an ONNX model: input X, outputs the network's output and, for
    classification, the class probabilities; provenance in its metadata."""
    from ..export import export_run

    done = export_run(run, to, checkpoint=checkpoint, opset=opset, fmt=fmt)
    shapes = lambda vs: ", ".join(f"{n} [{', '.join(map(str, s))}]" for n, s in vs)  # noqa: E731
    out.print(str(done.path))
    err.print(f"opset {done.opset}; input {shapes(done.inputs)}; output {shapes(done.outputs)}")
