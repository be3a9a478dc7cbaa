"""YAML spec -> validated, fully resolved spec, with every error pointing at file:line:column.

The YAML is parsed with PyYAML's safe loader only (a ``!!python/...`` tag is an
error, never code), and the node tree is kept so that a key path such as
``layers[2].conv1d.kernel`` maps back to the line it came from, also for
errors found later (shapes, data). Every field's default lives in the tables
(:mod:`bpcli.layers`, :mod:`bpcli.losses`, :mod:`bpcli.optim`,
:mod:`bpcli.schedule`, :mod:`bpcli.initializers` and ``TOP``, ``DATA``,
``TRAINING``, ``EARLY_STOPPING``, ``REGULARIZATION`` below); the resolved spec
has all of them filled in.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .data import BUILTINS
from .errors import InputError
from .initializers import INITIALIZERS
from .layers import LAYERS
from .losses import LOSSES
from .optim import OPTIMIZERS
from .schedule import SCHEDULES
from .schema import (Invalid, Param, did_you_mean, fraction, int_or, nonneg_float, nonneg_int,
                     one_of, optional, positive_int, resolve, text)


def _input_shape(v):
    if (not isinstance(v, list) or not 1 <= len(v) <= 3
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v)):
        raise Invalid(f"must be a list of 1 to 3 positive integers ([length], [channels, length] "
                      f"or [channels, height, width]), got {v!r}")
    return list(v)


def _version(v):
    if v != 1:
        raise Invalid(f"this bpcli reads spec version 1, got {v!r}")
    return v


def _any(v):
    return v


_INIT = {"name": "he"}

TOP = (
    Param("version", _version, 1, "spec format version"),
    Param("name", text, None, "run name; default: the spec file's name"),
    Param("input", _input_shape, doc="shape of one sample"),
    Param("dtype", one_of("float32", "float64"), "float32", "floating-point type for training"),
    Param("seed", nonneg_int, 0, "seed for initialization, data splits and shuffling"),
    Param("data", _any, None, "where the data comes from (see data fields); --data wins"),
    Param("layers", _any, doc="the network, a list of layers"),
    Param("init", _any, _INIT, "how weights start: an initializer name, or {name: ..., "
          "fields, layers: {INDEX: initializer}} to override it for some layers; biases start at 0"),
    Param("loss", _any, doc="a loss name, or {name: ..., ...}"),
    Param("regularization", _any, None, "penalties on the weights added to the loss (see "
          "regularization fields); none by default"),
    Param("optimizer", _any, {"name": "adam"}, "an optimizer name, or {name: ..., lr: ...}"),
    Param("schedule", _any, {"name": "constant"}, "how the optimizer's lr changes during the run: "
          "a schedule name, or {name: ..., ...}"),
    Param("training", _any, None, "training loop settings (see training fields)"),
)

DATA = (
    Param("builtin", optional(one_of(*BUILTINS)), None,
          "a synthetic data set: pulses (is there a pulse in this noisy signal? labels 0/1) or "
          "linear (y = X w + noise, for regression)"),
    Param("n", positive_int, 1000, "number of samples a builtin set draws"),
    Param("path", optional(text), None, ".npz (arrays X, y) or .csv (header; labels in column "
          "target); relative to the spec file"),
    Param("target", text, "y", "label column of a .csv file"),
    Param("val_split", fraction, 0.2, "fraction of samples held out for validation"),
)

TRAINING = (
    Param("epochs", positive_int, 100, "passes over the training set"),
    Param("batch_size", int_or("full"), None, "samples per step, or full; default full for gd, "
          "else 32"),
    Param("shuffle", one_of(True, False), True, "reshuffle the training set every epoch"),
    Param("precision", nonneg_float, 0.0, "stop once a step's largest |ΔW| is below this "
          "(the lecture's previous_step_size > precision); 0 turns it off"),
    Param("max_iters", optional(positive_int), None, "stop after this many steps (the lecture's "
          "max_iters); null for no limit"),
    Param("eval_every", positive_int, 1, "epochs between validation evaluations (iterations for "
          "gd, which logs every iteration); the last row is always evaluated"),
    Param("early_stopping", _any, None, "stop when the validation metric has not improved for "
          "patience evaluations (see early_stopping fields); null: off"),
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


class _PositionLoader(yaml.SafeLoader):
    """The safe loader, remembering where each mapping key and sequence item starts."""


def _walk(node, path, out, dups):
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value
            if key in seen:
                dups.append((path + (key,), k.start_mark))
            seen.add(key)
            _walk(v, path + (key,), out, dups)
            # errors about a key point at the key itself, not at its value
            out[path + (key,)] = (k.start_mark.line + 1, k.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _walk(v, path + (i,), out, dups)


def format_path(path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def _parse_path(text_path: str) -> tuple:
    out = []
    for part in text_path.replace("]", "").split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i) for i in idx)
    return tuple(out)


@dataclass
class Spec:
    """A validated spec: ``data`` is the resolved dict, every default filled in."""

    data: dict
    file: str | None = None
    positions: dict = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent if self.file else Path.cwd()

    def error(self, path: str, message: str) -> InputError:
        """An InputError for key path ``path``, positioned at the nearest key the YAML had."""
        parts = _parse_path(path)
        while parts and parts not in self.positions:
            parts = parts[:-1]
        line, col = self.positions.get(parts, (None, None))
        return InputError(message, file=self.file, line=line, column=col, path=path or None)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=None)

    def layer_list(self):
        """[(name, params)] in order."""
        return [next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                for entry in self.data["layers"]]


def load(source, *, name: str | None = None) -> Spec:
    """A path to a YAML file, YAML text via a path-like, or a dict -> validated :class:`Spec`."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return validate(copy.deepcopy(source), file=None, positions={}, default_name=name or "model")
    path = Path(source)
    try:
        text_ = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("spec file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read spec file: {e}", file=str(path)) from None
    loader = _PositionLoader(text_)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError("spec file is empty", file=str(path))
        positions, dups = {}, []
        _walk(node, (), positions, dups)
        if dups:
            dpath, mark = dups[0]
            raise InputError(f"key {dpath[-1]!r} appears twice", file=str(path),
                             line=mark.line + 1, column=mark.column + 1, path=format_path(dpath))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or "").strip()
        if "python/" in str(e) or "could not determine a constructor" in problem:
            problem = (f"{problem}: only plain YAML is read (tags that build Python objects are "
                       f"refused)")
        raise InputError(f"invalid YAML: {problem or e}", file=str(path),
                         line=mark.line + 1 if mark else None,
                         column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {e}", file=str(path)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError(f"a spec is a mapping of keys (name, input, layers, loss, ...), got "
                         f"{type(data).__name__}", file=str(path), line=1)
    return validate(data, file=str(path), positions=positions, default_name=name or path.stem)


