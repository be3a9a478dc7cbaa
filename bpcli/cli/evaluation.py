"""``bpcli eval`` (a trained run scored on data) and ``bpcli predict`` (its answers, one row per
sample)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..core.fields import one_of, positive_int
from ..errors import InputError
from ..train.run_folder import RunFolder
from . import command, err, out
from .options import device_option, folder, option, threads_option
from .render import cell, confusion_table

SET = typer.Option([], "--set", metavar="data.KEY=VALUE",
                   help="read the file with this data option changed (repeatable), e.g. "
                        "data.skip_rows=0 [default: the options the run was trained with]")
BATCH_SIZE = option(None, "--batch-size", check=positive_int,
                    help="samples per forward pass [default: the run's training batch size, "
                         "fewer where one batch's activations would pass 256 MB]; any size "
                         "gives the same answers, a smaller one needs less memory")
CHECKPOINT = option("final", check=one_of(*RunFolder.CHECKPOINTS),
                    help="final (model.npz, the weights training ended with) or best (best.npz, "
                         "the best validation metric)")


@command
def eval_(run: Path = typer.Argument(..., help="run folder written by bpcli train"),
          data: Optional[Path] = typer.Option(None, help="file or folder to score (.npz, .csv, "
                                                         "X.npy + y.npy, class folders of "
                                                         "pictures) [default: the validation "
                                                         "split of the run's data]"),
          target: Optional[str] = typer.Option(None, help="label column of a .csv file [default: "
                                                          "the run's]"),
          targets: Optional[Path] = option(None, "--targets", check=folder,
                                           help="the target pictures of --data's pictures, one "
                                                "of the same name each (masks, or pictures)"),
          checkpoint: str = CHECKPOINT,
          set_: List[str] = SET,
          as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
          plot: Optional[Path] = typer.Option(None, help="draw FILE.png: the confusion matrix "
                                                         "(counts and row-normalised), "
                                                         "predicted against true values, or for "
                                                         "answers that are pictures a grid of "
                                                         "input, target, prediction and error"),
          batch_size: Optional[int] = BATCH_SIZE,
          device: Optional[str] = device_option(),
          threads: Optional[int] = threads_option()):
    """Loss and scores of a trained run: accuracy, confusion matrix, per-class precision, recall
    and F1, macro F1 and ROC AUC for classifiers (past 2 classes one vs rest, macro); MAE, RMSE
    and R² for regression; pixel accuracy, IoU and Dice per class and their means for
    segmentation; PSNR, SSIM, MAE and RMSE for restoration. Without --data, the run's validation
    split (an error when it has none)."""
    from .. import load_run
    from ..train import evaluate as ev

    model = load_run(run, checkpoint).to(device)
    if plot is not None:
        ev.check_plot(model, plot)
    if targets is not None and data is None:
        raise InputError("--targets goes with --data: the folder of pictures whose targets they "
                         "are (without --data, eval scores the run's own validation data, whose "
                         "targets the run knows)", path="--targets")
    dataset = ev.scored_data(model, data, target, set_, targets=targets)
    result = ev.evaluate(model, dataset, chunk=batch_size)
    scores = {**result.scores, "checkpoint": checkpoint}
    if plot is not None:
        ev.plot(model, result, plot, title=f"{model.spec.data['name']} ({checkpoint}) on "
                                           f"{dataset.source}", inputs=dataset.X)
        err.print(f"plot: {plot}", markup=False)
    if as_json:
        print(json.dumps(scores))
        return
    _show(scores, RunFolder(run).weights_note(checkpoint))


def _show(s: dict, weights: str) -> None:
    """eval's scores for a person: a line (``weights`` says which were read), then the
    per-class and confusion tables."""
    from rich.table import Column, Table

    line = f"{s['data']}: loss {s['loss']:.6g} on {s['n']} samples ({weights})"
    shown = lambda v, fmt: "—" if v is None else format(v, fmt)  # noqa: E731  (null: undefined)
    if "pixel_accuracy" in s:
        line += (f", pixel accuracy {s['pixel_accuracy']:.4f}, mean IoU "
                 f"{shown(s['mean_iou'], '.4f')}, mean Dice {shown(s['mean_dice'], '.4f')}")
    if "psnr" in s:
        line += (f", PSNR {shown(s['psnr'], '.2f')} dB (data range {s['data_range']:g}), SSIM "
                 f"{shown(s['ssim'], '.4f')}, MAE {s['mae']:.4g}, RMSE {s['rmse']:.4g}")
    if "accuracy" in s:
        line += f", accuracy {s['accuracy']:.4f}, macro F1 {s['macro_f1']:.4f}"
    if s.get("roc_auc") is not None:
        line += f", ROC AUC {s['roc_auc']:.4f}"
    if "r2" in s:
        line += f", MAE {s['mae']:.4g}, RMSE {s['rmse']:.4g}, R² {s['r2']:.4f}"
    out.print(line, markup=False)
    if "classes" not in s:
        return
    if "pixel_accuracy" in s:
        keys, heads = ("iou", "dice", "support"), ["IoU", "Dice", "support (pixels)"]
    else:
        keys = ("precision", "recall", "f1", "support")
        heads = ["precision", "recall", "F1", "support"]
    if "roc_auc" in next(iter(s["per_class"].values())):  # more than 2 softmax classes
        keys, heads = keys + ("roc_auc",), heads + ["ROC AUC (one vs rest)"]
    # the names whole: a narrow terminal wraps the headers instead
    per_class = Table(Column("class", no_wrap=True, min_width=max(map(len, s["per_class"]))),
                      *heads, title="per class")
    for name, row in s["per_class"].items():
        per_class.add_row(name, *(cell(row[k]) if row[k] is not None else "—" for k in keys))
    out.print(per_class)
    present = [name for name, row in s["per_class"].items() if row["support"]]
    absent = [name for name, row in s["per_class"].items()
              if "roc_auc" in row and not row["support"]]
    if "roc_auc" in s and s["roc_auc"] is None and len(present) == 1:
        out.print(f"ROC AUC: undefined: the labels hold one class only ({present[0]}), and one "
                  f"class alone cannot be ranked against another", markup=False)
    elif absent and s.get("roc_auc") is not None:
        out.print(f"ROC AUC: the macro one-vs-rest mean over the classes present; left out (not "
                  f"in the labels): {', '.join(absent)}", markup=False)
    out.print(confusion_table(s["classes"], s["confusion_matrix"],
                              "confusion matrix (rows: true class)" if "pixel_accuracy" not in s
                              else "confusion matrix over pixels (rows: true class)", out.width))


@command
def predict(run: Path = typer.Argument(..., help="run folder written by bpcli train"),
            data: Path = typer.Option(..., help="file or folder of inputs (.npz, .csv, X.npy, "
                                                "a folder of pictures or one picture); labels "
                                                "in it are ignored"),
            out_file: Optional[Path] = typer.Option(None, "--out", help="FILE.csv or FILE.json "
                                                    "(one row per sample), FILE.npz (the arrays), "
                                                    "or DIR (one PNG per input, for answers that "
                                                    "are pictures) [default: CSV on stdout]"),
            checkpoint: str = CHECKPOINT,
            set_: List[str] = SET,
            as_json: bool = typer.Option(False, "--json", help="a JSON list of row objects "
                                                               "instead of CSV"),
            batch_size: Optional[int] = BATCH_SIZE,
            device: Optional[str] = device_option(),
            threads: Optional[int] = threads_option()):
    """The trained model's answer for every input sample, in input order: the predicted class
    and class probabilities (p_<class>; the positive class's for logistic), or the regression
    outputs; for answers that are pictures, masks (palette PNGs, index = class) or restored
    pictures (in the inputs' bit depth), one per input, in --out DIR."""
    from .. import load_run
    from ..train import evaluate as ev
    from ..train.data import read

    model = load_run(run, checkpoint).to(device)
    fmt = ev.out_format(model, out_file, as_json)
    dataset = read(ev.reading_spec(model.spec, set_), data, labels="none")
    if fmt == "pictures":
        n = ev.write_pictures(model, dataset, out_file, inputs=data, chunk=batch_size)
        err.print(f"{n} pictures predicted from {dataset.source}: {out_file}", markup=False)
        return
    if fmt == "npz":
        n = ev.write_npz(model, dataset, out_file, chunk=batch_size)
        err.print(f"{n} predictions of {dataset.source}: {out_file}", markup=False)
        return
    rows = ev.prediction_rows(model, dataset, chunk=batch_size)
    if out_file is None:
        ev.write_rows(rows, sys.stdout, fmt)
        return
    n = ev.write_file(rows, out_file, fmt)
    err.print(f"{n} predictions of {dataset.source}: {out_file}", markup=False)
