"""The spec's own fields (top level, ``data``, ``training``, ...) and where every table is
looked up by key path: what validation, ``--set``, ``bpcli schema`` and the reference read.

Every field's default lives in a table: the layers', losses', optimizers', schedules' and
initializers' on their definitions, the spec's own sections here. A default is written once.
"""

from __future__ import annotations

import inspect

from ..engine.backend import DEVICES
from ..nn.initializers import INITIALIZERS
from ..nn.losses import LOSSES
from ..nn.preprocess import DOC as PREPROCESS_DOC, check as preprocess_name
from ..train.augment import AUGMENT
from ..train.data import BUILTINS, FORMATS, LAYOUTS, SHAPES, shapes
from ..train.optim import OPTIMIZERS
from ..train.schedule import SCHEDULES
from ..core.fields import (Invalid, Param, quoted, boolean, fraction, int_or, nonneg_float, nonneg_int,
                     one_of, optional, positive_int, text)


def _input_shape(v):
    if (not isinstance(v, list) or not 1 <= len(v) <= 3
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v)):
        raise Invalid(f"must be a list of 1 to 3 positive integers ([length], [channels, length] "
                      f"or [channels, height, width]), got {quoted(v)}")
    return list(v)


_input_shape.json = {"type": "array", "minItems": 1, "maxItems": 3,
                     "items": {"type": "integer", "minimum": 1}}


def _version(v):
    if v != 1:
        raise Invalid(f"this bpcli reads spec version 1, got {quoted(v)}")
    return v


_version.json = {"const": 1}


def _any(v):
    return v


DEFAULT_INIT = {"name": "he"}

TOP = (
    Param("version", _version, 1, "spec format version"),
    Param("name", text, None, "run name; default: the spec file's name"),
    Param("input", _input_shape, doc="shape of one sample"),
    Param("dtype", one_of("float32", "float64"), "float32", "floating-point type for training"),
    Param("seed", nonneg_int, 0, "seed for initialization, data splits and shuffling"),
    Param("data", _any, None, "where the data comes from (see data fields); --data wins"),
    Param("preprocess", preprocess_name, "none", PREPROCESS_DOC),
    Param("layers", _any, doc="the network, a list of layers"),
    Param("init", _any, DEFAULT_INIT, "how weights start: an initializer name, or {name: ..., "
          "fields, layers: {INDEX or NAME: initializer}} to override it for some layers (by index, "
          "or by a layer's name); biases start at 0"),
    Param("loss", _any, doc="a loss name, or {name: ..., ...}"),
    Param("regularization", _any, None, "penalties on the weights added to the loss (see "
          "regularization fields); none by default"),
    Param("optimizer", _any, {"name": "adam"}, "an optimizer name, or {name: ..., lr: ...}"),
    Param("schedule", _any, {"name": "constant"}, "how the optimizer's lr changes during the run: "
          "a schedule name, or {name: ..., ...}"),
    Param("training", _any, None, "training loop settings (see training fields)"),
)

def _target(v):
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return text(v)


_target.json = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}


def _names(v, what):
    if (not isinstance(v, list) or not v or len(set(map(str, v))) != len(v)
            or not all(isinstance(n, str) and n or isinstance(n, int) and not isinstance(n, bool)
                       for n in v)):
        raise Invalid(f"must be a list of distinct {what}, got {quoted(v)}")
    return list(v)


def _classes(v):
    if isinstance(v, list):
        if not all(isinstance(n, str) for n in v):
            raise Invalid(f"must be a list of class names (strings), got {quoted(v)}")
        return _names(v, "class names")
    return one_of(*range(1, len(SHAPES) + 1))(v)


_classes.json = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": len(SHAPES)},
                           {"type": "array", "items": {"type": "string"}, "uniqueItems": True}]}


def _features(v):
    return _names(v, "column names or positions")


_features.json = {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                  "uniqueItems": True}


def _delimiter(v):
    if v in ("whitespace", "tab") or isinstance(v, str) and len(v) == 1 and v not in "\"\n\r":
        return v
    raise Invalid(f"must be one character (, ; |), tab or whitespace (any run of spaces and tabs), "
                  f"got {quoted(v)}")


_delimiter.json = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 1},
                             {"enum": ["tab", "whitespace"]}]}

# builtin shapes' own default number of classes, read from its definition
_SHAPES_DEFAULT = inspect.signature(shapes).parameters["classes"].default

