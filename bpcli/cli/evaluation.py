"""``bpcli eval``: a trained run scored on data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import command, out


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
