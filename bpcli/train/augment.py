"""Data augmentation: random changes to each training batch, never to validation or eval data.

``training.augment`` names the changes; each sample gets its own draw from the
trainer's noise generator (seeded by the spec's ``seed``, saved in every
checkpoint, so a resumed run draws what an uninterrupted one would). They act
on the samples as the data holds them, before ``preprocess`` (as torchvision's
transforms come before ``Normalize``), in this order: flip, rotate90, shift,
scale, noise. The last axis of a sample is its length (1-D) or width (2-D).
"""

from __future__ import annotations

import numpy as np

from ..core.fields import Invalid, Param, with_json_schema, number_json, quoted, boolean, nonneg_float, nonneg_int, one_of, optional


@with_json_schema({"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2,
        "maxItems": 2})
def _range(v):
    if (not isinstance(v, (list, tuple)) or len(v) != 2
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in v)
            or not 0 < v[0] <= v[1]):
        raise Invalid(f"must be a range [low, high] with 0 < low <= high, got {quoted(v)}")
    return [float(v[0]), float(v[1])]


@with_json_schema({"type": "object", "properties": {"std": number_json(minimum=0)}, "required": ["std"],
        "additionalProperties": False})
def _noise(v):
    if not isinstance(v, dict) or set(v) != {"std"}:
        raise Invalid(f"must be a mapping {{std: S}}, got {quoted(v)}")
    return {"std": nonneg_float(v["std"])}


AUGMENT = (
    Param("flip", boolean, False, "reverse each sample along its last axis with probability 1/2: "
          "time reversal (1-D), a horizontal flip (2-D)"),
    Param("rotate90", boolean, False, "rotate each image by 0, 90, 180 or 270 degrees, equally "
          "likely (2-D, square images only)"),
    Param("shift", nonneg_int, 0, "move each sample by a whole number of positions drawn from "
          "-shift..shift (along the length; along height and width independently in 2-D)"),
    Param("shift_fill", one_of("zero", "wrap"), "zero", "what enters at the edge a shift empties: "
          "zero (zeros, as a translation with zero fill) or wrap (what left at the other edge, "
          "np.roll)"),
    Param("scale", optional(_range), None, "multiply each sample by a factor drawn uniformly from "
          "[low, high] (its amplitude, not its size)"),
    Param("noise", optional(_noise), None, "{std: S}: add Gaussian noise of standard deviation S "
          "to every value"),
)


def check(cfg: dict, input_shape) -> None:
    """A change that cannot apply to samples of ``input_shape`` raises :class:`Invalid` (its key)."""
    shape = tuple(input_shape)
    if cfg["rotate90"]:
        if len(shape) != 3:
            raise Invalid(f"rotate90 needs images (input [channels, height, width]), the input is "
                          f"{list(shape)}", key="rotate90")
        if shape[1] != shape[2]:
            raise Invalid(f"rotate90 needs square images, the input is {shape[1]}×{shape[2]}",
                          key="rotate90")
    spatial = shape[1:] if len(shape) == 3 else shape[-1:]
    if cfg["shift"] >= min(spatial):
        raise Invalid(f"shift {cfg['shift']} must be smaller than the sample's size "
                      f"{min(spatial)}", key="shift")


def _spatial_axes(X) -> tuple:
    return (-2, -1) if X.ndim == 4 else (-1,)


def _shift(X, offsets, axis, fill):
    """Each sample moved by its offset along ``axis``: y[i, ..., j] = x[i, ..., j - offset_i]."""
    n, size = X.shape[0], X.shape[axis]
    src = np.arange(size)[None, :] - offsets[:, None]              # (n, size)
    inside = (src >= 0) & (src < size)
    src = src % size
    idx_shape = [n] + [1] * (X.ndim - 1)
    idx_shape[axis] = size
    moved = np.take_along_axis(X, src.reshape(idx_shape), axis=axis)
    if fill == "zero":
        moved *= inside.reshape(idx_shape)
    return moved


def augment(X: np.ndarray, cfg: dict, rng) -> np.ndarray:
    """A new batch: each sample of X (N, *sample) changed by its own random draws."""
    X = np.array(X)  # a copy: the training data itself never changes
    n = X.shape[0]
    if cfg["flip"]:
        flip = rng.random(n) < 0.5
        X[flip] = X[flip][..., ::-1]
    if cfg["rotate90"]:
        turns = rng.integers(0, 4, n)
        for k in (1, 2, 3):
            X[turns == k] = np.rot90(X[turns == k], k, axes=(-2, -1))
    if cfg["shift"]:
        for axis in _spatial_axes(X):
            offsets = rng.integers(-cfg["shift"], cfg["shift"] + 1, n)
            X = _shift(X, offsets, axis, cfg["shift_fill"])
    if cfg["scale"] is not None:
        X *= rng.uniform(*cfg["scale"], n).reshape((n,) + (1,) * (X.ndim - 1)).astype(X.dtype)
    if cfg["noise"] is not None and cfg["noise"]["std"]:
        X += (cfg["noise"]["std"] * rng.standard_normal(X.shape)).astype(X.dtype)
    return X
