"""Folders of pictures -> an image array, as torchvision's ImageFolder reads them.

``DIR/cat/*.png``, ``DIR/dog/*.jpg``: each subfolder is a class (files found at any depth
below it); a folder of pictures without subfolders holds unlabelled images. A folder of inputs
with a folder of targets beside it (``noisy/a.png`` with ``clean/a.png``, ``images/a.jpg`` with
``masks/a.png``) holds picture pairs, matched by file name without its suffix (:func:`pairs`):
masks (a class index per pixel, :func:`read_masks`) or pictures (:func:`read_images`). Pillow
decodes every file (PNG, JPEG, BMP, TIFF, GIF, WebP; 8- and 16-bit); nothing else reads them.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError

MAX_REPORTED = 20  # different problems named in one error before reading stops
NAMES_SHOWN = 3    # pictures named for a problem many share ("and 17 more")
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # the spec's channels -> the Pillow mode read
DIVIDE_BY = {"8-bit": 255, "16-bit": 65535}  # a pixel's value / this: the [0, 1] bpcli trains on
SPLIT_WORDS = ("train", "val", "test")  # in a folder's name: a split of the data, not a class
CHUNK = 256  # images decoded between progress updates
PROGRESS_FROM = 2000  # folders with at least this many images show a progress bar on stderr


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def is_image_folder(folder: Path) -> bool:
    """Whether ``folder`` holds pictures (directly or in subfolders) rather than X.npy."""
    return not (folder / "X.npy").exists() and any(
        p.suffix.lower() in SUFFIXES for p in folder.rglob("*") if p.is_file())


def listing(folder: Path, *, labelled: bool, source: str, splits: bool = True):
    """(files, class names per file or None): the class subfolders' images, sorted by class then
    path, or the folder's own images when it has no class subfolders.

    ``splits``: refuse a folder laid out by split (:func:`split_layout`), whose subfolders
    would otherwise be read as classes "train" and "val"."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    own = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if subfolders and own:
        raise InputError(f"holds both images ({own[0].name}, ...) and subfolders "
                         f"({', '.join(p.name for p in subfolders[:4])}): put every image in its "
                         f"class's subfolder, or give a folder of images only", file=source)
    if own:
        if labelled:
            raise InputError(f"has images ({own[0].name}, ...) but no class subfolders, so no "
                             f"labels: put each class's images in a subfolder (DIR/cat/..., "
                             f"DIR/dog/...)", file=source)
        return own, None
    found = {sub.name: _images(sub) for sub in subfolders}
    if splits:
        split_layout(found, folder, source)
    files, classes = [], []
    for name, images in found.items():
        if not images:
            raise InputError(f"class folder {name!r} holds no images ({', '.join(SUFFIXES)})",
                             file=source)
        files += images
        classes += [name] * len(images)
    return files, classes


