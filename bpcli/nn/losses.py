"""Losses: what a spec's ``loss:`` names, each with how it reads labels and how it scores.

``build(b, f, y, cfg)`` emits the loss's primitives on the network output ``f``
(shape ``(N, outputs)``, or ``(N, K, *S)`` for a picture's K channels over its positions S),
the prepared labels ``y`` and the loss's resolved fields ``cfg``; ``labels(y, out_shape, cfg)``
checks and converts the user's labels into what ``build`` expects, raising a
plain message on labels that cannot be right.

Label maps (segmentation): a class index per position is prepared as (N, 1, *S), the class
axis kept with length 1, floating in the model's dtype, an ignored position written as
:data:`IGNORED` (-1); a 0/1 mask of a one-channel output is the same array. The losses read them
with the ``gather`` / ``lookup`` primitives (``engine/gather_rules.py``), never as one-hot copies
(Dice alone builds its indicator per batch: its sums are per class).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..core.fields import (Invalid, Param, Table, fraction, nonneg_float, number_json, optional,
                           positive_float, quoted, with_json_schema)


@dataclass(frozen=True)
class Classifier:
    """What a classification loss's output means: which class it picks, and how sure it is.

    ``names(output_shape)`` gives the classes' default names in index order (a run's
    ``data.classes`` names win); ``decide(output)`` the predicted class index (N,) and
    ``truth(prepared labels)`` the true one (N,); ``probabilities(output)`` the class
    probabilities (N, K), None when the loss defines none (hinge); ``score(output)``, for a binary
    classifier only, the positive class's score (N,), higher meaning more likely positive: what
    ROC AUC ranks.

    Per position (segmentation: an output (N, K, *S)), ``decide`` and ``truth`` give (N, *S), a
    class per pixel, and ``probabilities`` (N, K, *S), the class axis still second; ``truth`` is
    :data:`IGNORED` (-1) at an ignored pixel, which no score counts. sigmoid_cross_entropy decides
    each output element yes/no: (N, K, *S) for K > 1 labels (multi-label), a channel axis of 1
    dropped.
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
    build: Callable           # (builder, f, y, fields) -> scalar Var; raises Invalid
    label_shape: Callable     # output shape -> label input shape, or None when there are no labels
    labels: Callable          # (raw labels, output shape, fields=None) -> prepared array; raises
    #                           Invalid (fields None: the loss's defaults)
    accuracy: Callable | None  # (output, prepared labels) -> fraction correct
    example_labels: Callable  # (rng, n, output shape) -> raw labels a user could give, or None
    check_output: Callable = lambda shape: None
    reduction: str = "mean"    # "sum": the loss adds up over samples (chunked evaluation needs it)
    params: tuple[Param, ...] = ()
    classifier: Classifier | None = None  # the classes the output picks from; None: no classes
    regressor: bool = False    # the output estimates the labels themselves (MAE, RMSE, R² apply)
    onnx_probabilities: Callable | None = None  # (g, output, rank) -> name: the probabilities
    #   as ONNX nodes for bpcli export (layers.py's writer g; rank: the output's, batch axis counted)


LOSSES = Table("loss")



def _one_output(shape):
    if len(shape) != 2 or shape[1] != 1:
        raise Invalid(f"needs a network output of 1 value per sample, but the last layer gives "
                      f"{shape[1:]}; end the layers with dense: {{units: 1}}")


