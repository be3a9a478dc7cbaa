"""Input preprocessing: statistics of the training split, applied in the graph to every input.

``preprocess: standardize`` makes each group of inputs mean 0 and standard deviation 1,
``minmax`` maps it onto [0, 1]; the groups are batchnorm's: every feature of a ``[features]``
input, every channel (over all its positions) of a ``[channels, length]`` or
``[channels, height, width]`` input. The statistics come from the training split only; the
graph computes (X - shift) / scale with both as model state, so training, validation,
``bpcli eval`` and ``Model.forward`` all apply them, and ``model.npz`` carries them
(``preprocess.shift``, ``preprocess.scale``).
"""

from __future__ import annotations

import numpy as np

from ..core.fields import one_of

PREPROCESS = ("none", "standardize", "minmax")
DOC = ("none, standardize ((x - mean) / std) or minmax ((x - min) / (max - min), onto [0, 1]); per "
       "feature of [F] inputs, per channel of [C, L] and [C, H, W] inputs, with statistics of the "
       "training split only (a group constant to rounding, relative to its values' size, is only "
       "shifted); saved in model.npz and applied to "
       "every input: training, validation, eval")

check = one_of(*PREPROCESS)


def stat_shape(sample_shape) -> tuple:
    """The shape of one statistic: (F,) for [F] inputs, (C, 1) or (C, 1, 1) per channel."""
    sample_shape = tuple(sample_shape)
    if len(sample_shape) == 1:
        return sample_shape
    return (sample_shape[0],) + (1,) * (len(sample_shape) - 1)


def _groups(ndim: int) -> tuple:
    """The axes of X (N, *sample) one statistic reduces over: samples, and positions per channel."""
    return (0,) if ndim == 2 else (0,) + tuple(range(2, ndim))


def statistics(name: str, X, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) in float64 from the training inputs X, read ``chunk`` samples at a time
    (a memory-mapped X stays on disk): mean and std for standardize, min and max - min for minmax.

    A group that is constant up to rounding gets scale 1 (it is only shifted): judged relative to
    its values' size, so 0.1 on every row is constant in float64 as in float32, where dividing by
    its rounding noise (std 2.5e-16) would turn 0.1001 into a thousand standard deviations.
    """
    axes, n = _groups(X.ndim), X.shape[0]
    shape = stat_shape(X.shape[1:])

    def each():
        for i in range(0, n, chunk):
            yield np.asarray(X[i:i + chunk], dtype=np.float64)

    eps = np.finfo(np.float64).eps  # the statistics are summed in float64, whatever X's dtype
    if name == "standardize":
        count = n * int(np.prod(X.shape[1:])) // int(np.prod(shape))
        mean = sum(c.sum(axis=axes) for c in each()) / count
        centred = mean.reshape(shape)
        var = sum(((c - centred) ** 2).sum(axis=axes) for c in each()) / count
        shift, scale = mean, np.sqrt(var)
        # scikit-learn's _is_constant_feature (sklearn/preprocessing/_data.py, after
        # scikit-learn#17794): a variance within the two-pass algorithm's rounding bound
        # (Chan, Golub & LeVeque) is no variance; 0.1 on every row has std ~1e-17 in float64
        constant = var <= count * eps * var + (count * mean * eps) ** 2
    elif name == "minmax":
        shift = np.min([c.min(axis=axes) for c in each()], axis=0)
        high = np.max([c.max(axis=axes) for c in each()], axis=0)
        scale = high - shift
        # a range of a few units in the last place of the values is rounding, not a range
        constant = scale <= 10 * eps * np.maximum(np.abs(shift), np.abs(high))
    else:
        raise ValueError(f"unknown preprocess {name!r}")
    scale = np.where(constant | ~(scale > 0), 1.0, scale)
    return shift.reshape(shape), scale.reshape(shape)
