"""Data: built-in synthetic sets, .npz and .csv files, and the train/validation split.

Files are read without executing anything: ``np.load(..., allow_pickle=False)``
and pandas' CSV reader with every value checked to be a number. Problems name
the file and, for CSV, the row and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass
class Dataset:
    X: np.ndarray
    y: np.ndarray | None
    source: str  # shown in messages and summary.json


# ---------------------------------------------------------------- built-in sets
def pulses(n: int, shape, seed: int) -> Dataset:
    """Is there a pulse in this noisy signal? Label 1 (half the samples) when a Gaussian bump is present.

    Each sample is white noise (std 1) of the spec's input shape; a positive
    sample adds a bump of height 2.5 to 4 and width 2 to 5 samples at a random
    place along the last axis (in every channel).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    length = shape[-1]
    X = rng.standard_normal((n,) + shape)
    y = (rng.random(n) < 0.5).astype(np.int64)
    t = np.arange(length)
    centre = rng.uniform(0.1 * length, 0.9 * length, n)
    width = rng.uniform(2.0, 5.0, n)
    height = rng.uniform(2.5, 4.0, n)
    # height · exp(-((t - centre) / width)² / 2), built in one array: a large n needs no
    # more memory than X and one more (n, length) block
    bump = t[None, :] - centre[:, None]
    bump /= width[:, None]
    bump *= bump
    bump *= -0.5
    np.exp(bump, out=bump)
    bump *= (y * height)[:, None]
    X += bump.reshape((n,) + (1,) * (len(shape) - 1) + (length,))
    return Dataset(X, y, f"builtin pulses (n={n}, seed={seed})")