def pairs(inputs: Path, targets: Path, *, source: str, targets_source: str):
    """(input files, target files), one target per input, matched by the path below each folder
    without its suffix: ``noisy/a.png`` with ``clean/a.png`` or ``clean/a.tif``,
    ``images/x/b.jpg`` with ``masks/x/b.png``. Hidden and non-picture files are skipped, as in
    class folders; the inputs are sorted by path.

    Inputs without a target and targets without an input are named in one error (up to
    :data:`MAX_REPORTED` of each), as are two files of one folder with the same name but their
    suffix (``a.png`` and ``a.jpg``), which would both claim one partner."""
    sides = []
    for folder, shown in ((inputs, source), (targets, targets_source)):
        if not folder.is_dir():
            raise InputError("is not a folder: picture targets are a folder of pictures, one per "
                             "input picture, with its file name", file=shown)
        stems, twins = {}, []
        for p in _images(folder):
            stem = p.relative_to(folder).with_suffix("").as_posix()
            if stem in stems:
                twins.append(f"{stems[stem].name} and {p.name}")
            stems.setdefault(stem, p)
        if twins:
            raise InputError(f"holds pictures with one name but their suffix "
                             f"({_few(twins)}): each input is matched to its target by name, so "
                             f"keep one of each", file=shown)
        if not stems:
            raise InputError(f"holds no pictures ({', '.join(SUFFIXES)})", file=shown)
        sides.append(stems)
    given, wanted = sides
    alone = sorted(set(given) - set(wanted))
    orphans = sorted(set(wanted) - set(given))
    if alone or orphans:
        parts = []
        for what, stems, files, folder, other in (("input", alone, given, inputs, targets_source),
                                                  ("target", orphans, wanted, targets, source)):
            if stems:
                names = _few([files[s].relative_to(folder).as_posix() for s in stems])
                partner = "a target" if what == "input" else "an input"
                parts.append(f"{len(stems)} {what}{'s' * (len(stems) > 1)} without {partner} in "
                             f"{other}: {names}")
        raise InputError(f"{'; '.join(parts)}. Each input picture needs one target picture of the "
                         f"same name (its suffix may differ: a.jpg with a.png), in "
                         f"{targets_source}", file=source)
    stems = sorted(given)
    return [given[s] for s in stems], [wanted[s] for s in stems]


def _few(names: list) -> str:
    more = f", and {len(names) - MAX_REPORTED} more" if len(names) > MAX_REPORTED else ""
    return ", ".join(names[:MAX_REPORTED]) + more


def split_layout(found: dict, folder: Path, source: str) -> None:
    """InputError when the would-be class folders are splits of the data (``DIR/train/cat/``,
    ``DIR/val/cat/``): every one named as a split (train, val, test, ... or a name holding one
    of train, val, test: ``train_2020``). Only names tell: ``first/{cat,dog}`` and
    ``cat/{2019,2020}`` have the same shape, so folders not named as splits stay classes,
    however deep their pictures lie (``cat/siamese/``)."""
    names = list(found)
    if not names or not all(any(k in n.lower() for k in SPLIT_WORDS) for n in names):
        return
    inner = set()  # the classes a level down, to name them
    for name, images in found.items():
        inner |= {p.relative_to(folder / name).parts[0] for p in images
                  if len(p.relative_to(folder / name).parts) > 1}
    first = lambda kinds: next((n for n in names if any(k in n.lower() for k in kinds)),  # noqa: E731
                               None)
    train = first(("train",)) or names[0]
    val = first(("val",)) or first(("test",)) or next((n for n in names if n != train), None)
    test = first(("test",)) if val != first(("test",)) else None
    pasted = lambda name: shlex.quote(f"{source}/{name}")  # noqa: E731  (into a shell)
    give = f"--data {pasted(train)}" + (f" --val-data {pasted(val)}" if val else "")
    keep = f", and keep {source}/{test} for bpcli eval RUN --data {pasted(test)}" if test else ""
    one = len(names) == 1
    what = f"its only folder {names[0]!r}" if one else f"its folders {', '.join(names)}"
    split = "a split" if one else "splits"
    holding = f" (holding {', '.join(sorted(inner))})" if inner else ""
    raise InputError(f"{what}{holding} {'is' if one else 'are'} named as {split} of the data, not "
                     f"classes. Give each split's folder, each holding one sub-folder of pictures "
                     f"per class: {give} (data.path and data.val_path in a spec){keep}",
                     file=source)