def _named(value, table, path, report, what):
    """A name, or {name: ..., fields...} -> (name, resolved fields), checked together when the
    table entry has a ``check`` of its fields."""
    if isinstance(value, str):
        name, given = value, {}
    elif isinstance(value, dict) and "name" in value:
        given = dict(value)
        name = given.pop("name")
    else:
        article = "an" if what[0] in "aeiou" else "a"
        report(path, f"must be {article} {what} name ({', '.join(table)}) or a mapping with a name "
                     f"key, got {value!r}")
    if name not in table:
        report(path, f"unknown {what} {name!r}{did_you_mean(name, table)}; known: {', '.join(table)}")
    fields = resolve(table[name].params, given, path, report)
    try:
        getattr(table[name], "check", lambda cfg: None)(fields)
    except Invalid as e:
        report(f"{path}.{e.key}" if e.key else path, str(e))
    return name, fields


def _init(value, n_layers, report):
    """``init``: an initializer for every weight, with optional per-layer overrides under ``layers``."""
    overrides = {}
    if isinstance(value, dict):
        # {layers: {...}} alone keeps the default initializer for the other layers
        value = {**_INIT, **value}
        given = value.pop("layers", None) or {}
        if not isinstance(given, dict):
            report("init.layers", f"must be a mapping of layer index to initializer, e.g. "
                                  f"{{0: xavier}}, got {given!r}")
        for i, entry in given.items():
            if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_layers):
                report(f"init.layers.{i}", f"must be the index of a layer, 0..{n_layers - 1}, "
                                           f"got {i!r}")
            iname, ifields = _named(entry, INITIALIZERS, f"init.layers.{i}", report, "initializer")
            overrides[i] = {"name": iname, **ifields}
    name, fields = _named(value, INITIALIZERS, "init", report, "initializer")
    return {"name": name, **fields, "layers": overrides}


