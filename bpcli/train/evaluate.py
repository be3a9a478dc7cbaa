"""A trained model on data: what ``bpcli eval`` scores and what ``bpcli predict`` writes.

The data is read with the options the run was trained with (:func:`bpcli.train.data.read` with
the run's resolved spec: columns, class names, picture sizes); eval scores the
file given, else the run's validation split (never its training data); predict turns each
batch of samples into rows, pictures or arrays. Eval, predict and validation run the network
:func:`batch_size` samples at a time, so memory is about one batch's activations whatever the
input's size.

A network whose answer is a picture (:func:`picture_kind`) is scored and written as one:
segmentation (a classifier with spatial outputs, a class per pixel) by pixel accuracy, IoU and
Dice, written as palette PNGs; restoration (a regressor with outputs (N, C, H, W)) by PSNR, SSIM,
MAE and RMSE, written as pictures in the inputs' bit depth.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import data
from ..engine import evaluate as run_program
from ..engine.program import Builder
from ..errors import InputError
from ..explain import metrics
from ..explain import score_plots
from ..explain.plots import save
from ..nn.losses import Classifier
from ..nn.model import Model, Prediction
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


def scored_data(model: Model, path=None, target: str | None = None, sets=(),
                targets=None) -> data.Dataset:
    """What eval scores: the file at ``path`` (labels in column ``target`` of a CSV, default the
    run's; ``targets``: the folder of its pictures' target pictures), else the validation split of
    the data the run trained on, drawn as training drew it.
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
        if targets is not None:
            return data.read(spec, path, labels=labels, targets=Path(targets),
                             targets_shown_as=str(targets))
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


# ---------------------------------------------------------------- batches
BATCH_BYTES = 256 * 2 ** 20  # a default batch's activations stay under this (eval, predict, validation)


def activation_bytes(model: Model) -> int:
    """Bytes one sample adds to a forward pass of the evaluation program: every per-sample value
    it holds (the input, each equation's output and what it saves, shapes with the batch axis
    None) in the model's dtype. The forward keeps them all until the pass ends, so a batch of B
    samples needs about B times this (plus the parameters, and a convolution's im2col slices,
    which ``backend.batch_slices`` bounds by itself)."""
    prog = model.program
    values = [*prog.inputs.values(), *(e.out for e in prog.eqns),
              *(e.saved for e in prog.eqns if e.saved is not None)]
    per_sample = sum(int(np.prod(v.shape[1:], dtype=np.int64)) for v in values
                     if v.shape and v.shape[0] is None)
    return per_sample * model.dtype.itemsize