def read_images(files: list[Path], shape, *, resize: bool, dtype, folder: Path, source: str):
    """The pictures as an array (N, channels, height, width) of ``dtype``, scaled to [0, 1]
    (8-bit / 255, 16-bit / 65535), in the spec's channels (1: grayscale, 3: RGB, 4: RGBA).

    A picture that cannot be read, or of another size (unless ``resize``: Pillow, bilinear), is
    an error naming it; every such picture is named at once, up to :data:`MAX_REPORTED`, so that
    a folder with several broken files is mended in one go. Memory: the final array only, filled
    as the files are decoded.
    """
    channels, height, width = shape
    X = np.empty((len(files), channels, height, width), dtype=dtype)
    greyed: list[str] = []   # colour pictures read as grayscale for a one-channel input
    X = _read_all(files, X, lambda path: _decode(path, channels, height, width, resize, folder,
                                                 source, greyed), source, "pictures")
    if greyed:  # said once, however many: a colour data set meant for [3, H, W] is likely
        print(f"bpcli: note: {len(greyed)} of {len(files)} pictures in {source or folder} are in "
              f"colour (such as {greyed[0]}); the spec's input has 1 channel, so they are read "
              f"as grayscale (Pillow's luma, L = 0.299 R + 0.587 G + 0.114 B); set input: "
              f"[3, {height}, {width}] to keep the colours", file=sys.stderr)
    return X


def read_masks(files: list[Path], size, *, resize: bool, folder: Path, source: str) -> np.ndarray:
    """Masks as an array (N, height, width) of int64: each pixel's class index as the file holds
    it (a palette PNG's index, never its colour; a grayscale picture's value; a 1-bit picture's
    0/1). ``size``: (height, width), the spec's input; with ``resize`` a mask of another size is
    resized by nearest neighbour, so that every pixel keeps a class index some pixel had.

    A colour picture whose channels differ, or a picture that cannot be read or is of another
    size, is an error naming it (every such mask at once, up to :data:`MAX_REPORTED`).
    """
    height, width = size
    y = np.empty((len(files), height, width), dtype=np.int64)
    return _read_all(files, y, lambda path: _decode_mask(path, height, width, resize, folder,
                                                         source), source, "masks")


def _read_all(files: list[Path], out: np.ndarray, decode, source: str, what: str) -> np.ndarray:
    """``out[i] = decode(files[i])`` for every file, the errors gathered (module docstring):
    pictures with the same problem (one wrong size) are one line naming a few of them."""
    bar = _progress(len(files), source)
    problems: dict[str, list[InputError]] = {}   # message -> the errors of the files that have it
    try:
        for start in range(0, len(files), CHUNK):
            for i in range(start, min(start + CHUNK, len(files))):
                try:
                    out[i] = decode(files[i])
                except InputError as e:
                    problems.setdefault(e.message, []).append(e)
                    if len(problems) == MAX_REPORTED:
                        raise InputError.several(_grouped(problems, what, source) + [InputError(
                            f"stopped reading after {MAX_REPORTED} different problems, at "
                            f"{i + 1} of {len(files)} {what}", file=source)])
            if bar is not None:
                bar[0].update(bar[1], completed=min(start + CHUNK, len(files)))
    finally:
        if bar is not None:
            bar[0].stop()
    if problems:
        raise InputError.several(_grouped(problems, what, source))
    return out


def _grouped(problems: dict[str, list[InputError]], what: str, source: str) -> list[InputError]:
    """One error per problem: a file's own, or for several files "20 pictures (a.png, b.png,
    c.png and 17 more) are 32x32 pixels ..." (the message's verb made plural)."""
    grouped = []
    for message, errors in problems.items():
        if len(errors) == 1:
            grouped.append(errors[0])
            continue
        names = ", ".join(str(e.file) for e in errors[:NAMES_SHOWN])
        more = len(errors) - NAMES_SHOWN
        names += f" and {more} more" if more > 0 else ""
        verb, _, rest = message.partition(" ")
        plural = {"is": "are", "holds": "hold"}.get(verb)
        said = f"{plural} {rest}" if plural else f"cannot be used: {message}"
        grouped.append(InputError(f"{len(errors)} {what} ({names}) {said}", file=source or None))
    return grouped


