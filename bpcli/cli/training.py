"""``bpcli train``: a spec and its data in, a run folder out (or a stopped run continued)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import InputError
from ..core.fields import one_of, positive_int
from . import command, command_line, err
from .options import device_option, folder, option, spec_check, threads_option
from .render import report, with_progress


@command
def train(spec: Optional[Path] = typer.Argument(None, help="YAML spec file (optional with --resume)",
                                               show_default=False),
          data: Optional[Path] = typer.Option(None, help=".npz (X, y); .csv (also .gz, .bz2, .zip, "
                                                         ".xz); a folder of X.npy and y.npy (read "
                                                         "memory-mapped) or of one subfolder of "
                                                         "pictures per class; wins over the spec's "
                                                         "data entry"),
          out_dir: Optional[Path] = typer.Option(None, "--out", help="run folder [default: "
                                                                      "runs/<name>]"),
          epochs: Optional[int] = option(None, check=spec_check("training.epochs"),
                                         help="override training.epochs"),
          set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                         help="change the spec: optimizer.lr=0.01, "
                                              "layers[0].conv1d.kernel=5 (repeatable; YAML values)"),
          seed: Optional[int] = option(None, check=spec_check("seed"), help="override seed"),
          val_data: Optional[Path] = typer.Option(None, "--val-data", help="validation data from "
                                                  "its own file or folder, read as the training "
                                                  "data (no split)"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file: a name, "
                                                           "or a position (-1: the last)"),
          targets: Optional[Path] = option(None, "--targets", check=folder,
                                           help="a folder of target pictures, one per picture of "
                                                "--data of the same name: masks (a class index "
                                                "per pixel) for a classifier loss, pictures for a "
                                                "regression loss; wins over data.targets"),
          val_targets: Optional[Path] = option(None, "--val-targets", check=folder,
                                               help="the target pictures of --val-data's "
                                                    "pictures; wins over data.val_targets"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
          preflight: bool = typer.Option(False, "--preflight", help="first run a fast gradcheck on "
                                                                    "a small batch; refuse to train "
                                                                    "if it fails"),
          resume: Optional[Path] = typer.Option(None, help="continue this run folder from its "
                                                           "last checkpoint"),
          force: bool = typer.Option(False, "--force", help="with --resume: continue even if SPEC "
                                                            "differs from the run's spec"),
          checkpoint_every: int = option(1, check=positive_int,
                                         help="epochs between last.npz checkpoints"),
          on_nan: str = option("stop", check=one_of("stop", "skip"),
                               help="a non-finite loss or gradient: stop (name the node, keep "
                                    "the last finite checkpoint) or skip the batch"),
          threads: Optional[int] = threads_option(),
          device: Optional[str] = device_option("the spec's training.device")):
    """Train SPEC and write a run folder: spec.yaml, metrics.csv, loss.png, model.npz, summary.json."""
    from ..explain.gradcheck_report import summary_line
    from ..spec.validate import apply_sets, load, set_value
    from ..train import run
    from ..train.run_folder import RunFolder

    options = {"checkpoint_every": checkpoint_every, "on_nan": on_nan, "threads": threads,
               "device": device}
    if resume is not None:
        ignored = [name for name, given in (("--set", set_), ("--seed", seed is not None),
                                            ("--data", data is not None),
                                            ("--val-data", val_data is not None),
                                            ("--targets", targets is not None),
                                            ("--val-targets", val_targets is not None),
                                            ("--out", out_dir is not None),
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
            on_change=lambda text: err.print(text, markup=False),
            on_note=lambda text: err.print(f"bpcli: note: {text}", markup=False), **options), quiet)
        report(summary)
        return
    if spec is None:
        raise InputError("give a spec file to train (or --resume RUN to continue a run)")
    s = apply_sets(load(spec), set_, data=data)  # --data replaces a builtin set first
    if epochs is not None:
        s = set_value(s, "training.epochs", epochs)
    if seed is not None:
        s = set_value(s, "seed", seed)
    p = run.prepare(s, data, target, val_data, device, targets, val_targets)
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
