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

from .augment import AUGMENT
from .data import BUILTINS, SHAPES
from .errors import InputError
from .initializers import INITIALIZERS
from .layers import LAYERS
from .losses import LOSSES
from .optim import OPTIMIZERS
from .preprocess import DOC as PREPROCESS_DOC, check as preprocess_name
from .schedule import SCHEDULES
from .schema import (Invalid, Param, Skipped, _show, did_you_mean, fraction, int_or, nonneg_float,
                     nonneg_int, one_of, optional, positive_int, resolve, text)


def _input_shape(v):
    if (not isinstance(v, list) or not 1 <= len(v) <= 3
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v)):
        raise Invalid(f"must be a list of 1 to 3 positive integers ([length], [channels, length] "
                      f"or [channels, height, width]), got {_show(v)}")
    return list(v)


_input_shape.json = {"type": "array", "minItems": 1, "maxItems": 3,
                     "items": {"type": "integer", "minimum": 1}}


def _version(v):
    if v != 1:
        raise Invalid(f"this bpcli reads spec version 1, got {_show(v)}")
    return v


_version.json = {"const": 1}


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
    Param("preprocess", preprocess_name, "none", PREPROCESS_DOC),
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
          "a synthetic data set: pulses (is there a pulse in this noisy signal? labels 0/1), "
          "linear (y = X w + noise, for regression) or shapes (noisy blurred images of a disc, "
          "square, cross, ... for input [channels, height, width]; labels 0..classes-1)"),
    Param("n", positive_int, 1000, "number of samples a builtin set draws"),
    Param("classes", one_of(*range(2, len(SHAPES) + 1)), 3, "number of classes of builtin shapes: "
          "the first of " + ", ".join(SHAPES)),
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
    Param("augment", _any, None, "random changes to each training batch, never to validation or "
          "eval data (see augment fields); null: off"),
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


class _PositionLoader(yaml.SafeLoader):
    """The safe loader, remembering where each mapping key and sequence item starts."""