def _progress(total: int, source: str):
    if total < PROGRESS_FROM:
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    progress = Progress(TextColumn(f"reading {source}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True)
    progress.start()
    return progress, progress.add_task("images", total=total)


def _shown(path: Path, folder: Path, source: str) -> str:
    name = path.relative_to(folder).as_posix()
    return name if source in ("", ".") else f"{source}/{name}"


def _size_error(img, height: int, width: int, what: str) -> str:
    return (f"is {img.height}x{img.width} pixels (height x width), but the spec's input is "
            f"{height}x{width}{what}; set data.resize: true (or --set data.resize=true) to resize "
            f"every picture")


def _decode_mask(path: Path, height: int, width: int, resize: bool, folder: Path,
                 source: str) -> np.ndarray:
    """One mask -> (height, width) integers, the file's own values (:func:`read_masks`)."""
    from PIL import Image, UnidentifiedImageError

    name = _shown(path, folder, source)
    try:
        with Image.open(path) as img:
            img.load()
            if (img.height, img.width) != (height, width):
                if not resize:
                    raise InputError(_size_error(img, height, width, " (a mask is as large as its "
                                                                     "picture)"), file=name)
                img = (img.convert("L") if img.mode == "1" else img).resize(
                    (width, height), Image.Resampling.NEAREST)  # never a value between classes
            a = np.asarray(img)
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise InputError(f"cannot read as a mask: {e}", file=name) from None
    if a.ndim == 3:  # LA, RGB, RGBA: a gray picture stored in colour is its first channel
        colour = a[..., :3] if a.shape[-1] >= 3 else a[..., :1]
        if (colour != colour[..., :1]).any():
            raise InputError(f"is a colour picture ({img.mode}) whose channels differ: a mask "
                             f"holds one class index per pixel; save it as an 8-bit grayscale or "
                             f"palette PNG (a palette PNG's colours are kept: its index is the "
                             f"class)", file=name)
        a = a[..., 0]
    if a.dtype.kind == "f":
        if not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise InputError("holds values that are not whole numbers: a mask holds one class "
                             "index per pixel", file=name)
    return a.astype(np.int64)


def _decode(path: Path, channels: int, height: int, width: int, resize: bool, folder: Path,
            source: str, greyed: list[str]) -> np.ndarray:
    """One picture -> (channels, height, width) floats in [0, 1]; its name appended to
    ``greyed`` when it is in colour (channels that differ) and read as one channel."""
    from PIL import Image, UnidentifiedImageError

    name = _shown(path, folder, source)
    try:
        with Image.open(path) as img:
            img.load()
            deep = img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N")
            if (img.height, img.width) != (height, width):
                if not resize:
                    raise InputError(_size_error(img, height, width, f" ([{channels}, {height}, "
                                                                     f"{width}])"), file=name)
                if img.mode in ("P", "PA", "1"):  # indices and bits: Pillow would resize them
                    img = img.convert("RGBA" if img.mode != "1" else "L")   # by nearest neighbour
                img = (img.convert("I") if deep else img).resize((width, height),
                                                                  Image.Resampling.BILINEAR)
            if deep:  # 16-bit grayscale: Pillow's "L" would clip it to 8 bits
                top = DIVIDE_BY["16-bit"]
                a = np.asarray(img, dtype=np.float64) / top
                if a.max(initial=0) > 1 or a.min(initial=0) < 0:
                    raise InputError(f"holds values outside 0..{top}, which is not a 16-bit "
                                     f"picture", file=name)
                a = np.repeat(a[None], channels, axis=0)
                if channels == 4:
                    a[3] = 1.0  # opaque
                return a
            if channels == 1 and img.mode not in ("L", "LA", "1"):
                rgb = np.asarray(img.convert("RGB"))
                if (rgb != rgb[..., :1]).any():   # a gray picture stored as RGB loses nothing
                    greyed.append(name)
            a = np.asarray(img.convert(MODES[channels]), dtype=np.float64) / DIVIDE_BY["8-bit"]
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise InputError(f"cannot read as a picture: {e}", file=name) from None
    return a[None] if channels == 1 else np.moveaxis(a, -1, 0)
