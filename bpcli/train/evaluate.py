"""A trained model on data: what ``bpcli eval`` scores and what ``bpcli predict`` writes.

The data is read with the options the run was trained with (:func:`read`); eval scores the
file given, else the run's validation split (never its training data); predict turns each
chunk of samples into rows, so an input of any size needs bounded memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import data
from ..errors import InputError
from ..explain import metrics
from ..explain import score_plots
from ..nn.model import PREDICT_BATCH, Model, Prediction
from ..spec.validate import set_value, with_data
from .run import fit


# ---------------------------------------------------------------- the data
def read(spec, path=None, *, labels: str = "required") -> data.Dataset:
    """The data at ``path`` (a file or folder; None: the spec's own ``data:``) read with the
    spec's data options. ``labels``: "required" (eval), "optional" or "none" (predict: labels
    are dropped, and a CSV need not have the label column)."""
    if path is None:
        return data.from_spec(spec)
    target = spec.data["data"]["target"] if spec.data["data"] else "y"
    if labels != "required" and _csv_without(path, target):
        return _csv_features(Path(path))
    found = data.from_spec(with_data(spec, path))
    return data.Dataset(found.X, None if labels == "none" else found.y, str(path))


def _csv_without(path, column: str) -> bool:
    # the header alone tells; a file that cannot be read is left for the reader to report
    import pandas as pd

    if Path(path).suffix.lower() != ".csv" or not Path(path).is_file():
        return False
    try:
        return column not in pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return False


def _csv_features(path: Path) -> data.Dataset:
    """A CSV of features only: every column an input, every value a number."""
    import pandas as pd

    try:
        df = pd.read_csv(path, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read CSV: {str(e).strip()}", file=str(path)) from None
    numbers = df.apply(pd.to_numeric, errors="coerce")
    bad = (numbers.isna() & df.notna()).to_numpy() | ~np.isfinite(numbers.to_numpy(float))
    if df.empty:
        raise InputError("CSV has no data rows", file=str(path))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"row {row + 2}, column {df.columns[col]!r}: {df.iat[row, col]!r} is not "
                         f"a finite number (line {row + 2} of the file, counting the header)",
                         file=str(path))
    return data.Dataset(numbers.to_numpy(float), None, str(path))


def scored_data(model: Model, path=None, target: str | None = None) -> data.Dataset:
    """What eval scores: the file at ``path`` (labels in column ``target`` of a CSV, default the
    run's), else the validation split of the data the run trained on, drawn as training drew it.

    Raises InputError when there is no validation split: scoring the training data instead
    would pass off how well the model remembers as how well it generalises.
    """
    spec = model.spec
    if path is not None:
        if target is not None:
            spec = set_value(spec, "data", {**(spec.data["data"] or {}), "target": target})
        return read(spec, path)
    cfg = spec.data["data"]
    no_split = InputError("the run has no validation data to score: it trained on every sample "
                          f"of its data (data.val_split is {cfg['val_split']}); give --data FILE "
                          "to score it on data it has not seen", file=spec.file,
                          path="data.val_split")
    if not cfg["val_split"]:
        raise no_split
    whole = read(spec)
    _, val = data.split(whole, cfg["val_split"], spec.data["seed"])
    if val is None:
        raise no_split
    return data.Dataset(*val, f"the validation split of {whole.source}")


# ---------------------------------------------------------------- eval
@dataclass
class Evaluation:
    """eval's answer: ``scores`` (the JSON object eval prints), the ``prediction`` for every
    sample and the ``truth`` (class indices (N,), or regression targets; None without labels)."""

    scores: dict
    prediction: Prediction
    truth: np.ndarray | None


def evaluate(model: Model, dataset: data.Dataset, *, chunk: int = PREDICT_BATCH) -> Evaluation:
    """Loss (as training reports it: data loss over all samples plus the penalty) and, by what
    the loss is (its ``LossDef.classifier`` / ``regressor``), the scores of
    :mod:`bpcli.explain.metrics`, computed ``chunk`` samples at a time.

    ``scores``: ``loss``, ``n``; classifiers add ``accuracy``, ``classes``, ``confusion_matrix``
    (rows true, columns predicted), ``per_class`` (``precision``, ``recall``, ``f1``,
    ``support`` by class name) and ``macro_f1``, binary ones ``roc_auc`` (None when only one
    class is present); regressors add ``mae``, ``rmse`` and ``r2``.
    """
    loss_def = model.loss_def
    n = dataset.X.shape[0]
    outputs, truths, data_sum, reg = [], [], 0.0, 0.0
    for start in range(0, n, chunk):
        X, y = fit(model, data.Dataset(np.asarray(dataset.X[start:start + chunk]),
                                       None if dataset.y is None else dataset.y[start:start + chunk],
                                       dataset.source))
        s = model.step(X, y, grad=False)
        data_sum += s.data_loss * (X.shape[0] if loss_def.reduction == "mean" else 1)
        reg = s.reg_loss
        outputs.append(s.output)
        truths.append(y)
    data_loss = data_sum / n if loss_def.reduction == "mean" else data_sum
    prediction = model.interpret(np.concatenate(outputs))
    truth = None if truths[0] is None else np.concatenate(truths)
    scores = {"loss": data_loss + reg, "n": int(n), "data": dataset.source}
    clf = loss_def.classifier
    if clf is not None:
        truth = clf.truth(truth)
        scores.update(classification_scores(truth, clf.decide(prediction.output),
                                            prediction.classes))
        if clf.score is not None:
            scores["roc_auc"] = metrics.roc_auc(truth == 1, clf.score(prediction.output))
    elif loss_def.regressor:
        scores.update(mae=metrics.mae(truth, prediction.output),
                      rmse=metrics.rmse(truth, prediction.output),
                      r2=metrics.r2(truth, prediction.output))
    return Evaluation(scores, prediction, truth)


def classification_scores(truth, predicted, classes: list[str]) -> dict:
    """accuracy, classes, confusion_matrix, per_class and macro_f1 of class indices (N,)."""
    cm = metrics.confusion_matrix(truth, predicted, len(classes))
    each = metrics.per_class(cm)
    return {"accuracy": float(np.trace(cm) / max(1, cm.sum())),
            "classes": list(classes),
            "confusion_matrix": cm.tolist(),
            "per_class": {name: {k: (int(v[i]) if k == "support" else float(v[i]))
                                 for k, v in each.items()}
                          for i, name in enumerate(classes)},
            "macro_f1": metrics.macro_f1(cm)}


def check_plot(model: Model, out) -> None:
    """Refuse ``--plot`` before any work: a loss with nothing to draw, a suffix no format has."""
    if model.loss_def.classifier is None and not model.loss_def.regressor:
        raise InputError(f"the {model.loss_def.name} loss has neither classes (a confusion matrix) "
                         f"nor targets (predicted against true) to draw", path="--plot")
    suffix = Path(out).suffix.lstrip(".").lower()
    if suffix not in score_plots.formats():
        raise InputError(f"{out}: cannot tell the picture's format from its suffix; use .png "
                         f"(or {', '.join('.' + f for f in score_plots.formats() if f != 'png')})",
                         path="--plot")


def plot(model: Model, ev: Evaluation, out, title: str = "") -> Path:
    """eval's picture at ``out``: the confusion matrix of a classifier (counts and row-normalised),
    a regressor's predictions against the truth."""
    if model.loss_def.classifier is not None:
        fig = score_plots.confusion_figure(ev.scores["confusion_matrix"], ev.scores["classes"],
                                           title)
    else:
        fig = score_plots.regression_figure(ev.truth, ev.prediction.output, title)
    return score_plots.save_atomic(fig, out)


# ---------------------------------------------------------------- predict
def table(model: Model, p: Prediction):
    """One DataFrame row per sample: ``prediction`` (class name) and ``p_<class>`` for every
    class (for a binary classifier only the positive class's), or ``score`` where the loss gives
    no probabilities (hinge: the margin f); without classes the outputs, ``output`` or
    ``output_0``, ``output_1``, ..."""
    import pandas as pd

    clf = model.loss_def.classifier
    if clf is None:
        values = p.output.reshape(len(p.output), -1)
        names = (["output"] if values.shape[1] == 1
                 else [f"output_{i}" for i in range(values.shape[1])])
        return pd.DataFrame(values, columns=names)
    df = pd.DataFrame({"prediction": p.labels})
    if p.probabilities is None:
        df["score"] = clf.score(p.output)
        return df
    first = 1 if clf.score is not None else 0  # binary: P(negative) = 1 - P(positive), left out
    for k in range(first, len(p.classes)):
        df[f"p_{p.classes[k]}"] = p.probabilities[:, k]
    return df


def prediction_rows(model: Model, dataset: data.Dataset, *,
                    chunk: int = PREDICT_BATCH) -> Iterator:
    """:func:`table` for ``chunk`` samples at a time, in input order, the sample shape checked
    before the first chunk is run."""
    try:
        model.predict(dataset.X[:0])
    except InputError as e:  # the message names the file the samples came from
        e.file = e.file or dataset.source
        raise
    for start in range(0, dataset.X.shape[0], chunk):
        yield table(model, model.predict(dataset.X[start:start + chunk], batch_size=chunk))


def write_rows(frames, stream, fmt: str = "csv") -> int:
    """Write DataFrames to the text ``stream`` as one CSV (a header, then every row) or one JSON
    list of row objects; returns the number of rows."""
    n = 0
    for frame in frames:
        if fmt == "csv":
            frame.to_csv(stream, header=n == 0, index=False, lineterminator="\n")
        else:
            for i, row in enumerate(frame.to_dict(orient="records")):
                stream.write(("[\n" if n + i == 0 else ",\n") + json.dumps(row, default=float))
        n += len(frame)
    if fmt == "json":
        stream.write("[]\n" if n == 0 else "\n]\n")
    return n


def write_file(frames, path, fmt: str = "csv") -> int:
    """:func:`write_rows` into ``path`` through a temporary file renamed into place: a reader, or
    an error halfway, never leaves half a table there. Returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            n = write_rows(frames, f, fmt)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n
