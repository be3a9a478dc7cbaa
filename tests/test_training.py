"""The training loop's stopping rules and validation cadence: early_stopping, eval_every, and the
lecture's max_iters and precision for every optimizer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import bpcli
from bpcli.train.optim import OPTIMIZERS
from bpcli.train.loop import train
from bpcli.train.run_folder import RunFolder


def spec(training, optimizer="sgd", loss="logistic", **extra):
    return {"name": "t", "input": [5], "seed": 0, "layers": [{"dense": {"units": 1}}],
            "loss": loss, "optimizer": optimizer, "training": training, **extra}


def run(tmp_path, s, n=40, val=True):
    model = bpcli.build(s)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5))
    y = (X[:, 0] > 0).astype(int)
    data = model.prepare(X, y)
    summary = train(model, data, model.prepare(X[:10], y[:10]) if val else None, RunFolder(tmp_path))
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return summary, rows


def evaluated(rows):
    return [int(r["epoch"]) for r in rows if r["val_loss"] != ""]


def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path):
    # lr 1e-20 leaves float32 weights exactly as they are: the first evaluation is the best,
    # and evaluations 2 and 3 (epochs 4 and 6, eval_every 2) do not improve on it
    s = spec({"epochs": 50, "batch_size": 8, "eval_every": 2,
              "early_stopping": {"patience": 2}}, {"name": "sgd", "lr": 1e-20})
    summary, rows = run(tmp_path, s)
    assert summary["stop_reason"] == ("early stopping: val_loss did not improve for 2 evaluations "
                                      f"(best {float(rows[1]['val_loss']):.4g} at epoch 2)")
    assert summary["epochs"] == 6 and len(rows) == 6
    assert evaluated(rows) == [2, 4, 6]
    assert json.loads((tmp_path / "summary.json").read_text())["stop_reason"].startswith("early")


def test_early_stopping_on_val_accuracy_waits_while_it_improves(tmp_path):
    s = spec({"epochs": 40, "batch_size": 8, "early_stopping": {"patience": 3,
                                                               "metric": "val_accuracy"}},
             {"name": "sgd", "lr": 0.5})
    summary, rows = run(tmp_path, s)
    acc = [float(r["val_accuracy"]) for r in rows]
    best = max(acc)
    first_best = acc.index(best)
    # it stops exactly 3 evaluations after the first time the best accuracy was reached
    assert len(rows) == first_best + 1 + 3 < 40
    assert summary["stop_reason"].startswith("early stopping: val_accuracy did not improve for 3")


def test_eval_every_for_gd_counts_iterations_and_the_last_row_is_evaluated(tmp_path):
    s = spec({"epochs": 10, "eval_every": 3}, {"name": "gd", "lr": 0.1})
    summary, rows = run(tmp_path, s)
    assert [int(r["step"]) for r in rows] == list(range(1, 11))
    assert evaluated(rows) == [3, 6, 9, 10]
    assert summary["final"]["val_loss"] == pytest.approx(float(rows[-1]["val_loss"]))


def test_eval_every_per_epoch(tmp_path):
    _, rows = run(tmp_path, spec({"epochs": 7, "batch_size": 10, "eval_every": 2}))
    assert evaluated(rows) == [2, 4, 6, 7]
    assert all(r["train_loss"] != "" for r in rows)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_max_iters_stops_every_optimizer(tmp_path, name):
    batch = "full" if OPTIMIZERS[name].full_batch else 8
    summary, rows = run(tmp_path, spec({"epochs": 10, "batch_size": batch, "max_iters": 7}, name))
    assert summary["steps"] == 7 and summary["stop_reason"] == "reached max_iters = 7"


def test_precision_stops_adam_as_it_stops_gd(tmp_path):
    # Adam's steps are about lr in size: a precision above lr stops it at the first step
    s = spec({"epochs": 10, "batch_size": 8, "precision": 0.01}, {"name": "adam", "lr": 0.001})
    summary, _ = run(tmp_path, s)
    assert summary["steps"] == 1 and summary["stop_reason"].startswith("converged")


@pytest.mark.parametrize("training, extra, words", [
    ({"early_stopping": {"metric": "val_accuracy"}}, {"loss": "mse"},
     ["training.early_stopping.metric", "mse loss has no accuracy"]),
    ({"early_stopping": {"patience": 0}}, {}, ["training.early_stopping.patience", "positive"]),
    ({"early_stopping": {}}, {"data": {"builtin": "pulses", "val_split": 0.0}},
     ["training.early_stopping", "val_split is 0"]),
    ({"eval_every": 0}, {}, ["training.eval_every", "positive"]),
])
def test_bad_training_fields_are_errors_naming_the_field(training, extra, words):
    s = spec(training, **({"loss": extra.pop("loss")} if "loss" in extra else {}), **extra)
    with pytest.raises(bpcli.InputError) as e:
        bpcli.load_spec(s)
    for w in words:
        assert w in str(e.value)


def test_early_stopping_without_validation_data_is_an_error(tmp_path):
    with pytest.raises(bpcli.InputError, match="needs validation data"):
        run(tmp_path, spec({"early_stopping": {}}), val=False)
