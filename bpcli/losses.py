"""Losses: what a spec's ``loss:`` names, each with how it reads labels and how it scores.

``build(b, f, y)`` emits the loss's primitives on the network output ``f``
(shape ``(N, outputs)``) and the prepared labels ``y``; ``labels(y, out_shape)``
checks and converts the user's labels into what ``build`` expects, raising a
plain message on labels that cannot be right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .schema import Invalid, Param


@dataclass(frozen=True)
class LossDef:
    name: str
    params: tuple[Param, ...]
    doc: str
    build: Callable           # (builder, f, y) -> scalar Var
    label_shape: Callable     # output shape -> label input shape, or None when there are no labels
    labels: Callable          # (raw labels, output shape) -> prepared array; raises Invalid
    accuracy: Callable | None  # (output, prepared labels) -> fraction correct
    check_output: Callable = lambda shape: None


LOSSES: dict[str, LossDef] = {}


def _register(d: LossDef):
    LOSSES[d.name] = d


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


def _logistic(b, f, y):
    # mean over samples of ln(1 + exp(-y f)); softplus keeps it finite for any f
    return b.apply("softplus", -(y * f)).mean()


_register(LossDef(
    "logistic", (), "mean ln(1 + exp(-y f)) over samples, y in {-1, +1} (0/1 accepted, 0 read as -1); "
    "the lecture's loss. Needs 1 output.",
    _logistic, lambda s: (None, 1), _pm1_labels,
    lambda f, y: float(np.mean(np.where(f > 0, 1.0, -1.0) == y)), _one_output))


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


_register(LossDef(
    "mse", (), "mean squared error over all elements: mean((f - y)^2).",
    lambda b, f, y: ((f - y) ** 2).mean(), lambda s: s, _real_labels, None))


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


def _softmax_ce(b, f, y):
    # -mean over samples of log softmax(f)[label]; labels arrive one-hot
    return -(y * b.apply("log_softmax", f, axis=1)).sum(axis=1).mean()


def _two_d(shape):
    if len(shape) != 2 or shape[1] < 2:
        raise Invalid(f"needs a network output of K >= 2 class scores per sample, but the last "
                      f"layer gives {shape[1:]}; end the layers with dense: {{units: K}}")


_register(LossDef(
    "softmax_cross_entropy", (), "mean over samples of -log softmax(f)[label], labels 0..K-1; "
    "computed as log-softmax, stable for large logits.",
    _softmax_ce, lambda s: s, _class_labels,
    lambda f, y: float(np.mean(np.argmax(f, axis=1) == np.argmax(y, axis=1))), _two_d))

_register(LossDef(
    "sum_squares", (), "sum of the squared outputs, ||f||^2, no labels: the lecture's "
    "L = ||W2 ReLU(W1 X)||^2.",
    lambda b, f, y: (f ** 2).sum(), lambda s: None, lambda y, s: None, None))