def _walk(node, path, out, dups, seen_nodes=None):
    # an alias reaches a node again (even itself): its first place is the one remembered
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key is not None and key in seen:
                dups.append((path + (key,), k.start_mark))
            seen.add(key)
            _walk(v, path + (key,), out, dups, seen_nodes)
            # errors about a key point at the key itself, not at its value
            out[path + (key,)] = (k.start_mark.line + 1, k.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _walk(v, path + (i,), out, dups, seen_nodes)


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
        out.extend(int(i) if i.isdigit() else i for i in idx)
    return tuple(out)


@dataclass
class Spec:
    """A validated spec: ``data`` is the resolved dict, every default filled in."""

    data: dict
    file: str | None = None
    positions: dict = field(default_factory=dict)
    raw: dict | None = None   # the mapping as written (before defaults), for --set
    sets: tuple = ()          # ((key path, "--set" item), ...) applied to raw

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent if self.file else Path.cwd()

    def error(self, path: str, message: str) -> InputError:
        """An InputError for key path ``path``, positioned at the nearest key the YAML had.

        A problem with a value given by --set names the --set instead of a line.
        """
        parts = _parse_path(path)
        for set_parts, item in self.sets:
            n = min(len(parts), len(set_parts))
            if n and parts[:n] == set_parts[:n]:
                return InputError(f"{message} (from --set {item})", file=self.file,
                                  path=path or None)
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
    """A path to a YAML file, YAML text via a path-like, or a dict -> validated :class:`Spec`.

    The first problem raises an :class:`InputError`; :func:`check` finds them all.
    """
    if isinstance(source, Spec):
        return source
    raw, file, positions, default_name, duplicates = _read(source, name)
    if duplicates:
        raise duplicates[0]
    return validate(raw, file=file, positions=positions, default_name=default_name)


def check(source, *, name: str | None = None, sets=()) -> Spec:
    """As :func:`load`, after applying ``--set`` items, but every problem in the spec is found:
    they raise together as one :class:`InputError` whose ``errors`` lists each, in file order.

    A part with errors is skipped by the checks that depend on it (a layer with an
    unknown name has no fields to check), so each problem is reported once.
    """
    if isinstance(source, Spec):
        source = source.raw if source.raw is not None else source.data
    raw, file, positions, default_name, duplicates = _read(source, name)
    raw, applied = _with_sets(raw, sets) if sets else (raw, ())
    return validate(raw, file=file, positions=positions, default_name=default_name,
                    collect=True, found=duplicates, sets=applied)


def _read(source, name):
    """(raw mapping, file, positions, default name, duplicate-key errors) of a path or a dict."""
    if isinstance(source, dict):
        return copy.deepcopy(source), None, {}, name or "model", []
    path = Path(source)
    try:
        text_ = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("spec file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read spec file: {e}", file=str(path)) from None
    try:
        loader = _PositionLoader(text_)
    except yaml.reader.ReaderError as e:  # a control character: the reader refuses the text
        before = text_[:e.position]
        raise InputError(f"invalid YAML: character {e.character:#06x} is not allowed in YAML",
                         file=str(path), line=before.count("\n") + 1,
                         column=e.position - before.rfind("\n")) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError("spec file is empty", file=str(path))
        positions, dups = {}, []
        _walk(node, (), positions, dups)
        duplicates = [InputError(f"key {dpath[-1]!r} appears twice", file=str(path),
                                 line=mark.line + 1, column=mark.column + 1,
                                 path=format_path(dpath)) for dpath, mark in dups]
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
    except RecursionError:
        raise InputError("invalid YAML: nested too deeply", file=str(path)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError(f"a spec is a mapping of keys (name, input, layers, loss, ...), got "
                         f"{type(data).__name__}", file=str(path), line=1)
    return data, str(path), positions, name or path.stem, duplicates


def _attempt(fn, *args):
    """(fn(*args), True), or (the partial result, False) when it reported errors (collecting)."""
    try:
        return fn(*args), True
    except Skipped as skipped:
        return skipped.partial, False


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
                     f"key, got {_show(value)}")
        raise Skipped
    if not isinstance(name, str) or name not in table:
        report(path, f"unknown {what} {_show(name)}{did_you_mean(name, table)}; known: "
                     f"{', '.join(table)}")
        raise Skipped
    fields = resolve(table[name].params, given, path, report)
    try:
        getattr(table[name], "check", lambda cfg: None)(fields)
    except Invalid as e:
        report(f"{path}.{e.key}" if e.key else path, str(e))
        raise Skipped from None
    return name, fields


def _init(value, n_layers, report):
    """``init``: an initializer for every weight, with optional per-layer overrides under ``layers``.

    ``n_layers`` is None when the layers are not a list: then only the form of an index is checked.
    """
    overrides, ok = {}, True
    if isinstance(value, dict):
        # {layers: {...}} alone keeps the default initializer for the other layers
        value = {**_INIT, **value}
        given = value.pop("layers", None) or {}
        if not isinstance(given, dict):
            report("init.layers", f"must be a mapping of layer index to initializer, e.g. "
                                  f"{{0: xavier}}, got {_show(given)}")
            given, ok = {}, False
        for i, entry in given.items():
            if not (isinstance(i, int) and not isinstance(i, bool) and i >= 0
                    and (n_layers is None or i < n_layers)):
                known = "an integer >= 0" if n_layers is None else f"0..{n_layers - 1}"
                report(f"init.layers.{i}", f"must be the index of a layer, {known}, got {_show(i)}")
                ok = False
                continue
            named, fine = _attempt(_named, entry, INITIALIZERS, f"init.layers.{i}", report,
                                   "initializer")
            if fine:
                overrides[i] = {"name": named[0], **named[1]}
            ok = ok and fine
    named, fine = _attempt(_named, value, INITIALIZERS, "init", report, "initializer")
    if not (ok and fine):
        raise Skipped
    return {"name": named[0], **named[1], "layers": overrides}


def _layer(i, entry, report):
    path = f"layers[{i}]"
    if isinstance(entry, str):
        lname, given = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        lname, given = next(iter(entry.items()))
        given = {} if given is None else given
    else:
        report(path, f"a layer is a name (relu) or a one-key mapping (conv1d: {{...}}), "
                     f"got {_show(entry)}")
        raise Skipped
    if lname not in LAYERS:
        report(path, f"unknown layer {_show(lname)}{did_you_mean(lname, LAYERS)}; known layers: "
                     f"{', '.join(LAYERS)}")
        raise Skipped
    fields = resolve(LAYERS[lname].params, given, f"{path}.{lname}", report)
    return {lname: fields} if fields else lname


def _layers(layers, report):
    if not isinstance(layers, list) or not layers:
        report("layers", f"must be a non-empty list of layers, got {_show(layers)}")
        raise Skipped
    resolved, ok = [], True
    for i, entry in enumerate(layers):
        layer, fine = _attempt(_layer, i, entry, report)
        resolved.append(layer)
        ok = ok and fine
    if not ok:
        raise Skipped(resolved)
    return resolved


def validate(raw: dict, *, file, positions, default_name, collect: bool = False, found=(),
             sets=()) -> Spec:
    """The spec as written -> :class:`Spec` with every default filled in.

    The first problem raises. With ``collect``, every problem is found (``found``:
    those met while reading) and they raise together (:meth:`InputError.several`);
    a part with errors is left out of the checks that depend on it.
    """
    spec = Spec({}, file, positions, raw=copy.deepcopy(raw), sets=tuple(sets))
    problems = list(found)

    def report(path, message):
        error = spec.error(path, message)
        if not collect:
            raise error
        problems.append(error)

    top, _ = _attempt(resolve, TOP, raw, "", report)
    top = top or {}
    top["name"] = top.get("name") or default_name

    layers = top.get("layers")
    if "layers" in top:
        top["layers"], _ = _attempt(_layers, layers, report)

    n_layers = len(layers) if isinstance(layers, list) else None
    top["init"], _ = _attempt(_init, top["init"], n_layers, report)
    names = {}
    for key, table in (("loss", LOSSES), ("regularization", None), ("optimizer", OPTIMIZERS),
                       ("schedule", SCHEDULES)):
        if table is None:
            top[key], _ = _attempt(resolve, REGULARIZATION, top[key], key, report)
        elif key in top:  # else reported missing
            named, ok = _attempt(_named, top[key], table, key, report, key)
            top[key] = {"name": named[0], **named[1]} if ok else None
            names[key] = named[0] if ok else None
    lname, oname = names.get("loss"), names.get("optimizer")

    training, _ = _attempt(resolve, TRAINING, top["training"], "training", report)
    if training is not None:
        # a bad batch_size was reported and stands as its default, None, here
        if training["batch_size"] is None:
            training["batch_size"] = "full" if oname and OPTIMIZERS[oname].full_batch else 32
        elif oname and OPTIMIZERS[oname].full_batch and training["batch_size"] != "full":
            report("training.batch_size", f"{oname} is full-batch steepest descent, so "
                                          f"batch_size must be full, got "
                                          f"{training['batch_size']}; use sgd for minibatches")
    top["training"] = training

    if top["data"] is not None:
        data, ok = _attempt(resolve, DATA, top["data"], "data", report)
        if ok and (data["builtin"] is None) == (data["path"] is None):
            report("data", "give exactly one of builtin: pulses or path: FILE")
        top["data"] = data

    if training is not None and training["early_stopping"] is not None:
        stopping, ok = _attempt(resolve, EARLY_STOPPING, training["early_stopping"],
                                "training.early_stopping", report)
        if ok and stopping["metric"] == "val_accuracy" and lname and LOSSES[lname].accuracy is None:
            report("training.early_stopping.metric", f"the {lname} loss has no accuracy; use "
                                                     f"val_loss")
        if stopping is not None and isinstance(top["data"], dict) and top["data"]["val_split"] == 0:
            report("training.early_stopping", "needs validation data, but data.val_split is 0")
        training["early_stopping"] = stopping
    if training is not None and training["augment"] is not None:
        training["augment"], _ = _attempt(resolve, AUGMENT, training["augment"], "training.augment",
                                          report)
    if problems:
        problems.sort(key=lambda e: (e.line is None, e.line or 0, e.column or 0))
        raise InputError.several(problems)
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


# ---------------------------------------------------------------- --set KEY.PATH=VALUE
def apply_sets(spec: Spec, items) -> Spec:
    """``spec`` with each ``--set key.path=value`` applied to the spec as written, validated again.

    Values are YAML (``0.1``, ``true``, ``null``, ``[1, 28, 28]``); every key on the path
    must be one the spec can have there, so a misspelt path is refused, with a suggestion.
    A problem with a value set this way names the --set rather than a line of the file.
    """
    if not items:
        return spec
    raw, sets = _with_sets(spec.raw if spec.raw is not None else spec.data, items)
    return validate(raw, file=spec.file, positions=spec.positions,
                    default_name=spec.data["name"], sets=sets)


def _with_sets(raw: dict, items) -> tuple[dict, tuple]:
    raw, sets = copy.deepcopy(raw), []
    for item in items:
        sets.append((_set(raw, item), item))
    return raw, tuple(sets)


def _set(raw: dict, item: str) -> tuple:
    """Apply one ``KEY.PATH=VALUE`` to ``raw`` (in place); the key path as errors name it."""
    text_path, eq, text_value = item.partition("=")
    text_path = text_path.strip()
    if not eq or not text_path:
        raise InputError("is not KEY.PATH=VALUE (e.g. --set optimizer.lr=0.01 or "
                         "--set layers[0].conv1d.kernel=5)", path=f"--set {item}")
    try:
        value = yaml.safe_load(text_value)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"the value is not YAML: {problem}", path=f"--set {item}") from None
    parts = _set_parts(text_path, item)
    node, here = raw, ()
    for depth, part in enumerate(parts):
        part = _step(node, here, part, item)
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node[part] = _container(node, here, part)
            node, here = node[part], here + (part,)
    return _parse_path(text_path)