def validate(raw: dict, *, file, positions, default_name) -> Spec:
    spec = Spec({}, file, positions)

    def report(path, message):
        raise spec.error(path, message)

    top = resolve(TOP, raw, "", report)
    top["name"] = top["name"] or default_name

    layers = top["layers"]
    if not isinstance(layers, list) or not layers:
        report("layers", f"must be a non-empty list of layers, got {layers!r}")
    resolved_layers = []
    for i, entry in enumerate(layers):
        path = f"layers[{i}]"
        if isinstance(entry, str):
            lname, given = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            lname, given = next(iter(entry.items()))
            given = {} if given is None else given
        else:
            report(path, f"a layer is a name (relu) or a one-key mapping (conv1d: {{...}}), "
                         f"got {entry!r}")
        if lname not in LAYERS:
            report(path, f"unknown layer {lname!r}{did_you_mean(lname, LAYERS)}; known layers: "
                         f"{', '.join(LAYERS)}")
        fields = resolve(LAYERS[lname].params, given, f"{path}.{lname}", report)
        resolved_layers.append({lname: fields} if fields else lname)
    top["layers"] = resolved_layers

    top["init"] = _init(top["init"], len(resolved_layers), report)
    lname, lfields = _named(top["loss"], LOSSES, "loss", report, "loss")
    top["loss"] = {"name": lname, **lfields}
    top["regularization"] = resolve(REGULARIZATION, top["regularization"], "regularization", report)
    oname, ofields = _named(top["optimizer"], OPTIMIZERS, "optimizer", report, "optimizer")
    top["optimizer"] = {"name": oname, **ofields}
    sname, sfields = _named(top["schedule"], SCHEDULES, "schedule", report, "schedule")
    top["schedule"] = {"name": sname, **sfields}

    training = resolve(TRAINING, top["training"], "training", report)
    if training["batch_size"] is None:
        training["batch_size"] = "full" if OPTIMIZERS[oname].full_batch else 32
    elif OPTIMIZERS[oname].full_batch and training["batch_size"] != "full":
        report("training.batch_size", f"{oname} is full-batch steepest descent, so batch_size must "
                                      f"be full, got {training['batch_size']}; use sgd for minibatches")
    top["training"] = training

    if top["data"] is not None:
        data = resolve(DATA, top["data"], "data", report)
        if (data["builtin"] is None) == (data["path"] is None):
            report("data", "give exactly one of builtin: pulses or path: FILE")
        top["data"] = data

    if training["early_stopping"] is not None:
        stopping = resolve(EARLY_STOPPING, training["early_stopping"], "training.early_stopping",
                           report)
        if stopping["metric"] == "val_accuracy" and LOSSES[lname].accuracy is None:
            report("training.early_stopping.metric", f"the {lname} loss has no accuracy; use "
                                                     f"val_loss")
        if top["data"] is not None and top["data"]["val_split"] == 0:
            report("training.early_stopping", "needs validation data, but data.val_split is 0")
        training["early_stopping"] = stopping
    spec.data = top
    return spec


def set_value(spec: Spec, path: str, value) -> Spec:
    """A copy of the spec's resolved data with ``path`` set, validated again (for --epochs etc.)."""
    data = copy.deepcopy(spec.data)
    node = data
    parts = _parse_path(path)
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return validate(data, file=spec.file, positions=spec.positions, default_name=spec.data["name"])