def linear(n: int, shape, seed: int) -> Dataset:
    """y = X w* + 0.1 noise with X, w* standard normal: a regression set for linear models."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n,) + tuple(shape))
    w = rng.standard_normal(int(np.prod(shape)))
    y = X.reshape(n, -1) @ w + 0.1 * rng.standard_normal(n)
    return Dataset(X, y, f"builtin linear (n={n}, seed={seed})")


# Each shape as a signed distance d(dx, dy, r) from its outline (negative inside), in pixels from
# the shape's centre, r its size; the picture is sigmoid(-d / blur): an edge blurred over ~blur px.
def _box(dx, dy, a, b):
    return np.maximum(np.abs(dx) - a, np.abs(dy) - b)


SHAPES = {
    "disc": lambda dx, dy, r: np.hypot(dx, dy) - r,
    "square": lambda dx, dy, r: _box(dx, dy, 0.85 * r, 0.85 * r),
    "cross": lambda dx, dy, r: np.minimum(_box(dx, dy, r, 0.3 * r), _box(dx, dy, 0.3 * r, r)),
    # equilateral, apex up at dy = -1.2 r (rows grow downward), base at dy = 0.6 r
    "triangle": lambda dx, dy, r: np.maximum(dy - 0.6 * r, 0.866 * np.abs(dx) - 0.5 * dy - 0.6 * r),
    "ring": lambda dx, dy, r: np.abs(np.hypot(dx, dy) - 0.8 * r) - 0.25 * r,
}


def shapes(n: int, shape, seed: int, classes: int = 3) -> Dataset:
    """Which shape is in this noisy picture? Label k for the k-th of ``SHAPES`` (disc, square,
    cross, triangle, ring), the first ``classes`` of them, about equally many of each.

    Every image (all channels the same) holds one bright shape of size r = 20-35% of the
    picture's side at a random place (fully inside), its edge blurred over 0.5 to 1 pixel,
    its brightness 0.6 to 1.4, on a background of Gaussian noise with std 0.3.
    """
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(f"shapes draws images: needs input [channels, height, width], "
                         f"got {list(shape)}")
    rng = np.random.default_rng(seed)
    _, h, w = shape
    side = min(h, w)
    y = rng.integers(0, classes, n)
    r = rng.uniform(0.2, 0.35, n) * side
    # centres where the shape fits (at the middle when it cannot)
    cy = (h - 1) / 2 + (rng.random(n) - 0.5) * np.maximum(h - 1 - 2 * r, 0)
    cx = (w - 1) / 2 + (rng.random(n) - 0.5) * np.maximum(w - 1 - 2 * r, 0)
    blur = rng.uniform(0.5, 1.0, n)
    brightness = rng.uniform(0.6, 1.4, n)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    dy, dx = rows - cy[:, None, None], cols - cx[:, None, None]
    X = np.empty((n, h, w))
    for k, name in enumerate(list(SHAPES)[:classes]):
        pick = y == k
        d = SHAPES[name](dx[pick], dy[pick], r[pick, None, None])
        X[pick] = brightness[pick, None, None] / (1 + np.exp(d / blur[pick, None, None]))
    X += 0.3 * rng.standard_normal(X.shape)
    X = np.broadcast_to(X[:, None], (n, *shape)).copy()
    return Dataset(X, y, f"builtin shapes (n={n}, classes={classes}, seed={seed})")


BUILTINS = {"pulses": pulses, "linear": linear, "shapes": shapes}


# ---------------------------------------------------------------- files
def shown(path) -> Path:
    """``path`` as messages show it: relative to the working folder when it lies below it."""
    path = Path(path)
    try:
        return path.relative_to(Path.cwd()) if path.is_absolute() else path
    except ValueError:
        return path


def load_file(path, target: str) -> Dataset:
    """Data from a file or folder (.npz, .csv, a folder of X.npy and y.npy), checked to be finite
    numbers; errors name the file (and, for a CSV, the row and column)."""
    path = Path(path)
    if not path.exists():
        raise InputError("data file not found", file=str(path))
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".npy":
        return _load_npy(path if path.is_dir() else path.parent)
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path, target)
    raise InputError(f"unknown data file type {path.suffix!r}: use .npz (arrays X and y), .csv (a "
                     f"header row, labels in column {target!r}) or a folder with X.npy and y.npy",
                     file=str(path))


def _load_npy(folder: Path) -> Dataset:
    """X.npy and y.npy, memory-mapped: a data set larger than memory is read batch by batch."""
    arrays = {}
    for name in ("X", "y"):
        path = folder / f"{name}.npy"
        if not path.exists():
            if name == "y":
                arrays[name] = None
                continue
            raise InputError("needs X.npy (and y.npy for labels) in this folder", file=str(folder))
        try:
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise InputError(f"cannot memory-map: {e} (object arrays are refused)", file=str(path)) from None
        except OSError as e:
            raise InputError(f"cannot read .npy: {e}", file=str(path)) from None
        if not np.issubdtype(arrays[name].dtype, np.number) or np.iscomplexobj(arrays[name]):
            raise InputError(f"has dtype {arrays[name].dtype}; real numbers are needed", file=str(path))
    y = arrays["y"]
    return _checked(Dataset(arrays["X"], None if y is None else np.asarray(y), str(folder)))


def _load_npz(path: Path) -> Dataset:
    import zipfile

    if not zipfile.is_zipfile(path):
        # np.load would try such a file as a pickle and report it as "object arrays"
        raise InputError("is not a .npz file (a zip archive of .npy arrays, as np.savez writes)",
                         file=str(path))
    try:
        with np.load(path, allow_pickle=False) as f:
            names = list(f.files)
            if "X" not in names:
                raise InputError(f"needs an array named X (and y for labels); it has "
                                 f"{', '.join(names) or 'no arrays'}", file=str(path))
            X = f["X"]
            y = f["y"] if "y" in names else None
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise InputError("holds object arrays, which would need pickle to read; bpcli reads "
                             "numeric arrays only", file=str(path)) from None
        raise InputError(f"cannot read .npz: {e}", file=str(path)) from None
    except (OSError, EOFError) as e:
        raise InputError(f"cannot read .npz: {e}", file=str(path)) from None
    for name, a in (("X", X), ("y", y)):
        if a is not None and (not (np.issubdtype(a.dtype, np.number) or a.dtype == bool)
                              or np.issubdtype(a.dtype, np.complexfloating)):
            raise InputError(f"array {name} has dtype {a.dtype}; real numbers are needed",
                             file=str(path))
    return _checked(Dataset(X, y, str(path)))


def _load_csv(path: Path, target: str) -> Dataset:
    import warnings

    import pandas as pd

    try:
        # index_col=False: rows longer than the header are an error, not silently an index column
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, index_col=False)
    except pd.errors.ParserWarning:
        raise InputError("cannot read CSV: some rows have more fields than the header has columns",
                         file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read CSV: {str(e).strip()}", file=str(path)) from None
    if df.empty:
        raise InputError("CSV has no data rows", file=str(path))
    for col in df.columns:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise InputError(f"row {row + 2}, column {col!r}: {df[col].iloc[row]!r} is not a number "
                             f"(line {row + 2} of the file, counting the header)", file=str(path))
        df[col] = values
    if target not in df.columns:
        raise InputError(f"no label column {target!r}; columns are {', '.join(map(str, df.columns))} "
                         f"(choose one with --target)", file=str(path))
    y = df[target].to_numpy()
    X = df.drop(columns=[target]).to_numpy(dtype=float)
    return _checked(Dataset(X, y, str(path)))


def _checked(d: Dataset) -> Dataset:
    if d.X.ndim == 0 or d.X.shape[0] == 0:
        raise InputError("has no samples", file=d.source)
    rows = max(1, (1 << 24) // max(1, d.X[:1].nbytes))  # checked in slabs: a memmap stays on disk
    for start in range(0, d.X.shape[0], rows):
        bad = ~np.isfinite(d.X[start:start + rows])
        if bad.any():
            idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
            idx = (idx[0] + start,) + idx[1:]
            raise InputError(f"X has a non-finite value {d.X[idx]} at sample {idx[0]}, position "
                             f"{[int(i) for i in idx[1:]]}", file=d.source)
    if d.y is not None:
        if d.y.ndim == 0 or d.y.shape[0] != d.X.shape[0]:
            got = d.y.shape[0] if d.y.ndim else "a single value"
            raise InputError(f"X has {d.X.shape[0]} samples but y has {got}", file=d.source)
        if np.issubdtype(d.y.dtype, np.floating) and not np.isfinite(d.y).all():
            i = int(np.argmax(~np.isfinite(d.y.reshape(len(d.y), -1)).any(axis=1)))
            raise InputError(f"y has a non-finite value at sample {i}", file=d.source)
    return d


# ---------------------------------------------------------------- from a spec
def from_spec(spec) -> Dataset:
    """The data of the spec's ``data:`` entry (a file given on the command line is put there
    first: :func:`bpcli.spec.validate.with_data`)."""
    cfg = spec.data["data"]
    if cfg is None:
        raise InputError("no data: give --data FILE (.npz or .csv), or a data: entry in the spec "
                         "(e.g. data: {builtin: pulses, n: 2000})", file=spec.file)
    if cfg["builtin"] == "shapes":
        try:
            return shapes(cfg["n"], spec.data["input"], spec.data["seed"], cfg["classes"])
        except ValueError as e:
            raise spec.error("data.builtin", str(e)) from None
    if cfg["builtin"]:
        return BUILTINS[cfg["builtin"]](cfg["n"], spec.data["input"], spec.data["seed"])
    path = Path(cfg["path"])
    if not path.is_absolute():
        path = spec.base_dir / path
    return load_file(path, cfg["target"])


def split(d: Dataset, val_split: float, seed: int):
    """Shuffle once with the seed, then hold out ``val_split`` of the samples for validation.

    A memory-mapped X is split without shuffling (validation = the last samples), so that
    both parts stay views of the file instead of copies in memory.
    """
    n = d.X.shape[0]
    n_val = int(round(val_split * n))
    if n_val and n - n_val < 1:
        raise InputError(f"val_split {val_split} leaves no training samples out of {n}", file=d.source)
    if isinstance(d.X, np.memmap):
        tr, va = slice(0, n - n_val), slice(n - n_val, n)
        take = lambda a, i: None if a is None else a[i]  # noqa: E731
        return (d.X[tr], take(d.y, tr)), ((d.X[va], take(d.y, va)) if n_val else None)
    order = np.random.default_rng(seed + 1).permutation(n)
    tr, va = order[n_val:], order[:n_val]
    take = lambda a, i: None if a is None else a[i]  # noqa: E731
    return (d.X[tr], take(d.y, tr)), ((d.X[va], take(d.y, va)) if n_val else None)