def _set_parts(text_path: str, item: str) -> list:
    """``layers[2].conv1d.kernel`` -> ["layers", 2, "conv1d", "kernel"]; refuses anything else."""
    parts = []
    for segment in text_path.split("."):
        name, *indices = segment.split("[")
        if (not name and not indices) or not all(i.endswith("]") and i[:-1].isdigit()
                                                 for i in indices):
            raise InputError(f"{text_path!r} is not a key path such as optimizer.lr or "
                             f"layers[2].conv1d.kernel", path=f"--set {item}")
        parts.extend([name] if name else [])
        parts.extend(int(i[:-1]) for i in indices)
    return parts


def _step(node, here: tuple, part, item: str):
    """``part`` if the spec can have it inside ``node`` (at ``here``); else a clear error."""
    where = format_path(here) or "the spec"
    if isinstance(node, list):
        if not isinstance(part, int) or not 0 <= part < len(node):
            valid = f"0..{len(node) - 1}" if node else "none: it is empty"
            raise InputError(f"{where} is a list; its indices are {valid}, got {part!r}",
                             path=f"--set {item}")
        return part
    if not isinstance(node, dict):
        raise InputError(f"{where} is {_show(node)}, which has no key {part!r}",
                         path=f"--set {item}")
    if here == ("init", "layers") and isinstance(part, str) and part.isdigit():
        return int(part)  # init.layers.0: layer indices are the keys
    if len(here) == 2 and here[0] == "layers":
        lname = next(iter(node)) if len(node) == 1 else None
        if lname is not None and part != lname:
            raise InputError(f"{where} is a {lname} layer, not {part}; to replace the layer, "
                             f"--set '{where}={{{part}: {{...}}}}'", path=f"--set {item}")
        return part
    known = _keys_at(here, node)
    if known is not None and part not in known:
        raise InputError(f"unknown key {part!r} in {where}{did_you_mean(part, known)}; known keys: "
                         f"{', '.join(map(str, known)) or 'none'}", path=f"--set {item}")
    return part


