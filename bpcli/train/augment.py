"""Data augmentation: random changes to each training batch, never to validation or eval data.

``training.augment`` names the changes; each sample gets its own draw from the
trainer's noise generator (seeded by the spec's ``seed``, saved in every
checkpoint, so a resumed run draws what an uninterrupted one would). They act
on the samples as the data holds them, before ``preprocess`` (as torchvision's
transforms come before ``Normalize``), in this order: crop, flip, rotate90, shift,
scale, noise. The last axis of a sample is its length (1-D) or width (2-D).

Targets that are pictures of the input's size (a network whose output has the input's spatial
size: segmentation, restoration; :func:`moved_targets`) get the same draw: the same crop, flip,
turn and shift, so that every target pixel stays on its input pixel. Masks are never
interpolated (every change moves whole pixels; what a shift empties is 0, the background), and
change only where the picture moves: scale and noise are the input's alone. A restoration
target is scaled with its input; noise, which would change the input alone, is refused for it
(:func:`check`).
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


@with_json_schema({"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
        "maxItems": 2})
def _crop(v):
    if (not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v)):
        raise Invalid(f"must be the size of the window, [height, width] (images) or [length] "
                      f"(1-D), in whole positions, got {quoted(v)}")
    return list(v)


AUGMENT = (
    Param("crop", optional(_crop), None, "[height, width] (images) or [length] (1-D): cut a "
          "window of this size at a random place and scale it back up to the input's size by "
          "repeating positions (nearest neighbour, as masks must be), so the input keeps its "
          "shape and a target its pixels: a random zoom in", implicit=True),
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


def check(cfg: dict, input_shape, targets: str | None = None) -> None:
    """A change that cannot apply to samples of ``input_shape`` (or to their ``targets``:
    "masks" or "pictures", :func:`moved_targets`) raises :class:`Invalid` (its key)."""
    shape = tuple(input_shape)
    if cfg["rotate90"]:
        if len(shape) != 3:
            raise Invalid(f"rotate90 needs images (input [channels, height, width]), the input is "
                          f"{list(shape)}", key="rotate90")
        if shape[1] != shape[2]:
            raise Invalid(f"rotate90 needs square images, the input is {shape[1]}×{shape[2]}",
                          key="rotate90")
    spatial = spatial_size(shape)
    if cfg["shift"] >= min(spatial):
        raise Invalid(f"shift {cfg['shift']} must be smaller than the sample's size "
                      f"{min(spatial)}", key="shift")
    crop = cfg.get("crop")
    if crop is not None:
        axes = "[height, width]" if len(spatial) == 2 else "[length]"
        if len(crop) != len(spatial):
            raise Invalid(f"crop needs {len(spatial)} size{'s' * (len(spatial) > 1)}, {axes}, "
                          f"for input {list(shape)}, got {crop}", key="crop")
        if any(c > n for c, n in zip(crop, spatial)):
            raise Invalid(f"crop {crop} must fit in the input's {axes} "
                          f"{list(spatial)}", key="crop")
    if targets == "pictures" and cfg["noise"] is not None and cfg["noise"]["std"]:
        raise Invalid("noise would change the inputs alone, and the targets are pictures the "
                      "network must give back (restoration): each pair would no longer match. "
                      "Leave noise out, or add the noise to the input pictures beforehand",
                      key="noise")


def spatial_size(input_shape) -> tuple:
    """The sizes a sample's position runs over: (height, width) of [channels, height, width],
    (length,) of [channels, length] or [length]."""
    shape = tuple(input_shape)
    return shape[1:] if len(shape) >= 2 else shape


def moved_targets(loss_def, input_shape, output_shape) -> str | None:
    """Which targets move with their inputs: "masks" (a classifier's class index per pixel) or
    "pictures" (a regressor's values per pixel) when the network's output (N, K, *spatial) has
    the input's spatial size, else None (a label per sample: augmentation leaves it)."""
    output_shape = tuple(output_shape)
    if len(output_shape) < 3 or output_shape[2:] != spatial_size(input_shape):
        return None
    if loss_def.classifier is not None:
        return "masks"
    return "pictures" if loss_def.regressor else None


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


def _crop_index(n, size, window, rng):
    """(n, size) source positions: a window of ``window`` at a random start, each position
    repeated to fill ``size`` (nearest neighbour: position i reads floor(i · window / size))."""
    start = rng.integers(0, size - window + 1, n)
    return start[:, None] + (np.arange(size) * window) // size


def _take(X, index, axis):
    """Each sample's own positions along ``axis``: y[i, ..., j] = x[i, ..., index[i, j]]."""
    shape = [X.shape[0]] + [1] * (X.ndim - 1)
    shape[axis] = index.shape[1]
    return np.take_along_axis(X, index.reshape(shape), axis=axis)


def augment(X: np.ndarray, cfg: dict, rng) -> np.ndarray:
    """A new batch: each sample of X (N, *sample) changed by its own random draws."""
    return augment_pairs(X, None, cfg, rng)[0]


def augment_pairs(X: np.ndarray, y, cfg: dict, rng, targets: str | None = None):
    """(X, y) changed alike: each sample of X (N, *sample) by its own random draws, and with
    ``targets`` ("masks": y (N, *spatial); "pictures": y (N, C, *spatial)) each target by its
    sample's draws (module docstring); y is returned as given when ``targets`` is None. The
    draws do not depend on y: a batch with targets draws what one without would."""
    X = np.array(X)  # a copy: the training data itself never changes
    moves = targets is not None and y is not None
    if moves:
        y = np.array(y)
    n = X.shape[0]
    axes = _spatial_axes(X)
    both = (lambda f: (f(X), f(y) if moves else y))  # noqa: E731
    if cfg.get("crop") is not None:
        for axis, window in zip(axes, cfg["crop"]):
            index = _crop_index(n, X.shape[axis], window, rng)
            X, y = both(lambda a: _take(a, index, axis))
    if cfg["flip"]:
        flip = rng.random(n) < 0.5
        X[flip] = X[flip][..., ::-1]
        if moves:
            y[flip] = y[flip][..., ::-1]
    if cfg["rotate90"]:
        turns = rng.integers(0, 4, n)
        for k in (1, 2, 3):
            X[turns == k] = np.rot90(X[turns == k], k, axes=(-2, -1))
            if moves:
                y[turns == k] = np.rot90(y[turns == k], k, axes=(-2, -1))
    if cfg["shift"]:
        for axis in axes:
            offsets = rng.integers(-cfg["shift"], cfg["shift"] + 1, n)
            X, y = both(lambda a: _shift(a, offsets, axis, cfg["shift_fill"]))
    if cfg["scale"] is not None:
        factor = rng.uniform(*cfg["scale"], n)
        X *= factor.reshape((n,) + (1,) * (X.ndim - 1)).astype(X.dtype)
        if moves and targets == "pictures":
            y *= factor.reshape((n,) + (1,) * (y.ndim - 1)).astype(y.dtype)
    if cfg["noise"] is not None and cfg["noise"]["std"]:
        X += (cfg["noise"]["std"] * rng.standard_normal(X.shape)).astype(X.dtype)
    return X, y