def _pm1_labels(y, out_shape, cfg=None):
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
    onnx_probabilities=lambda g, f, rank: g.op("Concat", g.op("Sigmoid", g.op("Neg", f)),
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


def _real_labels(y, out_shape, cfg=None):
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


IGNORED = -1  # a position left out (ignore_index's) in prepared label maps and in Classifier.truth


def _found(values, ok) -> str:
    """'found [..]' naming the values that are not ok, and every distinct value seen."""
    bad = values[~ok]
    more = f" and {bad.size - 5} more" if bad.size > 5 else ""
    seen = values[:12].tolist() + (["..."] if values.size > 12 else [])
    return f"found {bad[:5].tolist()}{more} (the values: {seen})"


def _numbers(y, what):
    y = np.asarray(y)
    if y.dtype == bool:
        return y.astype(np.float64)
    if not np.issubdtype(y.dtype, np.number):
        raise Invalid(f"{what} must be numbers, got dtype {y.dtype}")
    return y


def _class_labels(y, out_shape, ignore_index=None):
    y = np.asarray(y)
    k = out_shape[1]
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise Invalid(f"labels must be one class index per sample, got shape {y.shape}")
    y = y.reshape(-1)
    kept = np.ones(y.shape, dtype=bool) if ignore_index is None else y != ignore_index
    c = y[kept]
    if c.size and (not np.all(np.equal(np.mod(c, 1), 0)) or c.min() < 0 or c.max() >= k):
        bad = np.unique(c[(np.mod(c, 1) != 0) | (c < 0) | (c >= k)])[:5]
        also = "" if ignore_index is None else f" (or ignore_index {ignore_index})"
        raise Invalid(f"labels must be integers 0..{k - 1} for {k} outputs{also}, found "
                      f"{bad.tolist()}")
    one_hot = np.eye(k)[np.where(kept, y, 0).astype(int)]
    one_hot[~kept] = 0.0  # an ignored sample: a row of zeros, counted nowhere
    return one_hot


def _as_map(y, out_shape, what):
    """Per-position labels (N, *S) or (N, 1, *S) for an output (N, K, *S), as (N, 1, *S)."""
    y = _numbers(y, what)
    spatial = tuple(out_shape[2:])
    if y.shape[1:] == spatial:
        return y.reshape((y.shape[0], 1) + spatial)
    if y.shape[1:] == (1,) + spatial:
        return y
    raise Invalid(f"{what} of shape {y.shape[1:]} per sample do not fit the network output "
                  f"{tuple(out_shape[1:])}: give one per position, {spatial}")


def _index_map(y, out_shape, ignore_index=None):
    """Class index maps: integers 0..K-1 (or ignore_index, written IGNORED), as (N, 1, *S)."""
    y = _as_map(y, out_shape, "label maps")
    k = out_shape[1]
    values = np.unique(y)
    ok = (np.mod(values, 1) == 0) & (values >= 0) & (values < k)
    if ignore_index is not None:
        ok |= values == ignore_index
    if not ok.all():
        also = "" if ignore_index is None else f" (or ignore_index {ignore_index})"
        raise Invalid(f"label maps must hold class indices 0..{k - 1} for {k} output channels"
                      f"{also}, {_found(values, ok)}")
    out = y.astype(np.float64)
    if ignore_index is not None:
        out[y == ignore_index] = IGNORED
    return out


def _binary_targets(y, out_shape, cfg=None):
    """0/1 targets (probabilities in [0, 1] too) of the output's shape; for one channel, masks
    (N, *S) without the channel axis as well."""
    y = _numbers(y, "targets")
    want = tuple(out_shape[1:])
    if y.shape[1:] != want:
        if out_shape[1] != 1 or y.shape[1:] != want[1:]:
            raise Invalid(f"targets of shape {y.shape[1:]} per sample do not fit the network "
                          f"output {want}")
        y = y.reshape((y.shape[0],) + want)
    values = np.unique(y)
    ok = (values >= 0) & (values <= 1)
    if not ok.all():
        raise Invalid(f"targets must be 0/1 (or probabilities in [0, 1]), {_found(values, ok)}")
    return y.astype(np.float64)


def _map_shape(s):
    """A label per position: the output's shape with a class axis of 1 (N, 1, *S)."""
    return (s[0], 1, *s[2:])


def _index_examples(rng, n, out_shape):
    """Class indices per sample (N,) or per position (N, *S) (0/1 for one channel)."""
    return rng.integers(0, max(2, out_shape[1]), (n, *out_shape[2:]))


def _truth(y):
    """The true class from prepared labels: maps (N, 1, *S) -> (N, *S) (a 0/1 mask's nearest,
    IGNORED kept); one-hot rows (N, K) -> (N,), IGNORED for a row of zeros."""
    y = np.asarray(y)
    if y.shape[1] == 1:
        return np.floor(y[:, 0] + 0.5).astype(np.int64)
    return np.where(y.any(axis=1), np.argmax(y, axis=1), IGNORED)


def _decide(f):
    """The predicted class: argmax over the channel axis 1; for one channel f > 0 (sigmoid > 1/2)."""
    f = np.asarray(f)
    return (f[:, 0] > 0).astype(np.int64) if f.shape[1] == 1 else np.argmax(f, axis=1)


def _accuracy(f, y):
    """The fraction of samples (or pixels: pixel accuracy) classified right, ignored ones left
    out; nan when every one is ignored."""
    truth = _truth(y)
    kept = truth != IGNORED
    if not kept.any():
        return float("nan")
    return float(np.mean(_decide(f)[kept] == truth[kept]))


def _bce_probabilities(f):
    """[1 - sigmoid(f), sigmoid(f)] along the channel axis 1: (N, 2, *S) for one channel."""
    return np.concatenate([sigmoid(-f), sigmoid(f)], axis=1)


def _cross_entropy(b, f, y, eps=0.0, w=None):
    """PyTorch's cross_entropy(f, y, weight=w, ignore_index=..., label_smoothing=eps), mean:

        -sum_i w[y_i] log p_i[y_i] / sum_i w[y_i],   p_i = softmax(f_i) over the K channels,

    over the kept positions i (samples, or samples x pixels); with label smoothing,
    (1 - eps) times that plus eps/K times sum_i sum_k -w_k log p_i[k] / sum_i w[y_i] (torch's
    ``cross_entropy`` source, ``Reduction::Mean``). ``y``: class indices (N, 1, *S) (IGNORED: left
    out) or one-hot rows (N, K) (a row of zeros: left out). All positions ignored: nan, as torch.
    """
    k = f.shape[1]
    logp = b.apply("log_softmax", f, axis=1)
    wlogp = logp if w is None else b.apply("weigh", logp, weights=w, axis=1)
    if y.shape[1] == 1:  # indices: picked, never as a one-hot copy
        picked = b.apply("gather", wlogp, y, axis=1)
        kept = b.apply("lookup", y, table=(1.0,) * k, axis=1)
        weight = kept if w is None else b.apply("lookup", y, table=w, axis=1)
    else:
        picked = (y * wlogp).sum(axis=1, keepdims=True)
        kept = y.sum(axis=1, keepdims=True)
        weight = kept if w is None else b.apply("weigh", y, weights=w, axis=1).sum(axis=1,
                                                                                   keepdims=True)
    total = weight.sum()
    loss = -picked.sum() / total
    if eps:
        smooth = -(wlogp.sum(axis=1, keepdims=True) * kept).sum() / total
        loss = (1.0 - eps) * loss + (eps / k) * smooth
    return loss


def _class_weights_of(cfg, k):
    w = cfg.get("weights")
    if w is not None and len(w) != k:
        raise Invalid(f"weights lists {len(w)} numbers, but the output has {k} classes: give one "
                      f"weight per class", key="weights")
    return None if w is None else tuple(float(v) for v in w)


def _softmax_ce(b, f, y, cfg):
    eps, ignore = cfg["label_smoothing"], cfg.get("ignore_index")
    w = _class_weights_of(cfg, f.shape[1])
    if f.ndim == 2 and w is None and ignore is None:
        # the first program, kept bit for bit: -mean over samples of sum_k t_k log softmax(f)_k,
        # labels one-hot; label smoothing eps mixes in the uniform distribution,
        # t = (1 - eps) onehot + eps / K, as torch does
        if eps:
            y = (1.0 - eps) * y + eps / f.shape[1]
        return -(y * b.apply("log_softmax", f, axis=1)).sum(axis=1).mean()
    return _cross_entropy(b, f, y, eps, w)


def _ce_labels(y, out_shape, cfg=None):
    ignore = (cfg or {}).get("ignore_index")
    if len(out_shape) == 2:
        return _class_labels(y, out_shape, ignore)
    return _index_map(y, out_shape, ignore)


def softmax(f):
    """exp(f_k) / sum_j exp(f_j) along axis 1, shifted by the max so no exp overflows; any rank."""
    e = np.exp(f - f.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _two_d(shape):
    if len(shape) < 2 or shape[1] < 2:
        raise Invalid(f"needs a network output of K >= 2 class scores per sample, but the last "
                      f"layer gives {shape[1:]}; end the layers with dense: {{units: K}}"
                      + (f" (for label maps: a convolution with channels: K)"
                         if len(shape) > 2 else ""))


@with_json_schema({"type": "integer"})
def _integer(v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise Invalid(f"must be an integer, got {quoted(v)}")
    return v


def _numbers_list(item, what):
    def check(v):
        if not isinstance(v, (list, tuple)) or not v:
            raise Invalid(f"must be a list of {what}, got {quoted(v)}")
        return [item(x) for x in v]
    return check


@with_json_schema({"type": "array", "items": number_json(minimum=0), "minItems": 1})
def _class_weights(v):
    out = _numbers_list(nonneg_float, "numbers >= 0, one per class")(v)
    if not any(out):
        raise Invalid(f"must hold a number > 0, got {quoted(v)}")
    return out


_CLASSES = Classifier(names=lambda shape: [str(k) for k in range(shape[1])],
                      decide=_decide, truth=_truth, probabilities=softmax)

LOSSES.add(LossDef(
    "softmax_cross_entropy",
    doc="mean over samples (and pixels) of -log softmax(f)[label] over the channel axis, as "
    "torch's cross_entropy; labels 0..K-1 per sample, or a label map (H, W) of them per "
    "(K, H, W) output (any spatial rank); computed as log-softmax, stable for large logits.",
    build=_softmax_ce,
    label_shape=lambda s: s if len(s) == 2 else _map_shape(s),
    labels=_ce_labels,
    accuracy=_accuracy,
    example_labels=lambda rng, n, out_shape: rng.integers(0, out_shape[1], (n, *out_shape[2:])),
    check_output=_two_d,
    classifier=_CLASSES,
    # Softmax on axis 1 of a (N, K, *S) output is per pixel from opset 13 (earlier opsets
    # flatten the axes after 1 into it)
    onnx_probabilities=lambda g, f, rank: g.op("Softmax", f, axis=1, since=13 if rank > 2 else 1),
    params=(Param("label_smoothing", fraction, 0.0, "eps: the target is (1 - eps) one-hot + eps/K "
                                             "uniform, as torch's cross_entropy (on label maps "
                                             "too, per pixel)"),
            Param("ignore_index", optional(_integer), None,
                  "a label value left out of the loss, the mean and the accuracy (torch's "
                  "ignore_index, whose default is -100; 255 marks borders in many segmentation "
                  "sets); null: none", implicit=True),
            Param("weights", optional(_class_weights), None,
                  "one weight per class: the mean becomes sum w[y] (-log p[y]) / sum w[y], as "
                  "torch's cross_entropy(weight=); null: all 1", implicit=True))))


# ---------------------------------------------------------------- binary, Dice, their sum
def _bce(b, f, t, pos_weight=None):
    # torch's binary_cross_entropy_with_logits, mean over all elements:
    # (1 - t) f + (1 + (pw - 1) t) ln(1 + e^-f); softplus keeps ln(1 + e^-f) finite for any f
    sp = b.apply("softplus", -f)
    if isinstance(pos_weight, float):
        sp = (1.0 + (pos_weight - 1.0) * t) * sp
    elif pos_weight is not None:
        if len(pos_weight) != f.shape[1]:
            raise Invalid(f"pos_weight lists {len(pos_weight)} numbers, but the output has "
                          f"{f.shape[1]} channels: give one, or one per channel",
                          key="pos_weight")
        sp = (1.0 + b.apply("weigh", t, weights=tuple(p - 1.0 for p in pos_weight), axis=1)) * sp
    return ((1.0 - t) * f + sp).mean()


@with_json_schema({"anyOf": [number_json(exclusiveMinimum=0),
                             {"type": "array", "items": number_json(exclusiveMinimum=0),
                              "minItems": 1}]})
def _pos_weight(v):
    if isinstance(v, (list, tuple)):
        return _numbers_list(positive_float, "numbers > 0, one per channel")(v)
    return positive_float(v)


def _bce_decide(f):
    f = np.asarray(f)
    return (f[:, 0] if f.shape[1] == 1 else f) > 0


LOSSES.add(LossDef(
    "sigmoid_cross_entropy",
    doc="binary cross-entropy on logits, mean over all elements of -t ln sigmoid(f) - (1 - t) "
    "ln(1 - sigmoid(f)), as torch's binary_cross_entropy_with_logits (softplus form, stable for "
    "large f); targets 0/1 of the output's shape: one-channel masks (1, H, W) (or (H, W)), "
    "multi-label outputs (K,) with K 0/1 targets.",
    build=lambda b, f, y, cfg: _bce(b, f, y, cfg["pos_weight"]),
    label_shape=lambda s: s,
    labels=_binary_targets,
    accuracy=lambda f, y: float(np.mean((np.asarray(f) > 0) == (np.asarray(y) >= 0.5))),
    example_labels=lambda rng, n, out_shape: rng.integers(0, 2, (n, *out_shape[1:])),
    # each output element a yes/no: class 1 where f > 0; a channel axis of 1 dropped
    classifier=Classifier(names=lambda shape: ["0", "1"],
                          decide=lambda f: _bce_decide(f).astype(np.int64),
                          truth=lambda y: ((y[:, 0] if y.shape[1] == 1 else y) >= 0.5)
                          .astype(np.int64),
                          probabilities=_bce_probabilities),
    onnx_probabilities=lambda g, f, rank: g.op("Concat", g.op("Sigmoid", g.op("Neg", f)),
                                         g.op("Sigmoid", f), axis=1),
    params=(Param("pos_weight", optional(_pos_weight), None,
                  "the positive targets' weight (torch's pos_weight): a number, or one per "
                  "channel (laid along the channel axis); null: 1"),)))


def _dice(b, f, y, smooth):
    """Soft Dice, 1 - mean over classes c of (2 sum p t + smooth) / (sum p + sum t + smooth),
    each sum over the batch and every position of class c (MONAI's DiceLoss with batch=True,
    smooth_nr = smooth_dr = smooth, include_background=True). K >= 2: p = softmax over the
    channels, t the one-hot of the label map (built per batch: its sums are per class);
    one channel: p = sigmoid(f), t the 0/1 mask."""
    k = f.shape[1]
    if k == 1:
        p, t = b.apply("sigmoid", f), y
    else:
        p = b.apply("exp", b.apply("log_softmax", f, axis=1))
        t = b.apply("lookup", y, table=tuple(tuple(r) for r in np.eye(k).tolist()), axis=1)
    axes = (0,) + tuple(range(2, f.ndim))
    overlap = (p * t).sum(axis=axes)
    size = p.sum(axis=axes) + t.sum(axis=axes)
    return 1.0 - ((2.0 * overlap + smooth) / (size + smooth)).mean()


def _dice_labels(y, out_shape, cfg=None):
    if out_shape[1] == 1:
        return _binary_targets(y, out_shape)
    return _index_map(y, out_shape)


def _dice_ce(b, f, y, cfg):
    # MONAI's DiceCELoss: lambda_dice Dice + lambda_ce CE, CE being cross_entropy (binary
    # cross-entropy on logits for one channel), each over the same batch
    ce = _bce(b, f, y) if f.shape[1] == 1 else _cross_entropy(b, f, y)
    return cfg["dice_weight"] * _dice(b, f, y, cfg["smooth"]) + cfg["ce_weight"] * ce


def _one_or_more(shape):
    if len(shape) < 2:
        raise Invalid(f"needs a network output with a channel axis, got {shape[1:]}")


# K >= 2 channels: a class per channel, argmax; one channel: class 1 where f > 0
_CHANNELS = Classifier(
    names=lambda shape: ["0", "1"] if shape[1] == 1 else [str(k) for k in range(shape[1])],
    decide=_decide, truth=_truth,
    probabilities=lambda f: _bce_probabilities(f) if f.shape[1] == 1 else softmax(f))
_SMOOTH = Param("smooth", nonneg_float, 1e-5, "added to the overlap and to the sizes (MONAI's "
                                              "smooth_nr and smooth_dr)")
_DICE = dict(label_shape=_map_shape, labels=_dice_labels, accuracy=_accuracy,
             example_labels=_index_examples, check_output=_one_or_more, classifier=_CHANNELS)
# no ONNX probabilities: softmax or sigmoid by the channel count, which the head is not told

LOSSES.add(LossDef(
    "dice",
    doc="soft Dice loss, 1 - mean over classes of (2 sum p t + smooth) / (sum p + sum t + "
    "smooth), sums over the batch and the pixels (MONAI's DiceLoss, batch=True); K >= 2 "
    "channels: p = softmax, labels a class index map; 1 channel: p = sigmoid, a 0/1 mask.",
    build=lambda b, f, y, cfg: _dice(b, f, y, cfg["smooth"]),
    **_DICE,
    params=(_SMOOTH,)))

LOSSES.add(LossDef(
    "dice_cross_entropy",
    doc="dice_weight Dice + ce_weight cross-entropy (softmax; binary on logits for 1 channel), "
    "as MONAI's DiceCELoss: the recipe of many segmentation networks.",
    build=_dice_ce,
    **_DICE,
    params=(Param("dice_weight", nonneg_float, 1.0, "the Dice term's weight (lambda_dice)"),
            Param("ce_weight", nonneg_float, 1.0, "the cross-entropy term's weight (lambda_ce)"),
            _SMOOTH)))


LOSSES.add(LossDef(
    "sum_squares",
    doc="sum of the squared outputs, ||f||^2, no labels: the lecture's "
    "L = ||W2 ReLU(W1 X)||^2.",
    build=lambda b, f, y, cfg: (f ** 2).sum(),
    label_shape=lambda s: None,
    labels=lambda y, s, cfg=None: None,
    accuracy=None,
    example_labels=lambda rng, n, out_shape: None,
    reduction="sum"))