DATA = (
    Param("builtin", optional(one_of(*BUILTINS)), None,
          "a synthetic data set: pulses (is there a pulse in this noisy signal? labels 0/1), "
          "linear (y = X w + noise, for regression), shapes (noisy blurred images of a disc, "
          "square, cross, ... for input [channels, height, width]; labels 0..classes-1) or "
          "shape_masks (the same pictures, each with its mask for segmentation: 1..classes "
          "inside the shape, 0 outside) or noisy_shapes (the same pictures, each with itself "
          "before the noise as its target, for denoising with a regression loss)"),
    Param("n", positive_int, 1000, "number of samples a builtin set draws"),
    Param("path", optional(text), None, "a file or folder, relative to the spec file: .csv (also "
          ".tsv, and .gz, .bz2, .zip, .xz compressed), .npz (arrays X, y), a folder with X.npy "
          "and y.npy (memory-mapped), or a folder of pictures with a subfolder per class (or "
          "with targets: a folder of pictures alone)"),
    Param("targets", optional(text), None, "a folder of target pictures, relative to the spec "
          "file: one per picture of path, of the same name (a.png for a.png or a.jpg). For a "
          "classifier loss each is a mask holding a class index per pixel (8-bit grayscale or "
          "palette PNG; masks of only 0 and 255 read as 0/1), for a regression loss a picture "
          "read as the inputs are (same channels, scaling and resize)", implicit=True),
    Param("format", optional(one_of(*FORMATS)), None, "what kind of data file path (and "
          "val_path, and a file given to eval and predict) is when its name does not say it "
          "(iris.data, a file without a suffix): csv (a text table, read with the options "
          "below), npz, npy or images; null: by the name, else by the content (text tables of "
          "numbers are recognised, comma, semicolon, tab or whitespace apart). A name that says "
          "its kind (.csv, .npz, .png, ...) is read as that kind", implicit=True),
    Param("layout", one_of(*LAYOUTS), "channels_first", "how the arrays of a .npz or .npy "
          "(and a table's flat rows) lay out a sample: channels_first, as the spec's input "
          "[channels, height, width] or [channels, length]; channels_last (height, width, "
          "channels), as TensorFlow and most image arrays store them: transposed as they are "
          "read, and y too when it holds pictures of the same size", implicit=True),
    Param("val_path", optional(text), None, "validation data from its own file or folder, read "
          "with the same options; then val_split is not used"),
    Param("val_targets", optional(text), None, "the target pictures of val_path, as targets are "
          "path's", implicit=True),
    Param("target", _target, "y", "label column of a table: a name, or a position (0 the first, "
          "-1 the last)"),
    Param("header", one_of("auto", True, False), "auto", "whether a table's first line (after "
          "skip_rows) names the columns; auto: yes unless all its fields are numbers"),
    Param("skip_rows", nonneg_int, 0, "lines to skip at the top of a table, before the header or "
          "data (a line of notes, say)"),
    Param("delimiter", optional(_delimiter), None, "a table's field separator: one character, "
          "tab or whitespace; null: sniffed (comma, semicolon, tab, |, else whitespace)"),
    Param("decimal", one_of(".", ","), ".", "a table's decimal mark: . (3.14) or , (3,14, as "
          "many European spreadsheets write numbers; their fields are apart by ; or tab)"),
    Param("classes", optional(_classes), None, "class names in index order: labels that are "
          "names (and class folders) become their index; null: the names sorted. Training "
          "records them; labels that are numbers are then indices into it. For builtin shapes: "
          "how many shapes, 2 to " + str(len(SHAPES)) + " (the first of " + ", ".join(SHAPES)
          + f"; null: {_SHAPES_DEFAULT}); for shape_masks 1 to {len(SHAPES)} (1: discs, a binary "
          "mask)"),
    Param("features", optional(_features), None, "a table's feature columns; null: every column "
          "but the target. Training records them, and later files are matched by name"),
    Param("resize", boolean, False, "resize pictures of another size to the spec's input "
          "(Pillow, bilinear; masks by nearest neighbour, keeping class indices); false: such a "
          "picture is an error"),
    Param("val_split", fraction, 0.2, "fraction of samples held out for validation (without "
          "val_path)"),
)

TRAINING = (
    Param("epochs", positive_int, 100, "passes over the training set"),
    Param("batch_size", int_or("full"), None, "samples per step, or full; default full for gd, "
          "else 32; more than the training samples takes them all, with a note"),
    Param("shuffle", one_of(True, False), True, "reshuffle the training set every epoch"),
    Param("precision", nonneg_float, 0.0, "stop once a step's largest |ΔW| is below this "
          "(the lecture's previous_step_size > precision); 0 turns it off"),
    Param("max_iters", optional(positive_int), None, "stop after this many steps (the lecture's "
          "max_iters); null for no limit"),
    Param("eval_every", positive_int, 1, "epochs between validation evaluations (iterations for "
          "gd, which logs every iteration); the last row is always evaluated"),
    Param("early_stopping", _any, None, "stop when the validation metric has not improved for "
          "patience evaluations (see early_stopping fields); null: off"),
    Param("augment", _any, None, "random changes to each training batch, never to validation or "
          "eval data (see augment fields); null: off"),
    Param("device", one_of(*DEVICES), "cpu", "where training runs: cpu (NumPy) or gpu (CuPy on a "
          "CUDA GPU, pip install 'bpcli[gpu]'); random draws stay on the host, so both follow the "
          "same samples and masks; --device wins"),
)

EARLY_STOPPING = (
    Param("patience", positive_int, 10, "evaluations without improvement before stopping"),
    Param("metric", one_of("val_loss", "val_accuracy"), "val_loss",
          "what must improve: val_loss (lower) or val_accuracy (higher), strictly"),
)

REGULARIZATION = (
    Param("l2", nonneg_float, 0.0, "λ in λ Σ w², summed over every weight entry (biases "
          "excluded); its gradient 2λw comes from the engine like the loss's"),
    Param("l1", nonneg_float, 0.0, "μ in μ Σ |w| over every weight entry (biases excluded); "
          "subgradient μ sign(w), 0 at w = 0"),
)


# The fields of the spec's nested mappings, by key path: what bpcli schema and --set read
# (validate() checks each of them by name below).
SECTIONS = {("data",): DATA, ("training",): TRAINING, ("training", "early_stopping"): EARLY_STOPPING,
            ("training", "augment"): AUGMENT,
            ("regularization",): REGULARIZATION}
# The entries that are a name from a table, or {name: ..., fields}
NAMED = {"init": INITIALIZERS, "loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}

