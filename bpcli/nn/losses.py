"""Losses: what a spec's ``loss:`` names, each with how it reads labels and how it scores.

``build(b, f, y, cfg)`` emits the loss's primitives on the network output ``f``
(shape ``(N, outputs)``), the prepared labels ``y`` and the loss's resolved
fields ``cfg``; ``labels(y, out_shape)``
checks and converts the user's labels into what ``build`` expects, raising a
plain message on labels that cannot be right.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..core.fields import Invalid, Param, Table, fraction, positive_float


@dataclass(frozen=True)
class Classifier:
    """What a classification loss's output means: which class it picks, and how sure it is.

    ``names(output_shape)`` gives the classes' default names in index order (a run's
    ``data.classes`` names win); ``decide(output)`` the predicted class index (N,) and
    ``truth(prepared labels)`` the true one (N,); ``probabilities(output)`` the class
    probabilities (N, K), None when the loss defines none (hinge); ``score(output)``, for a binary
    classifier only, the positive class's score (N,), higher meaning more likely positive: what
    ROC AUC ranks.
    """

    names: Callable
    decide: Callable
    truth: Callable
    probabilities: Callable | None = None
    score: Callable | None = None


@dataclass(frozen=True)
class LossDef:
    name: str
    doc: str
    build: Callable           # (builder, f, y, fields) -> scalar Var
    label_shape: Callable     # output shape -> label input shape, or None when there are no labels
    labels: Callable          # (raw labels, output shape) -> prepared array; raises Invalid
    accuracy: Callable | None  # (output, prepared labels) -> fraction correct
    example_labels: Callable  # (rng, n, output shape) -> raw labels a user could give, or None
    check_output: Callable = lambda shape: None
    reduction: str = "mean"    # "sum": the loss adds up over samples (chunked evaluation needs it)
    params: tuple[Param, ...] = ()
    classifier: Classifier | None = None  # the classes the output picks from; None: no classes
    regressor: bool = False    # the output estimates the labels themselves (MAE, RMSE, R² apply)
    onnx_probabilities: Callable | None = None  # (g, output) -> name: the probabilities as ONNX
    #                                             nodes for bpcli export (layers.py's writer g)


LOSSES = Table("loss")



def _one_output(shape):
    if len(shape) != 2 or shape[1] != 1:
        raise Invalid(f"needs a network output of 1 value per sample, but the last layer gives "
                      f"{shape[1:]}; end the layers with dense: {{units: 1}}")


def _pm1_labels(y, out_shape):
    y = np.asarray(y)
    values = np.unique(y)
    if not np.isin(values, [-1, 0, 1]).all():
        bad = values[~np.isin(values, [-1, 0, 1])][:5]
        raise Invalid(f"labels must be -1/+1 (or 0/1, 0 read as -1), found {bad.tolist()}")
    return np.where(y.reshape(-1, 1) > 0, 1.0, -1.0)


def absolute(b, x):
    # |x| = relu(x) + relu(-x): subgradient sign(x), 0 at exactly 0, as torch.abs
    return b.apply("relu", x) + b.apply("relu", -x)


def _pm1_examples(rng, n, out_shape):
    return rng.choice([-1, 1], n)


def _real_examples(rng, n, out_shape):
    return rng.standard_normal((n, *out_shape[1:]))


def _sign_accuracy(f, y):
    return float(np.mean(np.where(f > 0, 1.0, -1.0) == y))


def sigmoid(f):
    """1 / (1 + exp(-f)), elementwise, finite for any f (exp of -softplus(-f))."""
    return np.exp(-np.logaddexp(0.0, -f))


# +-1 labels: class 0 is -1 (negative), class 1 is +1 (positive); the output's sign decides
_SIGN = Classifier(names=lambda shape: ["-1", "+1"],
                   decide=lambda f: (f[:, 0] > 0).astype(np.int64),
                   truth=lambda y: (y[:, 0] > 0).astype(np.int64),
                   score=lambda f: f[:, 0])


# what the two ±1-label losses share: one score per sample, labels ±1, accuracy by sign
_PM1 = dict(label_shape=lambda s: (None, 1), labels=_pm1_labels, accuracy=_sign_accuracy,
            example_labels=_pm1_examples, check_output=_one_output)


def _logistic(b, f, y, cfg):
    # mean over samples of ln(1 + exp(-y f)); softplus keeps it finite for any f
    return b.apply("softplus", -(y * f)).mean()


LOSSES.add(LossDef(
    "logistic",
    doc="mean ln(1 + exp(-y f)) over samples, y in {-1, +1} (0/1 accepted, 0 read as -1); "
    "the lecture's loss. Needs 1 output.",
    build=_logistic,
    **_PM1,
    # the loss is -ln P(y | f) with P(+1 | f) = sigmoid(f): its probabilities are these
    classifier=replace(_SIGN, probabilities=lambda f: np.hstack([sigmoid(-f), sigmoid(f)])),
    onnx_probabilities=lambda g, f: g.op("Concat", g.op("Sigmoid", g.op("Neg", f)),
                                         g.op("Sigmoid", f), axis=1)))


def _hinge(b, f, y, cfg):
    # mean over samples of max(0, 1 - y f)
    return b.apply("relu", 1.0 - y * f).mean()


LOSSES.add(LossDef(
    "hinge",
    doc="mean max(0, 1 - y f) over samples, y in {-1, +1} (0/1 accepted, 0 read as -1): "
    "the support vector machine's loss; gradient 0 at exactly y f = 1. Needs 1 output.",
    build=_hinge,
    **_PM1,
    classifier=_SIGN))  # a margin, not a likelihood: no probabilities


def _real_labels(y, out_shape):
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.number):
        raise Invalid(f"targets must be numbers, got dtype {y.dtype}")
    want = out_shape[1:]
    if y.shape[1:] == tuple(want):
        return y.astype(float)
    if y.size == y.shape[0] * int(np.prod(want)):
        return y.reshape((y.shape[0],) + tuple(want)).astype(float)
    raise Invalid(f"targets of shape {y.shape[1:]} per sample do not match the network "
                  f"output {tuple(want)}")


LOSSES.add(LossDef(
    "mse",
    doc="mean squared error over all elements: mean((f - y)^2).",
    build=lambda b, f, y, cfg: ((f - y) ** 2).mean(),
    label_shape=lambda s: s,
    labels=_real_labels,
    accuracy=None,
    example_labels=_real_examples,
    regressor=True))

LOSSES.add(LossDef(
    "mae",
    doc="mean absolute error over all elements: mean(|f - y|), as torch's l1_loss; "
    "gradient sign(f - y), 0 where f = y.",
    build=lambda b, f, y, cfg: absolute(b, f - y).mean(),
    label_shape=lambda s: s,
    labels=_real_labels,
    accuracy=None,
    example_labels=_real_examples,
    regressor=True))


def _huber(b, f, y, cfg):
    # with a = |f - y| and q = min(a, delta) = a - relu(a - delta):
    # 0.5 q^2 + delta (a - q) is 0.5 a^2 below delta and delta (a - 0.5 delta) above it
    delta = cfg["delta"]
    a = absolute(b, f - y)
    q = a - b.apply("relu", a - delta)
    return (0.5 * q ** 2 + delta * (a - q)).mean()


LOSSES.add(LossDef(
    "huber",
    doc="mean over all elements of 0.5 (f - y)^2 where |f - y| < delta, else "
    "delta (|f - y| - 0.5 delta), as torch's huber_loss.",
    build=_huber,
    label_shape=lambda s: s,
    labels=_real_labels,
    accuracy=None,
    example_labels=_real_examples,
    regressor=True,
    params=(Param("delta", positive_float, 1.0, "where the loss turns from quadratic to "
                                                  "linear"),)))


def _class_labels(y, out_shape):
    y = np.asarray(y)
    k = out_shape[1]
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise Invalid(f"labels must be one class index per sample, got shape {y.shape}")
    y = y.reshape(-1)
    if y.size and (not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0 or y.max() >= k):
        bad = np.unique(y[(np.mod(y, 1) != 0) | (y < 0) | (y >= k)])[:5]
        raise Invalid(f"labels must be integers 0..{k - 1} for {k} outputs, found {bad.tolist()}")
    return np.eye(k)[y.astype(int)]


def _softmax_ce(b, f, y, cfg):
    # -mean over samples of sum_k t_k log softmax(f)_k, labels arrive one-hot; label smoothing
    # eps mixes in the uniform distribution, t = (1 - eps) onehot + eps / K, as torch does
    eps = cfg["label_smoothing"]
    if eps:
        y = (1.0 - eps) * y + eps / f.shape[1]
    return -(y * b.apply("log_softmax", f, axis=1)).sum(axis=1).mean()


def softmax(f):
    """exp(f_k) / sum_j exp(f_j) along axis 1, shifted by the row's max so no exp overflows."""
    e = np.exp(f - f.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _two_d(shape):
    if len(shape) != 2 or shape[1] < 2:
        raise Invalid(f"needs a network output of K >= 2 class scores per sample, but the last "
                      f"layer gives {shape[1:]}; end the layers with dense: {{units: K}}")


LOSSES.add(LossDef(
    "softmax_cross_entropy",
    doc="mean over samples of -log softmax(f)[label], labels 0..K-1; computed as log-softmax, "
    "stable for large logits.",
    build=_softmax_ce,
    label_shape=lambda s: s,
    labels=_class_labels,
    accuracy=lambda f, y: float(np.mean(np.argmax(f, axis=1) == np.argmax(y, axis=1))),
    example_labels=lambda rng, n, out_shape: rng.integers(0, out_shape[1], n),
    check_output=_two_d,
    classifier=Classifier(names=lambda shape: [str(k) for k in range(shape[1])],
                          decide=lambda f: np.argmax(f, axis=1),
                          truth=lambda y: np.argmax(y, axis=1),
                          probabilities=softmax),
    onnx_probabilities=lambda g, f: g.op("Softmax", f, axis=1),
    params=(Param("label_smoothing", fraction, 0.0, "eps: the target is (1 - eps) one-hot + eps/K "
                                             "uniform, as torch's cross_entropy"),)))

LOSSES.add(LossDef(
    "sum_squares",
    doc="sum of the squared outputs, ||f||^2, no labels: the lecture's "
    "L = ||W2 ReLU(W1 X)||^2.",
    build=lambda b, f, y, cfg: (f ** 2).sum(),
    label_shape=lambda s: None,
    labels=lambda y, s: None,
    accuracy=None,
    example_labels=lambda rng, n, out_shape: None,
    reduction="sum"))
