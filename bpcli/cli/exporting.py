"""``bpcli export``: a trained run's network as an ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..export import DEFAULT_OPSET, FORMATS
from ..core.fields import one_of, positive_int
from ..train.run_folder import RunFolder
from . import command, err, out
from .options import option


@command
def export(run: Path = typer.Argument(..., help="run folder written by bpcli train"),
           fmt: str = option("onnx", "--format", check=one_of(*FORMATS),
                             help="file format: " + ", ".join(FORMATS)),
           to: Optional[Path] = typer.Option(None, "--out", help="the .onnx file to write "
                                             "[default: RUN's folder name.onnx, here]"),
           checkpoint: str = option("final", check=one_of(*RunFolder.CHECKPOINTS),
                                    help="final (model.npz) or best (best.npz)"),
           opset: int = option(DEFAULT_OPSET, check=positive_int,
                               help="ONNX operator set version"),
           force: bool = typer.Option(False, "--force", help="replace the .onnx file if it "
                                                             "exists [default: refuse]")):
    """The run's network as an ONNX model: input X, outputs the network's output and, for
    classification, the class probabilities; provenance (and, for a table or pictures, what X
    holds) in its metadata. An existing file is never replaced without --force."""
    from ..export import export_run

    done = export_run(run, to, checkpoint=checkpoint, opset=opset, fmt=fmt, force=force)
    shapes = lambda vs: ", ".join(f"{n} [{', '.join(map(str, s))}]" for n, s in vs)  # noqa: E731
    out.print(str(done.path))
    err.print(f"opset {done.opset}; input {shapes(done.inputs)}; output {shapes(done.outputs)}")
    for note in done.notes:
        err.print(f"note: {note}")
