"""Scores of predictions against the truth, in plain NumPy, each as scikit-learn defines it.

Classification takes class indices 0..K-1 (``truth``, ``predicted``: shape (N,)); regression
takes arrays of shape (N,) or (N, outputs). The tests check every function against its
scikit-learn namesake (``confusion_matrix``, ``precision_recall_fscore_support`` with
``zero_division=0``, ``f1_score(average="macro")``, ``roc_auc_score`` (binary, and
``multi_class="ovr", average="macro"``), ``mean_absolute_error``, ``root_mean_squared_error``,
``r2_score``).
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