def batch_size(model: Model, asked: int | None = None) -> int:
    """Samples per forward pass of eval, predict and validation: ``asked`` (``--batch-size``) when
    given, else the run's ``training.batch_size`` (all samples for ``full``) capped so that one
    batch's :func:`activation_bytes` stay under :data:`BATCH_BYTES` (at least 1 sample).
    Batches of any size give the same outputs: each sample's products are its own."""
    if asked is not None:
        return asked
    cap = max(1, BATCH_BYTES // max(1, activation_bytes(model)))
    trained = model.spec.data["training"]["batch_size"]
    return cap if trained == "full" else min(int(trained), cap)


def out_of_memory(model: Model, size: int) -> InputError:
    """The error for a batch that did not fit: it names the batch and how to shrink it."""
    mb = activation_bytes(model) * size / 2 ** 20
    smaller = max(1, size // 4)
    return InputError(f"out of memory running the network on {size} samples at a time (about "
                      f"{mb:,.0f} MB of activations a batch): pass a smaller --batch-size, e.g. "
                      f"--batch-size {smaller}", path="--batch-size")


@contextmanager
def memory_bound(model: Model, size: int):
    """Run the block (batches of ``size`` samples); a MemoryError in it becomes
    :func:`out_of_memory`'s error."""
    try:
        yield
    except MemoryError:
        raise out_of_memory(model, size) from None


def batch_outputs(model: Model, X, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, network output) of each batch of ``size`` samples of raw X, in order."""
    with memory_bound(model, size):
        for start in range(0, X.shape[0], size):
            yield start, model.forward(np.asarray(X[start:start + size]))


# ---------------------------------------------------------------- pictures as answers
def picture_kind(model: Model) -> str | None:
    """``"segmentation"`` for a classifier whose output has spatial axes ((N, K, *spatial): a
    class per pixel, or (N, 1, H, W) sigmoid masks), ``"restoration"`` for a regressor whose
    output is pictures (N, C, H, W), else None (one answer per sample)."""
    shape = model.output_shape
    if model.loss_def.classifier is not None and len(shape) >= 3:
        return "segmentation"
    if model.loss_def.regressor and len(shape) == 4:
        return "restoration"
    return None


def class_maps(model: Model, output) -> np.ndarray:
    """The class index of every pixel, (N, *spatial), from a segmentation output: the loss's
    ``decide``, a one-channel axis (sigmoid masks) dropped."""
    decided = np.asarray(model.loss_def.classifier.decide(output))
    if decided.ndim == len(model.output_shape) and decided.shape[1] == 1:
        decided = decided[:, 0]
    return decided


def _finite(v: float) -> float | None:
    # JSON has no NaN or Infinity: an undefined score is null
    return float(v) if np.isfinite(v) else None


def segmentation_scores(truth, predicted, classes: list[str]) -> tuple[dict, dict]:
    """(scores, per sample) of class maps ``truth`` and ``predicted`` (N, *spatial) over their
    pixels (:mod:`bpcli.explain.metrics`): ``pixel_accuracy``, ``classes``,
    ``confusion_matrix`` (pixels: rows true, columns predicted), ``per_class`` (``iou``,
    ``dice`` and ``support``, the class's true pixels, by class name; IoU and Dice null for a
    class neither present nor predicted), ``mean_iou`` and ``mean_dice`` (over the classes
    where defined). A true value outside the classes (an ignore_index) is left out.
    Per sample: ``iou`` and ``dice``, each sample's mean over its classes (N,)."""
    k = len(classes)
    each = metrics.pixel_confusion(truth, predicted, k)
    cm = each.sum(axis=0)
    seg = metrics.segmentation(cm)
    support = cm.sum(axis=1)
    scores = {"pixel_accuracy": seg["pixel_accuracy"],
              "classes": list(classes),
              "confusion_matrix": cm.tolist(),
              "per_class": {name: {"iou": _finite(seg["iou"][i]), "dice": _finite(seg["dice"][i]),
                                   "support": int(support[i])}
                            for i, name in enumerate(classes)},
              "mean_iou": _finite(seg["mean_iou"]), "mean_dice": _finite(seg["mean_dice"])}
    per_sample = {"iou": metrics.mean_defined(metrics.iou(each)),
                  "dice": metrics.mean_defined(metrics.dice(each))}
    return scores, per_sample


def restoration_scores(truth, predicted) -> tuple[dict, dict]:
    """(scores, per sample) of pictures (N, C, H, W): ``psnr`` (dB) and ``ssim``, each the mean
    over pictures of scikit-image's value for one picture, with ``data_range`` (1.0 for targets
    in [0, 1], else their max − min: :func:`bpcli.explain.metrics.data_range`); ``mae`` and
    ``rmse`` over every pixel. ``psnr`` is null when a picture is predicted exactly (infinite),
    ``ssim`` when the pictures are under 3 pixels on a side. Per sample: ``psnr``, ``ssim``."""
    r = metrics.data_range(truth)
    psnr = metrics.psnr(truth, predicted, r)
    ssim = metrics.ssim(truth, predicted, r)
    scores = {"psnr": _finite(psnr.mean()) if psnr.size else None,
              "ssim": None if ssim is None or not ssim.size else float(ssim.mean()),
              "data_range": r,
              "mae": metrics.pixel_mae(truth, predicted),
              "rmse": metrics.pixel_rmse(truth, predicted)}
    return scores, {"psnr": psnr, "ssim": ssim}


# ---------------------------------------------------------------- eval
@dataclass
class Evaluation:
    """eval's answer: ``scores`` (the JSON object eval prints), the ``prediction`` for every
    sample and the ``truth`` (class indices (N,), class maps (N, *spatial), or regression
    targets; None without labels); ``per_sample``: for picture outputs, each sample's scores by
    name (``psnr``, ``ssim``; ``iou``, ``dice``), what ``eval --plot`` titles its rows with."""

    scores: dict
    prediction: Prediction
    truth: np.ndarray | None
    per_sample: dict | None = None


def data_loss(model: Model, output, y) -> float:
    """The loss's data term over every sample at once, from the network ``output`` (N, ...) and
    the prepared labels ``y`` (None for a loss without labels): the run's loss emitted alone
    (``LossDef.build``) and evaluated on the host. Exact for every loss, a mean over pixels or
    a Dice over the whole set alike, and the same bits whatever the batches the outputs came
    from."""
    b = Builder()
    f = b.input("output", (None, *model.output_shape[1:]))
    label_shape = model.loss_def.label_shape(model.output_shape)
    labels = None if label_shape is None else b.input("y", label_shape)
    b.output("data_loss", model.loss_def.build(b, f, labels, model.spec.data["loss"]))
    prog = b.program()
    env = run_program(prog, {"output": output, **({} if y is None else {"y": y})})
    return float(env[prog.outputs["data_loss"].id])


def evaluate(model: Model, dataset: data.Dataset, *, chunk: int | None = None) -> Evaluation:
    """Loss (as training reports it: data loss over all samples, :func:`data_loss`, plus the
    penalty) and, by what
    the loss is (its ``LossDef.classifier`` / ``regressor``) and whether its answers are pictures
    (:func:`picture_kind`), the scores of :mod:`bpcli.explain.metrics`, computed ``chunk``
    samples at a time (default :func:`batch_size`).

    ``scores``: ``loss``, ``n``; classifiers add ``accuracy``, ``classes``, ``confusion_matrix``
    (rows true, columns predicted), ``per_class`` (``precision``, ``recall``, ``f1``,
    ``support`` by class name) and ``macro_f1``, and those with a score or probabilities
    ``roc_auc`` (:func:`add_roc_auc`); regressors add ``mae``, ``rmse`` and ``r2``.
    Segmentation adds :func:`segmentation_scores`, restoration :func:`restoration_scores`.
    """
    loss_def = model.loss_def
    n = dataset.X.shape[0]
    size = batch_size(model, chunk)
    outputs, truths, reg = [], [], 0.0
    with memory_bound(model, size):
        for start in range(0, n, size):
            stop = start + size
            X, y = fit(model, data.Dataset(np.asarray(dataset.X[start:stop]),
                                           None if dataset.y is None else dataset.y[start:stop],
                                           dataset.source))
            s = model.step(X, y, grad=False)
            reg = s.reg_loss
            outputs.append(s.output)
            truths.append(y)
    prediction = model.interpret(np.concatenate(outputs))
    truth = None if truths[0] is None else np.concatenate(truths)
    scores = {"loss": data_loss(model, prediction.output, truth) + reg, "n": int(n),
              "data": dataset.source}
    clf, kind, per_sample = loss_def.classifier, picture_kind(model), None
    if kind == "segmentation":
        predicted = class_maps(model, prediction.output)
        truth = np.asarray(clf.truth(truth)).reshape(predicted.shape)
        more, per_sample = segmentation_scores(truth, predicted, prediction.classes)
        scores.update(more)
    elif clf is not None:
        # multi-label (sigmoid on (N, K)): every output a yes/no, scored as one sample each
        truth = np.asarray(clf.truth(truth)).reshape(-1)
        scores.update(classification_scores(truth, np.asarray(clf.decide(prediction.output))
                                            .reshape(-1), prediction.classes))
        add_roc_auc(scores, clf, truth, prediction)
    elif kind == "restoration":
        truth = truth.reshape(prediction.output.shape)
        more, per_sample = restoration_scores(truth, prediction.output)
        scores.update(more)
    elif loss_def.regressor:
        scores.update(mae=metrics.mae(truth, prediction.output),
                      rmse=metrics.rmse(truth, prediction.output),
                      r2=metrics.r2(truth, prediction.output))
    return Evaluation(scores, prediction, truth, per_sample)


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
    if prediction.labels.ndim > 1:  # K yes/no outputs, each ranked by its P(yes)
        scores["roc_auc"] = metrics.roc_auc(truth.reshape(-1) == 1,
                                            yes_probabilities(prediction).reshape(-1))
        return
    if p.shape[1] == 2:
        scores["roc_auc"] = metrics.roc_auc(truth == 1, p[:, 1])
        return
    each = metrics.roc_auc_one_vs_rest(truth, p)
    scores["roc_auc"] = metrics.macro_roc_auc(each)
    for name, auc in zip(prediction.classes, each):
        scores["per_class"][name]["roc_auc"] = auc


def yes_probabilities(p: Prediction) -> np.ndarray:
    """P(yes) of each of K yes/no outputs (N, K), from probabilities laid out as the sigmoid
    losses give them: [P(no) of every output, then P(yes) of every output] along axis 1."""
    return p.probabilities[:, p.output.shape[1]:]


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


GRID_SAMPLES = 4  # rows of eval --plot's grid for picture outputs


def plot(model: Model, ev: Evaluation, out, title: str = "", inputs=None) -> Path:
    """eval's picture at ``out``: the confusion matrix of a classifier (counts and row-normalised),
    a regressor's predictions against the truth; for answers that are pictures (2-D), a grid
    of the first :data:`GRID_SAMPLES` samples of ``inputs`` (the scored X): input, target,
    prediction and error, each row titled with the sample's PSNR and SSIM, or Dice and IoU."""
    kind = picture_kind(model)
    if kind is not None and inputs is not None and len(model.output_shape) == 4:
        rows = np.arange(min(GRID_SAMPLES, ev.truth.shape[0]))
        X = np.asarray(inputs[:len(rows)], dtype=float)
        if kind == "segmentation":
            fig = score_plots.segmentation_grid(
                X, ev.truth[rows], class_maps(model, ev.prediction.output[rows]),
                [f"Dice {ev.per_sample['dice'][i]:.3f}, IoU {ev.per_sample['iou'][i]:.3f}"
                 for i in rows], ev.scores["classes"], title)
        else:
            ssim = ev.per_sample["ssim"]
            fig = score_plots.restoration_grid(
                X, ev.truth[rows], ev.prediction.output[rows],
                [f"PSNR {ev.per_sample['psnr'][i]:.2f} dB"
                 + ("" if ssim is None else f", SSIM {ssim[i]:.3f}") for i in rows],
                limits(ev.truth), title)
    elif model.loss_def.classifier is not None:
        fig = score_plots.confusion_figure(ev.scores["confusion_matrix"], ev.scores["classes"],
                                           title)
    else:
        fig = score_plots.regression_figure(ev.truth, ev.prediction.output, title)
    return save(fig, out)


def limits(truth) -> tuple[float, float]:
    """The values a restoration grid draws from black to white: [0, 1] for targets in [0, 1]
    (PSNR's data range 1), else the targets' own min and max (their range)."""
    lo, hi = float(np.min(truth)), float(np.max(truth))
    return (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)


# ---------------------------------------------------------------- predict
def table(model: Model, p: Prediction):
    """One DataFrame row per sample: ``prediction`` (class name) and ``p_<class>`` for every
    class (for a binary classifier only the positive class's), or ``score`` where the loss gives
    no probabilities (hinge: the margin f); for K yes/no outputs (sigmoid on (N, K))
    ``prediction_<j>`` and ``p_<j>``, the probability of yes, for each; without classes the
    outputs, ``output`` or ``output_0``, ``output_1``, ..."""
    import pandas as pd

    clf = model.loss_def.classifier
    if clf is None:
        values = p.output.reshape(len(p.output), -1)
        names = (["output"] if values.shape[1] == 1
                 else [f"output_{i}" for i in range(values.shape[1])])
        return pd.DataFrame(values, columns=names)
    if p.labels.ndim > 1:  # multi-label: a yes/no (class name) and its probability per output
        labels = p.labels.reshape(len(p.labels), -1)
        df = pd.DataFrame(labels, columns=[f"prediction_{j}" for j in range(labels.shape[1])])
        if p.probabilities is not None:
            yes = yes_probabilities(p).reshape(len(labels), -1)
            for j in range(yes.shape[1]):
                df[f"p_{j}"] = yes[:, j]
        return df
    df = pd.DataFrame({"prediction": p.labels})
    if p.probabilities is None:
        df["score"] = clf.score(p.output)
        return df
    first = 1 if clf.score is not None else 0  # binary: P(negative) = 1 - P(positive), left out
    for k in range(first, len(p.classes)):
        df[f"p_{p.classes[k]}"] = p.probabilities[:, k]
    return df


def prediction_rows(model: Model, dataset: data.Dataset, *,
                    chunk: int | None = None) -> Iterator:
    """:func:`table` for ``chunk`` samples at a time (default :func:`batch_size`), in input
    order, the sample shape checked before the first batch is run; a ``file`` column first where
    the samples have names (the pictures of a folder)."""
    check_inputs(model, dataset)
    for start, output in batch_outputs(model, dataset.X, batch_size(model, chunk)):
        rows = table(model, model.interpret(output))
        if dataset.names is not None:
            rows.insert(0, "file", dataset.names[start:start + len(output)])
        yield rows


def check_inputs(model: Model, dataset: data.Dataset) -> None:
    """InputError, naming the data's file, when its samples are not the shape the run takes."""
    try:
        model.predict(dataset.X[:0])
    except InputError as e:  # the message names the file the samples came from
        e.file = e.file or dataset.source
        raise


OUT_SUFFIXES = {".csv": "csv", ".json": "json", ".npz": "npz"}


def out_format(model: Model, out, as_json: bool = False) -> str:
    """What ``predict --out`` writes, from ``out``: ``"csv"`` or ``"json"`` (one row per sample:
    a .csv or .json file, or stdout when ``out`` is None; ``--json`` asks for JSON),
    ``"npz"`` (the arrays, :func:`write_npz`) or ``"pictures"`` (a folder: a path without a
    suffix, or an existing folder; :func:`write_pictures`). Raises InputError for any other
    suffix, for rows of answers that are pictures, and for a folder of answers that are not."""
    shape = "×".join(map(str, model.output_shape[1:]))
    kind = picture_kind(model)
    if out is not None and (Path(out).is_dir() or not Path(out).suffix):
        fmt = "pictures"
    elif out is not None:
        fmt = OUT_SUFFIXES.get(Path(out).suffix.lower())
        if fmt is None:
            raise InputError(f"{out}: predict writes FILE.csv (one row per sample), FILE.json "
                             f"(with --json), FILE.npz (the arrays, for np.load) or a folder "
                             f"(one picture per input, for networks whose answer is a picture); "
                             f"the suffix {Path(out).suffix!r} is none of these", path="--out")
        fmt = "json" if as_json and fmt == "csv" else fmt
    else:
        fmt = "json" if as_json else "csv"
    if fmt in ("csv", "json") and kind is not None:
        raise InputError(f"the run's answer for each sample is a picture ({shape}: "
                         f"{'a class per pixel' if kind == 'segmentation' else 'a restored picture'}"
                         f"), not a row: give --out DIR for one PNG per input, or --out FILE.npz "
                         f"for the arrays", path="--out")
    if fmt == "pictures" and (kind is None or len(model.output_shape) != 4):
        raise InputError(f"{out}: a folder takes one picture per input, but the run's answer "
                         f"for each sample is {shape} values, not a picture: give --out FILE.csv "
                         f"(one row per sample) or FILE.npz", path="--out")
    return fmt


def names_of(dataset: data.Dataset) -> list[str]:
    """Each sample's name: its file relative to the folder read (pictures), else its index,
    zero-padded to the same width (0000 ... 1023)."""
    if dataset.names is not None:
        return list(dataset.names)
    n = dataset.X.shape[0]
    width = len(str(max(0, n - 1)))
    return [f"{i:0{width}d}" for i in range(n)]


def write_npz(model: Model, dataset: data.Dataset, path, *, chunk: int | None = None) -> int:
    """The answers as arrays in ``path`` (``np.savez``, readable by ``np.load`` without pickle):
    ``output`` (the network output, N × output), ``prediction`` (class indices, per sample or
    per pixel, for a classifier; the output for a regressor), ``names`` (the input files, or
    sample indices), and for a classifier ``classes`` (names in index order) and
    ``probabilities`` where its loss defines them. Returns the number of samples."""
    check_inputs(model, dataset)
    output = [o for _, o in batch_outputs(model, dataset.X, batch_size(model, chunk))]
    output = (np.concatenate(output) if output
              else np.zeros((0, *model.output_shape[1:]), dtype=model.dtype))
    clf = model.loss_def.classifier
    arrays = {"output": output, "names": np.array(names_of(dataset), dtype=str)}
    if clf is None:
        arrays["prediction"] = output
    else:
        arrays["prediction"] = (class_maps(model, output) if picture_kind(model)
                                else np.asarray(clf.decide(output)))
        arrays["classes"] = np.array(model.classes(), dtype=str)
        if clf.probabilities is not None:
            arrays["probabilities"] = clf.probabilities(output)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return output.shape[0]


DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # Pillow's modes of 16-bit grayscale


def bit_depth(path) -> int:
    """16 for a 16-bit (grayscale) picture file, else 8: what Pillow's header says, no pixel read."""
    from PIL import Image

    with Image.open(path) as img:
        return 16 if img.mode in DEEP_MODES else 8


def write_pictures(model: Model, dataset: data.Dataset, folder, inputs=None, *,
                   chunk: int | None = None) -> int:
    """One PNG per input in ``folder``, named by the input's stem (its subfolders kept), or by
    sample index where the samples have no names (an .npz). Segmentation: a palette PNG (mode
    "P") whose index is each pixel's class (colours from
    :func:`bpcli.explain.score_plots.class_palette`). Restoration: the output clipped to [0, 1]
    and scaled to the input's bit depth (16-bit grayscale for a 16-bit input file under
    ``inputs``, the folder or picture read; else 8-bit), mode L, RGB or RGBA by channels.
    Returns the number of pictures."""
    check_inputs(model, dataset)
    kind = picture_kind(model)
    channels = model.output_shape[1]
    if kind == "restoration" and channels not in (1, 3, 4):
        raise InputError(f"the run's answers have {channels} channels, which no picture format "
                         f"holds (1: grayscale, 3: RGB, 4: RGBA): give --out FILE.npz for the "
                         f"arrays", path="--out")
    if kind == "segmentation" and len(model.classes()) > 256:
        raise InputError(f"a palette PNG holds at most 256 classes, the run has "
                         f"{len(model.classes())}: give --out FILE.npz for the arrays",
                         path="--out")
    names = names_of(dataset)
    folder = Path(folder)
    inputs = None if inputs is None or dataset.names is None else Path(inputs)
    k = len(model.classes()) if kind == "segmentation" else 0
    for start, output in batch_outputs(model, dataset.X, batch_size(model, chunk)):
        answers = class_maps(model, output) if kind == "segmentation" else output
        for i, answer in enumerate(answers, start):
            target = folder / Path(names[i]).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "segmentation":
                img = mask_picture(answer, k)
            else:
                source = None if inputs is None else (inputs / names[i] if inputs.is_dir()
                                                      else inputs)
                img = restored_picture(answer, 8 if source is None else bit_depth(source))
            img.save(target)
    return dataset.X.shape[0]


def mask_picture(classes, k: int):
    """A palette PNG's image (mode "P") of a class map (H, W) of indices 0..k-1 (k <= 256): each
    pixel's index is its class, the palette :func:`bpcli.explain.score_plots.class_palette`'s."""
    from PIL import Image

    classes = np.ascontiguousarray(classes, dtype=np.uint8)
    img = Image.frombytes("P", classes.shape[::-1], classes.tobytes())
    img.putpalette(score_plots.class_palette(k).reshape(-1).tolist())
    return img


def restored_picture(answer, bits: int):
    """A Pillow image of one restored picture (C, H, W): clipped to [0, 1], scaled to 8 bits
    (× 255) or 16 (× 65535, grayscale only) and rounded, as pictures were read (÷ 255, ÷ 65535)."""
    from PIL import Image

    from .images import DIVIDE_BY

    a = np.clip(np.asarray(answer, dtype=np.float64), 0.0, 1.0)
    if bits == 16 and a.shape[0] == 1:
        return Image.fromarray(np.rint(a[0] * DIVIDE_BY["16-bit"]).astype(np.uint16))
    a = np.rint(a * DIVIDE_BY["8-bit"]).astype(np.uint8)  # 2-D: L; (H, W, 3): RGB; 4: RGBA
    return Image.fromarray(a[0] if a.shape[0] == 1 else np.ascontiguousarray(np.moveaxis(a, 0, -1)))


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