def _container(node, here: tuple, part):
    """The mapping (or list) to descend into: the one written, a default, or a new one; a bare
    name becomes a mapping so that its fields can be set (``adam`` -> ``{name: adam}``)."""
    path = here + (part,)
    child = node[part] if isinstance(node, list) or part in node else None
    if child is None and not here:
        child = copy.deepcopy(next((p.default for p in TOP if p.name == part), None))
    if isinstance(child, str):
        if path in {(k,) for k in NAMED} or len(path) == 3 and path[:2] == ("init", "layers"):
            child = {"name": child}
        elif len(path) == 2 and path[0] == "layers":
            child = {child: {}}
    return {} if child is None else child


def _keys_at(here: tuple, node: dict):
    """The keys the spec can have in the mapping ``node`` at ``here``; None where validation
    alone can judge (a name it does not know, or a field that takes any mapping)."""
    if not here:
        return [p.name for p in TOP]
    if here in SECTIONS:
        return [p.name for p in SECTIONS[here]]
    if len(here) == 1 and here[0] in NAMED or len(here) == 3 and here[:2] == ("init", "layers"):
        table = NAMED[here[0]]
        name = node.get("name")
        if not isinstance(name, str) or name not in table:
            return None  # validation reports the unknown name, with its suggestion
        return ["name", *(["layers"] if here == ("init",) else []),
                *(p.name for p in table[name].params)]
    if len(here) == 3 and here[0] == "layers" and here[2] in LAYERS:
        return [p.name for p in LAYERS[here[2]].params]
    return None
