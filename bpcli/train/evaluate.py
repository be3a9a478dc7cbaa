"""A trained model on data: what ``bpcli eval`` scores and what ``bpcli predict`` writes.

The data is read with the options the run was trained with (:func:`bpcli.train.data.read` with
the run's resolved spec: columns, class names, picture sizes); eval scores the
file given, else the run's validation split (never its training data); predict turns each
chunk of samples into rows, so an input of any size needs bounded memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import data
from ..errors import InputError
from ..explain import metrics
from ..explain import score_plots
from ..explain.plots import save
from ..nn.losses import Classifier
from ..nn.model import PREDICT_BATCH, Model, Prediction
from .run_folder import atomic_write
from ..spec.validate import apply_sets, set_value
from .run import fit


# ---------------------------------------------------------------- the data
def reading_spec(spec, sets=()):
    """The run's spec with ``--set data.KEY=VALUE`` items applied: a file is read with the
    options the run was trained with (header, skip_rows, delimiter, target, classes) unless
    one is changed so. Only ``data.`` keys: anything else would not be the trained model."""
    for item in sets:
        if not item.strip().startswith("data."):
            raise InputError(f"eval and predict change only how data is read (data.KEY=VALUE, "
                             f"e.g. data.skip_rows=0), got {item!r}", path="--set")
    return apply_sets(spec, sets) if sets else spec


def scored_data(model: Model, path=None, target: str | None = None, sets=()) -> data.Dataset:
    """What eval scores: the file at ``path`` (labels in column ``target`` of a CSV, default the
    run's), else the validation split of the data the run trained on, drawn as training drew it.
    ``sets``: ``--set data.KEY=VALUE`` items changing how the file is read (:func:`reading_spec`).

    Raises InputError when there is no validation split: scoring the training data instead
    would pass off how well the model remembers as how well it generalises.
    """
    spec = reading_spec(model.spec, sets)
    # a loss without labels (sum_squares) scores inputs alone
    labels = "none" if model.loss_def.label_shape(model.output_shape) is None else "required"
    if path is not None:
        if target is not None:
            spec = set_value(spec, "data", {**(spec.data["data"] or {}), "target": target})
        return data.read(spec, path, labels=labels)
    cfg = spec.data["data"]
    if cfg is None:
        raise InputError("the run's spec has no data entry to score it on: give --data FILE",
                         file=spec.file, path="data")
    if cfg.get("val_path"):  # the run's own validation file, read with the training options
        return data.read(spec, cfg["val_path"], labels=labels)
    no_split = InputError("the run has no validation data to score: it trained on every sample "
                          f"of its data (data.val_split is {cfg['val_split']}); give --data FILE "
                          "to score it on data it has not seen", file=spec.file,
                          path="data.val_split")
    if not cfg["val_split"]:
        raise no_split
    whole = data.read(spec, labels=labels)
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
    ``support`` by class name) and ``macro_f1``, and those with a score or probabilities
    ``roc_auc`` (:func:`add_roc_auc`); regressors add ``mae``, ``rmse`` and ``r2``.
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
        add_roc_auc(scores, clf, truth, prediction)
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


def add_roc_auc(scores: dict, clf: Classifier, truth, prediction: Prediction) -> None:
    """``scores["roc_auc"]`` of a classifier (``clf``, its loss's ``Classifier``) from what it
    ranks samples by, each as scikit-learn's ``roc_auc_score`` (None where it is undefined):

    - a binary one's ``score`` (logistic, hinge: the output f), class "+1" positive;
    - else two class probabilities (softmax over 2 outputs): the second's, class index 1
      positive, as ``roc_auc_score(truth, p[:, 1])``;
    - else K > 2 probabilities: the macro one-vs-rest AUC, as ``roc_auc_score(truth, p,
      multi_class="ovr", average="macro")``, and each class's own AUC as ``roc_auc`` in
      ``scores["per_class"]``; a class absent from ``truth`` (or the only one in it) has None
      there and is left out of the mean (:func:`metrics.macro_roc_auc`).

    A classifier with neither adds nothing.
    """
    if clf.score is not None:
        scores["roc_auc"] = metrics.roc_auc(truth == 1, clf.score(prediction.output))
        return
    p = prediction.probabilities
    if p is None:
        return
    if p.shape[1] == 2:
        scores["roc_auc"] = metrics.roc_auc(truth == 1, p[:, 1])
        return
    each = metrics.roc_auc_one_vs_rest(truth, p)
    scores["roc_auc"] = metrics.macro_roc_auc(each)
    for name, auc in zip(prediction.classes, each):
        scores["per_class"][name]["roc_auc"] = auc


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
    return save(fig, out)


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
    before the first chunk is run; a ``file`` column first where the samples have names (the
    pictures of a folder)."""
    try:
        model.predict(dataset.X[:0])
    except InputError as e:  # the message names the file the samples came from
        e.file = e.file or dataset.source
        raise
    for start in range(0, dataset.X.shape[0], chunk):
        rows = table(model, model.predict(dataset.X[start:start + chunk], batch_size=chunk))
        if dataset.names is not None:
            rows.insert(0, "file", dataset.names[start:start + chunk])
        yield rows


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
    return atomic_write(path, lambda f: write_rows(frames, f, fmt), text=True)
