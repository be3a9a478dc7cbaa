"""Scores of predictions against the truth, in plain NumPy, each as scikit-learn defines it.

Classification takes class indices 0..K-1 (``truth``, ``predicted``: shape (N,)); regression
takes arrays of shape (N,) or (N, outputs). The tests check every function against its
scikit-learn namesake (``confusion_matrix``, ``precision_recall_fscore_support`` with
``zero_division=0``, ``f1_score(average="macro")``, ``roc_auc_score`` (binary, and
``multi_class="ovr", average="macro"``), ``mean_absolute_error``, ``root_mean_squared_error``,
``r2_score``).

Outputs that are pictures are scored as the imaging field scores them. Segmentation takes class
maps (N, *spatial): every pixel a sample of :func:`confusion_matrix`, then IoU and Dice per
class (scikit-learn's ``jaccard_score`` and ``f1_score`` over the pixels); restoration takes
pictures (N, C, H, W) and gives scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` of each picture (SSIM is computed by scikit-image at run time: the
field's definition, Gaussian-free 7×7 windows as ``skimage.metrics`` has them).
"""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------- classification
def confusion_matrix(truth, predicted, k: int) -> np.ndarray:
    """C (k, k) of int64 counts: C[i, j] = #{n : truth_n = i and predicted_n = j}.

    Rows are true classes, columns predicted ones (scikit-learn's layout); the diagonal holds
    the samples classified right, so accuracy = trace(C) / N.
    """
    truth, predicted = np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)


def _ratio(num, den) -> np.ndarray:
    # zero_division=0, as scikit-learn: a class never predicted (or never present) scores 0
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class (arrays of length K) from a confusion matrix.

    With TP_k = C[k, k], precision_k = TP_k / Σ_i C[i, k] (of the samples called k, the fraction
    that are k), recall_k = TP_k / Σ_j C[k, j] (of the samples that are k, the fraction found),
    F1_k = 2 P_k R_k / (P_k + R_k), support_k = Σ_j C[k, j]. A zero denominator gives 0
    (``zero_division=0`` of scikit-learn's ``precision_recall_fscore_support``).
    """
    tp = np.diag(cm).astype(float)
    precision = _ratio(tp, cm.sum(axis=0))
    recall = _ratio(tp, cm.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1)}


def macro_f1(cm: np.ndarray) -> float:
    """The unweighted mean of the K classes' F1 (scikit-learn's ``average="macro"``): every class
    counts the same, however rare, so a classifier that ignores a small class is seen to."""
    return float(per_class(cm)["f1"].mean())


def ranks(x) -> np.ndarray:
    """1-based ranks of x (N,), ties given the mean of the ranks they span (scipy's
    ``rankdata(method="average")``)."""
    _, inverse, counts = np.unique(np.asarray(x), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the rank of each distinct value's last copy
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]


def roc_auc(positive, score) -> float | None:
    """Area under the ROC curve of ``score`` (N,) for the boolean ``positive`` (N,), by ranks.

    AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋), R₊ the sum of the positives' ranks among all scores
    (ties averaged): the Mann-Whitney U statistic over n₊ n₋, i.e. the probability that a random
    positive scores above a random negative, ties counting one half (Hanley & McNeil 1982).
    None when only one class is present (scikit-learn raises there: the area is undefined).
    """
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    r_pos = ranks(np.asarray(score, dtype=float).reshape(-1))[positive].sum()
    return float((r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc_one_vs_rest(truth, probabilities) -> list[float | None]:
    """The ROC AUC of each class k against all the others: :func:`roc_auc` of ``truth == k`` by
    ``probabilities[:, k]``, for class indices ``truth`` (N,) and class probabilities (N, K).

    A class absent from ``truth`` (no positives), or the only class in it (no negatives), has no
    area: None. Where every class is present this is scikit-learn's per-class one-vs-rest AUC,
    ``roc_auc_score(truth == k, probabilities[:, k])``.
    """
    truth = np.asarray(truth).reshape(-1)
    probabilities = np.asarray(probabilities)
    return [roc_auc(truth == k, probabilities[:, k]) for k in range(probabilities.shape[1])]


def macro_roc_auc(per_class_auc) -> float | None:
    """The unweighted mean of the classes' one-vs-rest AUCs (:func:`roc_auc_one_vs_rest`) over the
    classes that have one; None when none has.

    With every class present it is scikit-learn's ``roc_auc_score(truth, probabilities,
    multi_class="ovr", average="macro")``. A class absent from the scored labels is left out of
    the mean, where scikit-learn raises (without ``labels=``) or answers NaN (with them): the
    classes that were scored still say how well the model ranks them.
    """
    defined = [a for a in per_class_auc if a is not None]
    return float(np.mean(defined)) if defined else None


# ---------------------------------------------------------------- regression
def _columns(truth, predicted):
    # (N,) or (N, ...) -> (N, outputs) each: a metric is taken per output, then averaged
    truth, predicted = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    n = truth.shape[0]
    return truth.reshape(n, -1), predicted.reshape(n, -1)


def mae(truth, predicted) -> float:
    """Mean absolute error, mean |ŷ − y| over samples, averaged over outputs; the labels' unit."""
    y, p = _columns(truth, predicted)
    return float(np.abs(p - y).mean(axis=0).mean())


