"""Data: built-in synthetic sets, files and folders (:func:`read`), and the train/validation split.

Files are read without executing anything: ``np.load(..., allow_pickle=False)``,
pandas' CSV reader with every feature checked to be a number (tables.py), Pillow
for pictures (images.py). Problems name the file and, for CSV, the line and column.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..core.fields import closest, did_you_mean


@dataclass
class Dataset:
    """Samples ``X`` (N, *sample) and labels ``y`` (N, ...) or None, as read.

    ``names``: per-sample identifiers (image files relative to the folder) or None;
    ``classes``: class names in index order (y holds indices into it) or None;
    ``features``: the feature columns of a table (names, or positions without a header) or None;
    ``target``: the label column of a table (name or position) or None;
    ``line_of(i)``: the file line (1-based) of sample i of a table, for messages, or None;
    ``target_names``: per-sample target pictures (masks or pictures, relative to the data
    folder's parent as messages show them) when the labels are pictures, else None.
    """
    X: np.ndarray
    y: np.ndarray | None
    source: str  # shown in messages and summary.json
    names: list | None = None
    classes: list | None = None
    features: list | None = None
    target: str | int | None = None
    line_of: object = None
    target_names: list | None = None


LABELS = ("required", "optional", "none")


def note(message: str) -> None:
    """A line on stderr about a choice bpcli made while reading data."""
    print(f"bpcli: note: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """A line on stderr about data that is probably not what the user meant."""
    print(f"bpcli: warning: {message}", file=sys.stderr)


def largest(held, used) -> float | None:
    """The largest magnitude the dtype ``used`` (the spec's) holds, when a value of the dtype
    ``held`` (the file's) may exceed it and would become inf once cast (float64 data for a
    float32 spec: 7e+38 is finite in one and not in the other); None when every value fits."""
    held, used = np.dtype(held), np.dtype(used)
    if used.kind != "f" or held.kind not in "fiu":
        return None
    top = float(np.finfo(used).max)
    mine = np.finfo(held).max if held.kind == "f" else np.iinfo(held).max
    return top if mine > top else None


def too_large(value, used) -> str:
    """What a message says of a finite ``value`` beyond the dtype ``used``: it overflows, and
    what to do."""
    used = np.dtype(used)
    return (f"{float(value):g} overflows {used} (the spec's dtype; its largest is "
            f"{float(np.finfo(used).max):.2g}) and would be inf in training: scale the data down, "
            f"or set dtype: float64")


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
    X, y, _ = _draw_shapes(n, shape, seed, classes)
    return Dataset(X, y, f"builtin shapes (n={n}, classes={classes}, seed={seed})")


def shape_masks(n: int, shape, seed: int, classes: int = 3) -> Dataset:
    """Where is the shape, and which is it? The pictures of :func:`shapes` (the same draws for
    the same seed), each with its mask (N, height, width) int64: k + 1 on the pixels inside the
    k-th shape (its signed distance below 0, where the blurred edge is half bright), 0 on the
    background; so a segmentation network tells ``classes`` + 1 classes apart. ``classes`` 1:
    discs only, a binary mask."""
    X, y, inside = _draw_shapes(n, shape, seed, classes)
    masks = np.where(inside, y[:, None, None] + 1, 0).astype(np.int64)
    return Dataset(X, masks, f"builtin shape_masks (n={n}, classes={classes}, seed={seed})")


def noisy_shapes(n: int, shape, seed: int, classes: int = 3) -> Dataset:
    """Take the noise out: the pictures of :func:`shapes` (the same draws for the same seed) as
    inputs, each with the same picture before its Gaussian noise (std 0.3) was added as the target
    (N, *shape): a restoration (denoising) pair, for a regression loss such as mse."""
    X, _, _, clean = _draw_shapes(n, shape, seed, classes, keep_clean=True)
    return Dataset(X, clean, f"builtin noisy_shapes (n={n}, classes={classes}, seed={seed})")


def _draw_shapes(n: int, shape, seed: int, classes: int, keep_clean: bool = False):
    """(pictures (N, *shape), shape index per picture (N,), inside (N, height, width) bool), and
    with ``keep_clean`` the pictures before their noise, (N, *shape)."""
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
    inside = np.empty((n, h, w), dtype=bool)
    for k, name in enumerate(list(SHAPES)[:classes]):
        pick = y == k
        d = SHAPES[name](dx[pick], dy[pick], r[pick, None, None])
        X[pick] = brightness[pick, None, None] / (1 + np.exp(d / blur[pick, None, None]))
        inside[pick] = d < 0
    clean = np.broadcast_to(X[:, None], (n, *shape)).copy() if keep_clean else None
    X += 0.3 * rng.standard_normal(X.shape)
    X = np.broadcast_to(X[:, None], (n, *shape)).copy()
    return (X, y, inside, clean) if keep_clean else (X, y, inside)


BUILTINS = {"pulses": pulses, "linear": linear, "shapes": shapes, "shape_masks": shape_masks,
            "noisy_shapes": noisy_shapes}
# the builtin sets that take data.classes, a number
DRAWS_SHAPES = ("shapes", "shape_masks", "noisy_shapes")


# ---------------------------------------------------------------- files
def shown(path) -> Path:
    """``path`` as messages show it: relative to the working folder when it lies below it."""
    path = Path(path)
    try:
        return path.relative_to(Path.cwd()) if path.is_absolute() else path
    except ValueError:
        return path


def options(**given) -> dict:
    """The data options: every field of the spec's DATA table at its default, ``given`` winning."""
    from ..spec.sections import DATA

    return {**{p.name: p.default for p in DATA}, **given}


def load_file(path, target: str = "y") -> Dataset:
    """Data from a file or folder read with the default data options and label column ``target``
    (a spec's options: :func:`read`)."""
    return _load(Path(path), options(target=target), labels="optional", shape=None,
                 dtype=np.float64, source=str(path), notes=[])


FROM_SPEC = "spec"  # read's targets: the spec's data.targets or data.val_targets, as path is


def read(spec, path=None, *, labels: str = "required", shown_as=None,
         classes_from: str = "run", targets=FROM_SPEC, targets_shown_as=None) -> Dataset:
    """The data a spec reads: from ``path`` (a file or folder, relative to the working folder) or
    else the spec's ``data.path`` (relative to the spec file) or builtin set, with the spec's
    data options (header, skip_rows, delimiter, target, features, classes, resize).

    Files: .npz (arrays X, y); a folder (or .npy) with X.npy and y.npy, memory-mapped; a CSV
    (.csv, .tsv, and each .gz/.bz2/.zip/.xz); a folder of class subfolders of pictures, or of
    pictures alone. A file whose name says none of these is read as ``data.format`` says, else
    as its content shows (:func:`sniffed`: a text table, .npz, a picture). ``labels``:
    "required" (InputError without them), "optional" (y None without them) or "none" (y None:
    prediction). String labels and class folders become indices into ``classes`` (the spec's
    ``data.classes``, else the names sorted); one-hot rows become indices for a loss that takes
    them (:func:`_one_hot`). A flat row of as many numbers as the spec's input shape holds is
    reshaped to it (C order); arrays stored channels last are transposed with
    ``data.layout: channels_last`` (:func:`_laid_out`). Every number is checked in the spec's
    dtype (:func:`largest`).

    Reading with a trained run's resolved spec reproduces the training's reading options,
    class indices and feature columns. Raises InputError naming the file, line and column.

    ``shown_as``: the path as the user typed it (--data), named in messages and ``source``
    instead of the resolved one. ``classes_from``: whose classes a label outside the spec's
    ``data.classes`` is measured against in a message: "run" (a trained run's, for eval and
    predict) or "spec" (the spec's own, while training).

    ``targets``: a folder of target pictures, one per picture of the folder read
    (:func:`read_pairs`), None for none, or :data:`FROM_SPEC`: the spec's ``data.targets`` when
    the spec's ``data.path`` is read, its ``data.val_targets`` when ``path`` is its
    ``data.val_path``. ``targets_shown_as``: that folder as the user typed it (--targets).
    With ``labels`` "none" (prediction) targets are not read.
    """
    from . import images

    if labels not in LABELS:
        raise ValueError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    cfg = spec.data["data"]
    if path is None:
        if cfg is None or (cfg["builtin"] is None and cfg["path"] is None):
            raise InputError("no data: give --data FILE (.csv, .npz, a folder), or a data: entry in "
                             "the spec (e.g. data: {builtin: pulses, n: 2000} or data: {path: "
                             "FILE})", file=spec.file)
        if cfg["builtin"]:
            d = _builtin(spec, cfg)
            return d if labels != "none" else Dataset(d.X, None, d.source)
        path = spec_path(spec, cfg["path"])
        if targets == FROM_SPEC:
            targets = cfg.get("targets")
    elif targets == FROM_SPEC:
        targets = _spec_targets(spec, path)
    path, notes = Path(path), []
    source = str(shown(path) if shown_as is None else shown_as)
    if (targets is None and labels != "none" and (cfg or {}).get("targets") is not None
            and path.is_dir() and images.is_image_folder(path)):
        raise InputError("is a folder of pictures without targets, but this spec trains on "
                         "picture pairs (data.targets): give the folder of their targets, one per "
                         "picture of the same name (--targets DIR; data.val_targets for "
                         "data.val_path)", file=source)
    if targets is not None and labels != "none":
        targets = spec_path(spec, targets) if isinstance(targets, str) else Path(targets)
        d = read_pairs(spec, path, targets, source=source, notes=notes,
                       targets_source=str(shown(targets) if targets_shown_as is None
                                          else targets_shown_as))
    else:
        d = _load(path, options(**(cfg or {})), labels=labels, shape=spec.data["input"],
                  dtype=np.dtype(spec.data["dtype"]), source=source, notes=notes,
                  classes_from=classes_from)
    if d.y is None and labels == "required":
        raise InputError(f"the {spec.data['loss']['name']} loss needs labels y, and this data has "
                         f"none (.npz: an array y beside X; a folder: y.npy beside X.npy)",
                         file=d.source)
    if d.y is not None and labels != "none":
        d = _one_hot(spec, d, notes)
    d = _shaped(d, spec.data["input"], notes)
    for message in notes:  # only once the data is read: an error stands alone
        note(message)
    return d


def spec_path(spec, value) -> Path:
    """A path of the spec's data entry: relative to the spec file unless absolute."""
    path = Path(value)
    return path if path.is_absolute() else spec.base_dir / path


def _spec_targets(spec, path):
    """The spec's target folder for the inputs at ``path``: data.val_targets for its
    data.val_path, data.targets for its data.path, else None."""
    cfg = spec.data["data"] or {}
    here = Path(path).resolve()
    for inputs, targets in (("val_path", "val_targets"), ("path", "targets")):
        if cfg.get(inputs) is not None and spec_path(spec, cfg[inputs]).resolve() == here:
            return cfg.get(targets)
    return None


def _builtin(spec, cfg) -> Dataset:
    if cfg["builtin"] in DRAWS_SHAPES:
        try:
            extra = {} if cfg["classes"] is None else {"classes": cfg["classes"]}
            return BUILTINS[cfg["builtin"]](cfg["n"], spec.data["input"], spec.data["seed"],
                                            **extra)
        except ValueError as e:
            raise spec.error("data.builtin", str(e)) from None
    return BUILTINS[cfg["builtin"]](cfg["n"], spec.data["input"], spec.data["seed"])


FORMATS = ("csv", "npz", "npy", "images")  # data.format: the kinds of data file bpcli reads
LAYOUTS = ("channels_first", "channels_last")  # data.layout: where an array sample's channels are
# the first bytes of the binary kinds, for a file whose name does not say what it holds
MAGIC = {b"\x93NUMPY": ("npy", "a NumPy .npy array"),
         b"\x89PNG": ("images", "a PNG picture"), b"\xff\xd8\xff": ("images", "a JPEG picture"),
         b"GIF87a": ("images", "a GIF picture"), b"GIF89a": ("images", "a GIF picture"),
         b"II*\x00": ("images", "a TIFF picture"), b"MM\x00*": ("images", "a TIFF picture")}
_SNIFF_BYTES = 1 << 16


def named_kind(path: Path) -> str | None:
    """The kind of data file ``path``'s name says (one of :data:`FORMATS`), or None."""
    from . import images, tables

    suffix = path.suffix.lower()
    if suffix in images.SUFFIXES:
        return "images"
    if suffix in (".npz", ".npy"):
        return suffix[1:]
    return "csv" if tables.is_table(path) else None


def sniffed(path: Path) -> tuple[str | None, str]:
    """(the kind of data file ``path`` holds by its content, or None; what its content looks
    like, for messages): a .npy or .npz by their first bytes, a picture by its signature, a text
    table by :func:`tables.sniff` (decompressed first for a .gz, .bz2, .xz or .zip name)."""
    import bz2
    import gzip
    import lzma
    import zipfile

    from . import tables

    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if members and all(m.endswith(".npy") for m in members):
                    return "npz", "a zip archive of .npy arrays, as np.savez writes"
                if len(members) != 1:
                    return None, f"a zip archive of {len(members)} files"
                with z.open(members[0]) as f:
                    head = f.read(_SNIFF_BYTES)
        else:
            opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
                path.suffix.lower())
            if opener is not None:
                with opener(path, "rb") as f:
                    head = f.read(_SNIFF_BYTES)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as e:
        return None, f"unreadable ({e})"
    for magic, (kind, what) in MAGIC.items():
        if head.startswith(magic):
            return kind, what
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "images", "a WebP picture"
    if head.startswith(b"BM") and head[6:10] == bytes(4):  # its reserved bytes: not text "BMI,"
        return "images", "a BMP picture"
    if not head:
        return None, "an empty file"
    if len(head) == _SNIFF_BYTES:  # the last line may be cut short
        head = head[:head.rfind(b"\n") + 1] or head
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, f"binary, not text: it starts with bytes {head[:8].hex(' ')}"
    table, what = tables.sniff(text)
    return ("csv" if table else None), what


def _kind(path: Path, given, source: str, notes: list) -> str:
    """What kind of data ``path`` holds (one of :data:`FORMATS`): a folder by what it holds, a
    file by its name, else by ``given`` (data.format), else by its content, with a note; an
    InputError listing what was tried when none of them tells."""
    from . import images

    if path.is_dir():
        return "images" if images.is_image_folder(path) else "npy"
    named = named_kind(path)
    if named is not None or given is not None:
        return named or given
    kind, what = sniffed(path)
    if kind is None:
        suffix = f" type {path.suffix!r}" if path.suffix else " (its name has no suffix)"
        raise InputError(f"unknown data file{suffix}: tried its name (bpcli knows .npz; .npy; .csv "
                         f"and .tsv, each also .gz, .bz2, .zip or .xz; pictures "
                         f"{', '.join(images.SUFFIXES)}) and its content ({what}). If it is one "
                         f"of these, say which with data.format: {', '.join(FORMATS)}; else give "
                         f".npz (arrays X and y), a text table (labels in a column), a folder "
                         f"with X.npy and y.npy, or a folder of pictures", file=source)
    notes.append(f"{source}: its name says no kind of data, so it is read by its content: {what} "
                 f"(data.format: {kind} says so)")
    return kind


def _load(path: Path, cfg: dict, *, labels: str, shape, dtype, source: str, notes: list,
          classes_from: str = "run") -> Dataset:
    from . import tables

    if not path.exists():
        raise InputError("data file not found", file=source)
    kind = _kind(path, cfg.get("format"), source, notes)
    if kind == "images":
        if path.is_dir():
            return _pictures(path, cfg, labels=labels, shape=shape, dtype=dtype, source=source,
                             classes_from=classes_from)
        return _picture(path, cfg, labels=labels, shape=shape, dtype=dtype, source=source)
    if kind == "npy":
        if path.is_file() and path.suffix.lower() != ".npy":
            raise InputError("is read as .npy (by data.format, or its content), but bpcli reads "
                             ".npy arrays as X.npy (and y.npy for labels) in a data folder: name "
                             "it X.npy in a folder of its own and give the folder", file=source)
        d = _load_npy(path if path.is_dir() else path.parent,
                      source if path.is_dir() else str(Path(source).parent), dtype)
    elif kind == "npz":
        d = _load_npz(path, source, dtype)
    else:
        t = tables.read_table(path, cfg, labels=labels, source=source, notes=notes,
                              run_input=shape if classes_from == "run" else None, dtype=dtype)
        y, classes = (None, None) if t.labels is None else class_indices(
            t.labels, cfg["classes"], source, lambda i: f"line {t.line_of(i)}", classes_from)
        d = _checked(Dataset(t.X, y, source, classes=classes, features=t.features,
                             target=t.target, line_of=t.line_of), dtype)
        return _laid_out(d, cfg["layout"], shape, notes)
    d.source = source
    d = _laid_out(d, cfg["layout"], shape, notes)
    if labels == "none":
        d.y = None
    elif d.y is not None and (isinstance(cfg["classes"], list) or d.y.dtype.kind == "U"):
        d.y, d.classes = class_indices(d.y, cfg["classes"], source, lambda i: f"sample {i}",
                                       classes_from)
    return d


def _pictures(folder: Path, cfg: dict, *, labels: str, shape, dtype, source: str,
              classes_from: str) -> Dataset:
    from . import images

    _picture_shape(shape, source, "a folder of pictures")
    files, folders = images.listing(folder, labelled=labels == "required", source=source,
                                    splits=labels != "none")
    names = [f.relative_to(folder).as_posix() for f in files]
    y = classes = None
    if folders is not None and labels != "none":
        # a class folder training never saw is an error before any picture is decoded
        y, classes = class_indices(np.array(folders, dtype=object), cfg["classes"], source,
                                   lambda i: f"folder {folders[i]!r} ({names[i]})", classes_from)
    X = images.read_images(files, shape, resize=cfg["resize"], dtype=dtype, folder=folder,
                           source=source)
    return Dataset(X, y, source, names=names, classes=classes)


# ---------------------------------------------------------------- picture pairs
def targets_hold(loss_name: str) -> str | None:
    """What target pictures mean to the loss ``loss_name``: "masks" for a classifier's (a class
    index per pixel), "pictures" for a regressor's (values the output estimates, as the inputs
    are scaled), None for a loss that takes neither."""
    from ..nn.losses import LOSSES

    loss = LOSSES[loss_name]
    return "masks" if loss.classifier is not None else "pictures" if loss.regressor else None


def read_pairs(spec, inputs: Path, targets: Path, *, source: str, targets_source: str,
               notes: list) -> Dataset:
    """A folder of input pictures and a folder of their targets (:func:`images.pairs`: matched
    by name), as the spec's loss reads them (:func:`targets_hold`):

    - masks: y (N, height, width) int64, each pixel's class index (:func:`images.read_masks`).
      Masks holding only 0 and 255 read as 0 and 1, with a note in ``notes`` (most public
      segmentation sets store a binary mask so); a value that is not a class of ``data.classes``
      (nor the loss's ``ignore_index``) is an error naming the masks, their values and the
      classes;
    - pictures: y (N, channels, height, width) in the spec's dtype, read as the inputs are (the
      same channels, 8-bit / 255 and 16-bit / 65535, resized the same with ``data.resize``).

    X: the inputs (N, channels, height, width); ``names``: the input files below ``inputs``.
    """
    from . import images

    cfg, loss = options(**(spec.data["data"] or {})), spec.data["loss"]
    kind = targets_hold(loss["name"])
    if kind is None:
        raise spec.error("data.targets", f"the {loss['name']} loss takes no labels, so no "
                                         f"target pictures; leave data.targets (--targets) out")
    if not inputs.exists():
        raise InputError("data folder not found", file=source)
    if not inputs.is_dir():
        raise InputError(f"is not a folder, but target pictures ({targets_source}) go with a "
                         f"folder of input pictures, one target per input of the same name",
                         file=source)
    if not targets.exists():
        raise InputError("target folder not found", file=targets_source)
    _picture_shape(spec.data["input"], source, "a folder of pictures")
    shape, dtype = spec.data["input"], np.dtype(spec.data["dtype"])
    xfiles, yfiles = images.pairs(inputs, targets, source=source, targets_source=targets_source)
    names = [f.relative_to(inputs).as_posix() for f in xfiles]
    target_names = [f"{targets_source}/{f.relative_to(targets).as_posix()}" for f in yfiles]
    classes = list(cfg["classes"]) if isinstance(cfg["classes"], list) else None
    if kind == "masks":
        y = images.read_masks(yfiles, shape[1:], resize=cfg["resize"], folder=targets,
                              source=targets_source)
        ignore = loss.get("ignore_index")
        values = np.unique(y)
        if (255 in values and set(values.tolist()) <= {0, 255} and ignore != 255
                and (classes is None or len(classes) <= 255)):
            y = (y == 255).astype(np.int64)
            notes.append(f"{targets_source}: every mask holds only the values 0 and 255, read as "
                         f"classes 0 and 1")
        if classes is not None:
            check_mask_values(y, len(classes), names=target_names, source=targets_source,
                              ignore=ignore, against=f"data.classes ({len(classes)}: "
                                                     f"{', '.join(map(str, classes))})")
    else:
        y = images.read_images(yfiles, shape, resize=cfg["resize"], dtype=dtype, folder=targets,
                               source=targets_source)
    X = images.read_images(xfiles, shape, resize=cfg["resize"], dtype=dtype, folder=inputs,
                           source=source)
    return Dataset(X, y, source, names=names, classes=classes, target_names=target_names)


def check_mask_values(y: np.ndarray, k: int, *, names, source: str, ignore=None,
                      against: str) -> None:
    """InputError unless every value of the label maps ``y`` (N, ...) is a class index 0..k-1
    (or ``ignore``, the loss's ignore_index): it names the maps holding others (``names[i]``, up
    to :data:`images.MAX_REPORTED`; else sample i, up to 5), their values, every value found
    and what the classes are (``against``: "data.classes (3: a, b, c)")."""
    from .images import MAX_REPORTED

    y = np.asarray(y)
    bad = (y < 0) | (y >= k)
    if ignore is not None:
        bad &= y != ignore
    if not bad.any():
        return
    rows = np.flatnonzero(bad.reshape(len(y), -1).any(axis=1))
    few = MAX_REPORTED if names is not None else 5  # files to mend; samples only illustrate
    shown_rows = [f"{names[i] if names is not None else f'sample {i}'} "
                  f"({', '.join(map(str, np.unique(y[i][bad[i]])[:8].tolist()))})"
                  for i in rows[:few]]
    more = f", and {len(rows) - few} more" if len(rows) > few else ""
    found = np.unique(y)
    listed = ", ".join(map(str, found[:30].tolist())) + (", ..." if len(found) > 30 else "")
    skip = f" (or {ignore}, the loss's ignore_index)" if ignore is not None else ""
    raise InputError(f"{len(rows)} label map{'s hold' if len(rows) > 1 else ' holds'} values that "
                     f"are not class indices 0..{k - 1}{skip} of {against}: "
                     f"{'; '.join(shown_rows)}{more}. Values found: {listed}", file=source)


def _picture(path: Path, cfg: dict, *, labels: str, shape, dtype, source: str) -> Dataset:
    """One picture file as a batch of one sample, without a label (what predict takes)."""
    from . import images

    if labels == "required":
        raise InputError("is one picture, which has no label: train and eval read a folder of "
                         "pictures with a subfolder per class (DIR/cat/*.png); predict takes one "
                         "picture", file=source)
    _picture_shape(shape, source, "a picture")
    parent = Path(source).parent
    X = images.read_images([path], shape, resize=cfg["resize"], dtype=dtype, folder=path.parent,
                           source="." if parent == Path(".") else parent.as_posix())
    return Dataset(X, None, source, names=[path.name])


def _picture_shape(shape, source: str, what: str) -> None:
    from . import images

    if shape is None or len(shape) != 3 or shape[0] not in images.MODES:
        raise InputError(f"is {what}: the spec's input must be [channels, height, width] with "
                         f"channels {', '.join(map(str, images.MODES))} (grayscale, RGB, RGBA), "
                         f"got {shape}", file=source)


def class_indices(labels, classes, source: str, where,
                  classes_from: str = "run") -> tuple[np.ndarray, list | None]:
    """Labels (N,) -> (class indices int64, class names in index order).

    Strings (class names) are numbered in sorted order, or in the order of ``classes`` when it
    is given (a run's recorded classes, or the spec's data.classes: ``classes_from`` "run" or
    "spec", for the message): a name not among them is an error naming it and ``where(i)`` its
    place. Numbers are kept as they are, unless ``classes`` is given: then they must be indices
    0..K-1 into it (labels (N,) or label maps (N, height, width), one per pixel).
    """
    labels = np.asarray(labels)
    if labels.dtype.kind in "biuf":
        if classes is None or labels.ndim == 0:
            return labels, None
        ok = (labels == np.round(labels)) & (labels >= 0) & (labels < len(classes))
        if not ok.all():  # per sample, or per pixel of label maps (N, height, width)
            i = int(np.argmax(~ok.reshape(len(labels), -1).all(axis=1)))
            value = labels[i][~ok[i]].flat[0] if labels.ndim > 1 else labels[i]
            raise InputError(f"{where(i)}: label {value.item()!r} is not a class index 0.."
                             f"{len(classes) - 1} of data.classes ({', '.join(classes)})",
                             file=source)
        return labels.astype(np.int64), list(classes)
    text = np.array([str(v).strip() for v in labels], dtype=object)
    known = list(classes) if classes is not None else sorted(set(text))
    index = {c: i for i, c in enumerate(known)}
    unknown = [i for i, v in enumerate(text) if v not in index]
    if unknown:  # only with ``classes`` given: the names found are all known otherwise
        i = unknown[0]
        if classes_from == "spec":
            meant = closest(text[i], known)
            ask = f": did you mean {meant!r}? Mend" if meant else "; mend"
            raise InputError(f"{where(i)}: class {text[i]!r} is not one of data.classes "
                             f"({', '.join(known)}){ask} the label, or add the class to "
                             f"data.classes", file=source)
        raise InputError(f"{where(i)}: class {text[i]!r} is not one of the classes the run was "
                         f"trained on (data.classes): {', '.join(known)}"
                         f"{did_you_mean(text[i], known)}", file=source)
    return np.array([index[v] for v in text], dtype=np.int64), known


def channels_last(sample, shape) -> bool:
    """Whether samples of shape ``sample`` are the spec's input ``shape`` ([channels, length] or
    [channels, height, width]) with the channels last: (length, channels), (height, width,
    channels)."""
    sample, shape = tuple(sample), tuple(shape)
    return len(shape) > 1 and sample != shape and sample == shape[1:] + shape[:1]


def _laid_out(d: Dataset, layout: str, shape, notes: list) -> Dataset:
    """An array data set's samples as the spec's input lays them out, channels first.

    ``layout`` channels_last (data.layout): X (N, *positions, C) is transposed to
    (N, C, *positions) (a view: a memory-mapped X stays on disk), flat rows of as many numbers
    as the input holds read as (*positions, C) first; y too when it holds pictures of the same
    positions (restoration targets). channels_first: samples that are the input with its
    channels last are an error saying so, and how to read them."""
    if shape is None or len(shape) < 2 or d.X.ndim < 2:
        return d
    shape, sample = tuple(shape), tuple(d.X.shape[1:])
    if layout == "channels_first":
        if channels_last(sample, shape):
            raise InputError(f"has samples of shape {sample}: the spec's input {list(shape)} with "
                             f"the channels last ({', '.join(_axes(shape))}), as "
                             f"TensorFlow and most image arrays store them, while bpcli reads "
                             f"channels first. Set data.layout: channels_last (--set "
                             f"data.layout=channels_last) to transpose them as they are read, or "
                             f"transpose X yourself: np.moveaxis(X, -1, 1)", file=d.source)
        return d
    last = shape[1:] + shape[:1]
    if sample == (int(np.prod(shape)),):  # a flat row: (*positions, channels) in C order
        d.X = d.X.reshape((d.X.shape[0], *last))
        notes.append(f"{d.source}: each row of {sample[0]} numbers read as {last}, channels last "
                     f"(data.layout), and transposed to the spec's input {list(shape)}")
    elif sample == shape and sample != last:
        raise InputError(f"has samples of shape {sample}, the spec's input {list(shape)} with the "
                         f"channels first already, but data.layout says channels_last: leave "
                         f"data.layout out", file=d.source)
    X = d.X
    d.X = np.moveaxis(X, -1, 1)
    y = d.y
    if (y is not None and y.ndim == X.ndim and tuple(y.shape[1:-1]) == tuple(X.shape[1:-1])):
        d.y = np.moveaxis(y, -1, 1)  # target pictures (N, *positions, C'), laid out as X
    return d


def _axes(shape) -> tuple:
    return ("length", "channels") if len(shape) == 2 else ("height", "width", "channels")


def _one_hot(spec, d: Dataset, notes: list) -> Dataset:
    """Labels y (N, K) of 0s and 1s given to a loss that takes class indices (N,):

    - one 1 a row (one-hot, as Keras' to_categorical writes them): read as the class indices
      y.argmax(axis=1), with a note: nothing is lost, and every later step (classes, accuracy,
      confusion, predict) counts classes by index;
    - else (probabilities, several 1s a row): InputError quoting y's shape in the file and the
      way to indices (argmax), or to a multi-label loss.

    Labels the loss takes as they are (K yes/no targets of sigmoid_cross_entropy, label maps)
    are left alone: the loss is asked first, on the network's output shape."""
    from ..core.fields import Invalid
    from ..nn.graph import compile_spec
    from ..nn.losses import LOSSES

    y, loss = d.y, LOSSES[spec.data["loss"]["name"]]
    if (y.ndim != 2 or y.shape[1] < 2 or loss.classifier is None or y.dtype.kind not in "biuf"
            or d.classes is not None):
        return d
    out = compile_spec(spec)[0].outputs["output"].shape
    if loss.label_shape(out) is None:
        return d
    try:  # labels the loss takes as they are, or a loss that takes no class indices (N,)
        loss.labels(np.asarray(y[:1000]), out, spec.data["loss"])
        return d
    except Invalid:
        try:
            loss.labels(np.zeros(0, dtype=np.int64), out, spec.data["loss"])
        except Invalid:
            return d
    y = np.asarray(y)
    n, k = y.shape
    zero_one = np.isin(y, (0, 1)).all()
    ones = (y == 1).sum(axis=1)
    if zero_one and (ones == 1).all():
        notes.append(f"{d.source}: y holds one-hot rows, shape {y.shape}: read as the class "
                     f"indices 0..{k - 1} (each row's argmax), as the {loss.name} loss takes them")
        d.y = np.argmax(y, axis=1)
        return d
    i = int(np.argmax(ones != 1)) if zero_one else int(np.argmax(~np.isin(y, (0, 1)).all(axis=1)))
    row = ", ".join(f"{v:g}" for v in y[i, :8]) + (", ..." if k > 8 else "")
    if zero_one and ones[i] > 1:
        why = (f"sample {i} ([{row}]) has {ones[i]} classes at once: for labels of several "
               f"classes a sample (multi-label), use loss: sigmoid_cross_entropy with one output "
               f"per class; for one class a sample, give its index")
    elif zero_one:
        why = f"sample {i} ([{row}]) holds no 1: give every sample its class"
    else:
        why = (f"sample {i} ([{row}]) is not one-hot: if the rows are class probabilities, give "
               f"the likeliest class, y.argmax(axis=1)")
    raise InputError(f"y has shape {y.shape} in the file, {k} numbers a sample, but the "
                     f"{loss.name} loss takes one class index 0..{k - 1} a sample, y of shape "
                     f"({n},) (one-hot rows are read so: y.argmax(axis=1)); {why}", file=d.source)


def _shaped(d: Dataset, shape, notes: list) -> Dataset:
    """Flat rows of as many numbers as the spec's input holds, reshaped to it (C order)."""
    shape = tuple(shape)
    if (d.X.ndim == 2 and len(shape) > 1 and d.X.shape[1] == int(np.prod(shape))):
        notes.append(f"{d.source}: each row of {d.X.shape[1]} numbers reshaped to the spec's input "
             f"{list(shape)} (C order: the last axis varies fastest)")
        d.X = d.X.reshape((d.X.shape[0], *shape))
    return d


def _load_npy(folder: Path, source: str, dtype=np.float64) -> Dataset:
    """X.npy and y.npy, memory-mapped: a data set larger than memory is read batch by batch.
    ``source``: the folder as messages name it."""
    arrays = {}
    for name in ("X", "y"):
        path, shown_path = folder / f"{name}.npy", f"{source}/{name}.npy"
        if not path.exists():
            if name == "y":
                arrays[name] = None
                continue
            raise _not_data(folder, source)
        try:
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise InputError(f"cannot memory-map: {e} (object arrays are refused)",
                             file=shown_path) from None
        except OSError as e:
            raise InputError(f"cannot read .npy: {e}", file=shown_path) from None
        if name == "y" and arrays[name].dtype.kind == "U":   # class names: numbered later
            continue
        if not np.issubdtype(arrays[name].dtype, np.number) or np.iscomplexobj(arrays[name]):
            raise InputError(f"has dtype {arrays[name].dtype}; real numbers are needed"
                             + (" (or, for y, class names as text)" if name == "y" else ""),
                             file=shown_path)
    y = arrays["y"]
    return _checked(Dataset(arrays["X"], None if y is None else np.asarray(y), source), dtype)


def _not_data(folder: Path, source: str) -> InputError:
    """A folder with neither X.npy nor pictures: what it holds, and what a data folder holds."""
    from .images import SUFFIXES
    from .tables import few, is_table

    held = sorted(p.name + "/" * p.is_dir() for p in folder.iterdir() if not p.name.startswith("."))
    found = (f"holds {few(held)}, but neither X.npy nor pictures ({', '.join(SUFFIXES[:3])}, ...)"
             if held else "is an empty folder")
    # tables by name, or by content when the name says nothing (iris.data): a few files read
    unnamed = [n for n in held if not n.endswith("/") and named_kind(Path(n)) is None][:20]
    tables = [name for name in held if is_table(Path(name))
              or name in unnamed and sniffed(folder / name)[0] == "csv"]
    give = (f"; a table is given as the file itself: --data {shlex.quote(f'{source}/{tables[0]}')}"
            if tables else "")
    return InputError(f"{found}: a data folder holds X.npy (and y.npy for labels), or one "
                      f"sub-folder of pictures per class ({source}/cat/*.png, {source}/dog/*.png)"
                      f"{give}", file=source)


def _load_npz(path: Path, source: str, dtype=np.float64) -> Dataset:
    import zipfile

    if not zipfile.is_zipfile(path):
        # np.load would try such a file as a pickle and report it as "object arrays"
        raise InputError("is not a .npz file (a zip archive of .npy arrays, as np.savez writes)",
                         file=source)
    try:
        with np.load(path, allow_pickle=False) as f:
            names = list(f.files)
            if "X" not in names:
                raise InputError(f"needs an array named X (and y for labels); it has "
                                 f"{', '.join(names) or 'no arrays'}", file=source)
            X = f["X"]
            y = f["y"] if "y" in names else None
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise InputError("holds object arrays, which would need pickle to read; bpcli reads "
                             "numeric arrays only", file=source) from None
        raise InputError(f"cannot read .npz: {e}", file=source) from None
    except (OSError, EOFError) as e:
        raise InputError(f"cannot read .npz: {e}", file=source) from None
    for name, a in (("X", X), ("y", y)):
        names = name == "y" and a is not None and a.dtype.kind == "U"   # class names: numbered later
        if a is not None and not names and (
                not (np.issubdtype(a.dtype, np.number) or a.dtype == bool)
                or np.issubdtype(a.dtype, np.complexfloating)):
            raise InputError(f"array {name} has dtype {a.dtype}; real numbers are needed"
                             + (" (or, for y, class names as text)" if name == "y" else ""),
                             file=source)
    return _checked(Dataset(X, y, source), dtype)


def _checked(d: Dataset, dtype=np.float64) -> Dataset:
    """``d`` if X (and a numeric y) hold only finite values that stay finite in ``dtype``, the
    spec's: checked in the dtype they will be used in, not only in the file's. Else InputError
    naming the array, the sample and the position."""
    if d.X.ndim == 0 or d.X.shape[0] == 0:
        raise InputError("has no samples", file=d.source)
    top = largest(d.X.dtype, dtype)
    rows = max(1, (1 << 24) // max(1, d.X[:1].nbytes))  # checked in slabs: a memmap stays on disk
    for start in range(0, d.X.shape[0], rows):
        slab = d.X[start:start + rows]
        bad = ~np.isfinite(slab)
        if top is not None:
            bad |= np.abs(slab) > top
        if bad.any():
            idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
            idx = (idx[0] + start,) + idx[1:]
            at = f"at sample {idx[0]}, position {[int(i) for i in idx[1:]]}"
            if np.isfinite(d.X[idx]):
                raise InputError(f"X {at}: {too_large(d.X[idx], dtype)}", file=d.source)
            raise InputError(f"X has a non-finite value {d.X[idx]} {at}", file=d.source)
    if d.y is not None:
        if d.y.ndim == 0 or d.y.shape[0] != d.X.shape[0]:
            got = d.y.shape[0] if d.y.ndim else "a single value"
            raise InputError(f"X has {d.X.shape[0]} samples but y has {got}", file=d.source)
        if np.issubdtype(d.y.dtype, np.floating):
            y = np.asarray(d.y).reshape(len(d.y), -1)
            if not np.isfinite(y).all():
                i = int(np.argmax(~np.isfinite(y).any(axis=1)))
                raise InputError(f"y has a non-finite value at sample {i}", file=d.source)
            top = largest(d.y.dtype, dtype)
            if top is not None and (np.abs(y) > top).any():
                i, j = np.unravel_index(int(np.argmax(np.abs(y) > top)), y.shape)
                at = f", position {j}" if y.shape[1] > 1 else ""
                raise InputError(f"y at sample {i}{at}: {too_large(y[i, j], dtype)}",
                                 file=d.source)
    return d


# ---------------------------------------------------------------- from a spec
def from_spec(spec) -> Dataset:
    """The data of the spec's ``data:`` entry, labels used if present (a file given on the
    command line is put there first: :func:`bpcli.spec.validate.with_data`)."""
    return read(spec, labels="optional", classes_from="spec")


def split(d: Dataset, val_split: float, seed: int):
    """Shuffle once with the seed, then hold out ``val_split`` of the samples for validation.

    A memory-mapped X is split without shuffling (validation = the last samples), so that
    both parts stay views of the file instead of copies in memory; a warning on stderr says so
    when its labels look sorted.
    """
    n = d.X.shape[0]
    n_val = int(round(val_split * n))
    if n_val and n - n_val < 1:
        raise InputError(f"val_split {val_split} leaves no training samples out of {n}", file=d.source)
    if isinstance(d.X, np.memmap):
        tr, va = slice(0, n - n_val), slice(n - n_val, n)
        if n_val and d.y is not None:
            _looks_sorted(np.asarray(d.y), n_val, d.source)
        take = lambda a, i: None if a is None else a[i]  # noqa: E731
        return (d.X[tr], take(d.y, tr)), ((d.X[va], take(d.y, va)) if n_val else None)
    order = np.random.default_rng(seed + 1).permutation(n)
    tr, va = order[n_val:], order[:n_val]
    take = lambda a, i: None if a is None else a[i]  # noqa: E731
    return (d.X[tr], take(d.y, tr)), ((d.X[va], take(d.y, va)) if n_val else None)


def _looks_sorted(y: np.ndarray, n_val: int, source: str) -> None:
    """Warn when an unshuffled split's labels look sorted: the validation part holds a single
    label, or the labels never decrease (or never increase)."""
    if y.ndim != 1 or len(np.unique(y)) < 2:
        return
    val = y[-n_val:]
    step = np.diff(y)
    why = None
    if len(np.unique(val)) == 1:
        why = f"the validation part (the last {n_val}) holds only label {val[0].item()!r}"
    elif (step >= 0).all() or (step <= 0).all():
        why = "the labels are in sorted order"
    if why is None:
        return
    warn(f"{source} is memory-mapped, so it is split without shuffling (validation = the last "
         f"{n_val} of {len(y)} samples), and {why}. Shuffle a copy of "
         f"X.npy and y.npy (the same permutation for both), or give validation data of its own "
         f"(data.val_path or --val-data)")