def rmse(truth, predicted) -> float:
    """Root mean squared error, √(mean (ŷ − y)²) over samples, per output, then averaged over
    outputs (scikit-learn's ``root_mean_squared_error``); the labels' unit."""
    y, p = _columns(truth, predicted)
    return float(np.sqrt(((p - y) ** 2).mean(axis=0)).mean())


def r2(truth, predicted) -> float:
    """Coefficient of determination R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² per output, averaged over
    outputs (scikit-learn's ``r2_score``): 1 is perfect, 0 is as good as predicting the mean, and
    it is unbounded below. A constant output column scores 1 if predicted exactly, else 0
    (scikit-learn's convention for a zero denominator)."""
    y, p = _columns(truth, predicted)
    residual = ((y - p) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    score = np.where(total > 0, 1.0 - _ratio(residual, total), np.where(residual == 0, 1.0, 0.0))
    return float(score.mean())


# ---------------------------------------------------------------- segmentation (pixels)
def pixel_confusion(truth, predicted, k: int) -> np.ndarray:
    """C (N, k, k) of int64: each sample's :func:`confusion_matrix` over its pixels, for class
    maps ``truth`` and ``predicted`` of the same size per sample ((N, H, W), or (N, 1, H, W)).

    One ``bincount`` over sample · k² + true · k + predicted; a true value outside 0..k-1
    (an ``ignore_index`` such as 255 or -100) leaves its pixel out. ``C.sum(0)`` is the confusion
    matrix over every pixel.
    """
    n = np.shape(truth)[0]
    truth = np.asarray(truth, dtype=np.int64).reshape(n, -1)
    predicted = np.asarray(predicted, dtype=np.int64).reshape(n, -1)
    if truth.shape != predicted.shape:
        raise ValueError(f"class maps of {truth.shape[1]} and {predicted.shape[1]} pixels a sample")
    keep = (truth >= 0) & (truth < k)
    sample = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], truth.shape)
    index = (sample * k + truth) * k + predicted
    return np.bincount(index[keep], minlength=n * k * k).reshape(n, k, k)


def _defined_ratio(num, den) -> np.ndarray:
    # NaN where undefined (a class neither present nor predicted), as zero_division=np.nan
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def iou(cm: np.ndarray) -> np.ndarray:
    """Intersection over union (Jaccard index) of each class from a confusion matrix (..., K, K):
    IoU_k = TP_k / (TP_k + FP_k + FN_k) = |true k ∩ predicted k| / |true k ∪ predicted k|.

    Where defined, scikit-learn's ``jaccard_score(..., average=None)``; for a class neither in
    the truth nor predicted (0/0) NaN, where scikit-learn answers its ``zero_division`` (0 or 1),
    so that the means can leave it out.
    """
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    return _defined_ratio(tp, cm.sum(-1) + cm.sum(-2) - tp)


def dice(cm: np.ndarray) -> np.ndarray:
    """The Dice coefficient of each class from a confusion matrix (..., K, K):
    Dice_k = 2 TP_k / (2 TP_k + FP_k + FN_k) = 2 |T ∩ P| / (|T| + |P|), the F1 score of class k
    over pixels (scikit-learn's ``f1_score(..., average=None)``); Dice = 2 IoU / (1 + IoU).

    NaN for a class neither in the truth nor predicted, as :func:`iou` (``f1_score``'s
    ``zero_division=np.nan``).
    """
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    return _defined_ratio(2 * tp, cm.sum(-1) + cm.sum(-2))


def mean_defined(values, axis=-1):
    """The mean over the defined (not NaN) entries; NaN where none is."""
    values = np.asarray(values, dtype=float)
    count = (~np.isnan(values)).sum(axis)
    total = np.where(np.isnan(values), 0.0, values).sum(axis)
    return np.divide(total, count, out=np.full(np.shape(total), np.nan), where=count > 0)


def segmentation(cm: np.ndarray) -> dict:
    """Scores of a pixel confusion matrix (K, K): ``pixel_accuracy`` (trace / pixels), ``iou`` and
    ``dice`` per class (arrays, NaN where undefined), ``mean_iou`` and ``mean_dice`` (over the
    classes where they are defined: a class absent from a set of masks and never predicted
    neither helps nor hurts)."""
    each_iou, each_dice = iou(cm), dice(cm)
    return {"pixel_accuracy": float(np.trace(cm) / max(1, cm.sum())),
            "iou": each_iou, "dice": each_dice,
            "mean_iou": float(mean_defined(each_iou)), "mean_dice": float(mean_defined(each_dice))}


# ---------------------------------------------------------------- restoration (pictures)
def data_range(truth) -> float:
    """The range PSNR and SSIM measure errors against: 1.0 when the targets lie in [0, 1]
    (pictures read as bpcli reads them, 8-bit / 255 or 16-bit / 65535), else the targets' own
    max − min (scikit-image's advice for floats: never the dtype's range)."""
    truth = np.asarray(truth)
    lo, hi = float(truth.min(initial=0.0)), float(truth.max(initial=0.0))
    if lo >= 0.0 and hi <= 1.0:
        return 1.0
    return hi - lo if hi > lo else 1.0


def psnr(truth, predicted, data_range: float) -> np.ndarray:
    """Peak signal-to-noise ratio of each picture (N,), in dB: 10 log10(R² / MSE) with R =
    ``data_range``, MSE over the picture's pixels and channels; scikit-image's
    ``peak_signal_noise_ratio(truth[i], predicted[i], data_range=R)``. Infinite for a picture
    predicted exactly."""
    y, p = _columns(truth, predicted)
    mse = ((p - y) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range ** 2 / mse)


def ssim_window(shape) -> int | None:
    """The side of SSIM's window for pictures (C, H, W): scikit-image's 7, or the largest odd side
    that fits a smaller picture; None below 3 pixels, where SSIM has no window."""
    side = min(shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    return win if win >= 3 else None


def ssim(truth, predicted, data_range: float) -> np.ndarray | None:
    """Structural similarity of each picture (N,) of pictures (N, C, H, W), as scikit-image's
    ``structural_similarity(truth[i], predicted[i], data_range=R, channel_axis=0)`` (channels
    scored apart and averaged; one channel passed as (H, W)), with :func:`ssim_window`'s window.
    None when the pictures are under 3 pixels on a side."""
    from skimage.metrics import structural_similarity

    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    win = ssim_window(truth.shape)
    if win is None:
        return None
    one = truth.shape[1] == 1
    return np.array([structural_similarity(t[0] if one else t, p[0] if one else p,
                                           data_range=data_range, win_size=win,
                                           channel_axis=None if one else 0)
                     for t, p in zip(truth, predicted)])


def pixel_mae(truth, predicted) -> float:
    """Mean absolute error over every pixel of every picture (the targets' unit)."""
    return float(np.abs(np.asarray(predicted, dtype=float) - np.asarray(truth, dtype=float)).mean())


def pixel_rmse(truth, predicted) -> float:
    """√(mean squared error over every pixel of every picture): the root of what mse trains on."""
    d = np.asarray(predicted, dtype=float) - np.asarray(truth, dtype=float)
    return float(np.sqrt((d ** 2).mean()))
