"""A spec as written -> the validated, fully resolved :class:`~bpcli.core.document.Spec`, every
error pointing at file:line:column (or at the ``--set`` that caused it).

:func:`load` stops at the first problem; :func:`check` finds every one of them.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..errors import InputError
from ..nn.initializers import INITIALIZERS
from ..nn.graph import compile_spec
from ..nn.layers import LAYERS
from ..nn.network import WIRING, network_of
from ..nn.losses import LOSSES
from ..train.augment import check as check_augment, moved_targets
from ..train.optim import OPTIMIZERS
from ..train.schedule import SCHEDULES
from ..core.document import Spec, parse_path, read
from ..core.fields import Invalid, Skipped, closest, did_you_mean, quoted, resolve
from .overrides import with_sets
from .sections import DEFAULT_INIT, AUGMENT, DATA, EARLY_STOPPING, REGULARIZATION, TOP, TRAINING


# layers other libraries put at a classifier's end that bpcli's losses apply themselves
IN_THE_LOSS = {"softmax": "softmax_cross_entropy", "log_softmax": "softmax_cross_entropy"}

# other libraries' names (PyTorch, Keras, the literature) for what bpcli names otherwise, by
# their spelling lower-cased without _ or -: an unknown name that is one of them is pointed at
# bpcli's, not at the nearest spelling (deconv2d is conv2d_transpose, not conv2d)
OTHER_NAMES = {
    # layers
    "deconv1d": "conv1d_transpose", "convtranspose1d": "conv1d_transpose",
    "conv1dtranspose": "conv1d_transpose", "transposedconv1d": "conv1d_transpose",
    "deconv": "conv2d_transpose", "deconv2d": "conv2d_transpose",
    "deconvolution": "conv2d_transpose", "convtranspose2d": "conv2d_transpose",
    "conv2dtranspose": "conv2d_transpose", "transposedconv2d": "conv2d_transpose",
    "upsample": "upsample2d", "upsampling2d": "upsample2d", "interpolate": "upsample2d",
    "upsamplingnearest2d": "upsample2d", "upsamplingbilinear2d": "upsample2d",
    "upsampling1d": "upsample1d",
    "linear": "dense", "lazylinear": "dense", "fc": "dense", "fullyconnected": "dense",
    "innerproduct": "dense",
    "batchnorm1d": "batchnorm", "batchnorm2d": "batchnorm", "batchnormalization": "batchnorm",
    "bn": "batchnorm",
    "maxpooling1d": "maxpool1d", "maxpooling2d": "maxpool2d", "maxpool": "maxpool2d",
    "averagepooling1d": "avgpool1d", "averagepooling2d": "avgpool2d", "avgpool": "avgpool2d",
    "globalaveragepooling1d": "global_avgpool", "globalaveragepooling2d": "global_avgpool",
    "adaptiveavgpool1d": "global_avgpool", "adaptiveavgpool2d": "global_avgpool",
    "globalmaxpooling1d": "global_maxpool", "globalmaxpooling2d": "global_maxpool",
    "adaptivemaxpool1d": "global_maxpool", "adaptivemaxpool2d": "global_maxpool",
    "dropout1d": "dropout", "dropout2d": "dropout",
    "cat": "concat", "concatenate": "concat",
    # losses
    "crossentropy": "softmax_cross_entropy", "crossentropyloss": "softmax_cross_entropy",
    "categoricalcrossentropy": "softmax_cross_entropy",
    "sparsecategoricalcrossentropy": "softmax_cross_entropy",
    "bcewithlogits": "sigmoid_cross_entropy", "bcewithlogitsloss": "sigmoid_cross_entropy",
    "bce": "sigmoid_cross_entropy", "binarycrossentropy": "sigmoid_cross_entropy",
    "mseloss": "mse", "meansquarederror": "mse", "l2": "mse",
    "l1loss": "mae", "meanabsoluteerror": "mae", "l1": "mae",
    "smoothl1loss": "huber", "huberloss": "huber", "hingeembeddingloss": "hinge",
    "diceloss": "dice",
}


def _folded(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def suggestion(name, known) -> str:
    """What to say after "unknown NAME": bpcli's name for another library's (``deconv2d``:
    conv2d_transpose, ``Linear``: dense), the known name it is spelt differently from
    (``MaxPool2d``: maxpool2d), else the nearest spelling; "" when nothing is near."""
    if not isinstance(name, str):
        return ""
    other = OTHER_NAMES.get(_folded(name))
    if other in known:
        return f" (bpcli calls it {other!r})"
    same = [k for k in known if _folded(k) == _folded(name)]
    return f" (did you mean {same[0]!r}?)" if same else did_you_mean(name, known)


def load(source, *, name: str | None = None) -> Spec:
    """A path to a YAML file, YAML text via a path-like, or a dict -> validated :class:`Spec`.

    Every problem in the spec raises together, in file order, as one :class:`InputError`
    whose ``errors`` lists each (as :func:`check`, which also applies ``--set`` items): a
    user mends them all in one go, starting from the top of the file.
    """
    if isinstance(source, Spec):
        return source
    return check(source, name=name)


def check(source, *, name: str | None = None, sets=()) -> Spec:
    """As :func:`load`, after applying ``--set`` items, but every problem in the spec is found:
    they raise together as one :class:`InputError` whose ``errors`` lists each, in file order.

    A part with errors is skipped by the checks that depend on it (a layer with an
    unknown name has no fields to check), so each problem is reported once.
    """
    if isinstance(source, Spec):
        source = source.raw if source.raw is not None else source.data
    raw, file, positions, default_name, duplicates = read(source, name)
    raw, applied = with_sets(raw, sets) if sets else (raw, ())
    return validate(raw, file=file, positions=positions, default_name=default_name,
                    collect=True, found=duplicates, sets=applied)



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
        meant = [k for k in value if closest(k, ["name"])] if isinstance(value, dict) else []
        if meant:  # {nmae: adam}: the name key misspelt, said as any other key's would be
            report(f"{path}.{meant[0]}", f"unknown key {meant[0]!r} (did you mean 'name'?); "
                                         f"{article} {what} is a name or a mapping with a name key")
        else:
            report(path, f"must be {article} {what} name ({', '.join(table)}) or a mapping with "
                         f"a name key, got {quoted(value)}")
        raise Skipped
    if not isinstance(name, str) or name not in table:
        report(path, f"unknown {what} {quoted(name)}{suggestion(name, table)}; known: "
                     f"{', '.join(table)}")
        raise Skipped
    fields = resolve(table[name].params, given, path, report)
    try:
        getattr(table[name], "check", lambda cfg: None)(fields)
    except Invalid as e:
        report(f"{path}.{e.key}" if e.key else path, str(e))
        raise Skipped from None
    return name, fields


def _layer_names(layers) -> dict:
    """{name: index} of the layers as written that give themselves a ``name``."""
    names = {}
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        fields = next(iter(entry.values())) if isinstance(entry, dict) and len(entry) == 1 else None
        if isinstance(fields, dict) and isinstance(fields.get("name"), str):
            names.setdefault(fields["name"], i)
    return names


def _init(value, n_layers, report, names=None):
    """``init``: an initializer for every weight, with optional per-layer overrides under ``layers``,
    each by the layer's index or its ``name`` (resolved to the index).

    ``n_layers`` is None when the layers are not a list: then only the form of an index is checked.
    """
    names = names or {}
    overrides, ok = {}, True
    if isinstance(value, dict):
        # {layers: {...}} alone keeps the default initializer for the other layers
        value = {**DEFAULT_INIT, **value}
        given = value.pop("layers", None) or {}
        if not isinstance(given, dict):
            report("init.layers", f"must be a mapping of layer index to initializer, e.g. "
                                  f"{{0: xavier}}, got {quoted(given)}")
            given, ok = {}, False
        for key, entry in given.items():
            i = names.get(key, key) if isinstance(key, str) else key
            if not (isinstance(i, int) and not isinstance(i, bool) and i >= 0
                    and (n_layers is None or i < n_layers)):
                known = "an integer >= 0" if n_layers is None else f"0..{n_layers - 1}"
                named = f" or a layer's name ({', '.join(names)})" if names else ""
                report(f"init.layers.{key}", f"must be the index of a layer, {known}{named}, got "
                                             f"{quoted(key)}{did_you_mean(str(key), names)}")
                ok = False
                continue
            named, fine = _attempt(_named, entry, INITIALIZERS, f"init.layers.{key}", report,
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
                     f"got {quoted(entry)}")
        raise Skipped
    if isinstance(lname, str):  # Softmax, LogSoftmax as PyTorch spells them
        lname = {_folded(k): k for k in IN_THE_LOSS}.get(_folded(lname), lname)
    if lname in IN_THE_LOSS:
        report(path, f"{lname} is not a layer here: the {IN_THE_LOSS[lname]} loss applies it to "
                     f"the network's output itself (as PyTorch's CrossEntropyLoss takes logits), "
                     f"so end the network with dense: {{units: K}}, one output per class, and "
                     f"leave {lname} out; eval and predict report the probabilities")
        raise Skipped
    if lname not in LAYERS:
        report(path, f"unknown layer {quoted(lname)}{suggestion(lname, LAYERS)}; known layers: "
                     f"{', '.join(LAYERS)}")
        raise Skipped
    if not isinstance(given, dict):
        report(f"{path}.{lname}", f"must be a mapping of {lname}'s fields, got {quoted(given)}")
        raise Skipped
    if "with" in given and not LAYERS[lname].merges:
        merging = ", ".join(name for name, d in LAYERS.items() if d.merges)
        report(f"{path}.{lname}.with", f"{lname} takes one input: with is for the layers that "
                                       f"merge several ({merging}); to take another layer's "
                                       f"output instead of the previous one, use from")
        raise Skipped
    # name and from, which every layer may take, are checked as the layer's own fields are
    # (implicit: a layer without them resolves as it always has)
    fields = resolve((*LAYERS[lname].params, *WIRING), given, f"{path}.{lname}", report)
    return {lname: fields} if fields else lname


def _layers(layers, report):
    if not isinstance(layers, list) or not layers:
        report("layers", f"must be a non-empty list of layers, got {quoted(layers)}")
        raise Skipped
    resolved, ok = [], True
    for i, entry in enumerate(layers):
        layer, fine = _attempt(_layer, i, entry, report)
        resolved.append(layer)
        ok = ok and fine
    if not ok:
        raise Skipped(resolved)
    mistakes = []

    def wiring(path, message):
        mistakes.append(path)
        report(path, message)
    network_of(resolved, wiring)  # every wiring mistake: unknown, later and duplicate names
    if mistakes:
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
    top["init"], _ = _attempt(_init, top["init"], n_layers, report, _layer_names(layers))
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
        if ok:
            _data_sources(data, report)
        top["data"] = data

    if training is not None and training["early_stopping"] is not None:
        stopping, ok = _attempt(resolve, EARLY_STOPPING, training["early_stopping"],
                                "training.early_stopping", report)
        if ok and stopping["metric"] == "val_accuracy" and lname and LOSSES[lname].accuracy is None:
            report("training.early_stopping.metric", f"the {lname} loss has no accuracy; use "
                                                     f"val_loss")
        if (stopping is not None and isinstance(top["data"], dict) and top["data"]["val_split"] == 0
                and top["data"]["val_path"] is None):
            report("training.early_stopping", "needs validation data, but data.val_split is 0")
        training["early_stopping"] = stopping
    if training is not None and training["augment"] is not None:
        training["augment"], _ = _attempt(resolve, AUGMENT, training["augment"], "training.augment",
                                          report)
    if problems:
        problems.sort(key=lambda e: (e.line is None, e.line or 0, e.column or 0))
        raise InputError.several(problems)
    spec.data = top
    spec.network = network_of(top["layers"])
    _check_network(spec)
    return spec


def _data_sources(data: dict, report) -> None:
    """Where the data comes from: a builtin set or a path (neither: --data gives it at run
    time), and the fields that fit only one of them."""
    from ..train.data import DRAWS_SHAPES

    if data["builtin"] is not None and data["path"] is not None:
        report("data", "give one of builtin: NAME or path: FILE, not both")
    elif data["builtin"] is not None:
        if isinstance(data["classes"], list):
            report("data.classes", "a builtin set names its own classes; a list of class names is "
                                   "for data from a file (path)")
        elif data["classes"] == 1 and data["builtin"] != "shape_masks":
            report("data.classes", "a classifier tells 2 classes apart at least; classes: 1 is for "
                                   "builtin: shape_masks (a binary mask of discs)")
        if data["val_path"] is not None:
            report("data.val_path", "validation data from a file goes with data from a file "
                                    "(path), not a builtin set")
        for key in ("targets", "val_targets"):
            if data.get(key) is not None:
                report(f"data.{key}", "target pictures go with input pictures from a folder "
                                      "(path), not a builtin set (builtin: shape_masks draws "
                                      "its own masks)")
    elif isinstance(data["classes"], int):
        report("data.classes", f"a number of classes is for builtin: {' or '.join(DRAWS_SHAPES)};"
                               f" for data from a file give the class names in index order, "
                               f"[cat, dog], or leave it out")
    if (data.get("val_targets") is not None and data["val_path"] is None
            and data["builtin"] is None):
        report("data.val_targets", "goes with data.val_path: the target pictures of its input "
                                   "pictures")


def _check_network(spec: Spec) -> None:
    """What only the compiled network can tell: every layer takes its input (shapes, stopping
    at the first layer that cannot, as the shapes after it are unknown), ``init.layers`` names
    layers that have weights, and the augmentations fit the input."""
    program, compiled = compile_spec(spec, every_error=True)
    with_weights = {p.layer for p in compiled.params if p.fan_in is not None}
    for i in spec.data["init"]["layers"]:
        if i not in with_weights:
            raise spec.error(f"init.layers.{i}", f"{spec.network[i]} has no weights to initialize")
    augment = spec.data["training"]["augment"]
    if augment is not None:
        try:
            check_augment(augment, spec.data["input"], moved_targets(
                LOSSES[spec.data["loss"]["name"]], spec.data["input"],
                program.outputs["output"].shape))
        except Invalid as e:
            raise spec.error(f"training.augment.{e.key}", str(e)) from None


def set_value(spec: Spec, path: str, value) -> Spec:
    """A copy of the spec's resolved data with ``path`` set, validated again (for --epochs etc.)."""
    data = copy.deepcopy(spec.data)
    node = data
    parts = parse_path(path)
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return validate(data, file=spec.file, positions=spec.positions, default_name=spec.data["name"])


def with_data(spec: Spec, path, target=None, val_path=None, targets=None,
              val_targets=None) -> Spec:
    """The spec with its data read from the file (or folder) ``path`` (and its validation data
    from ``val_path``, if given; the target pictures of each from ``targets`` and
    ``val_targets``): the spec's other data options kept (a builtin set is replaced),
    ``target`` given on the command line winning, and every option not given at its default
    (the DATA table's). Paths are made absolute, so a run folder's spec is read from anywhere."""
    entry = without_builtin(spec.data["data"] or {})
    entry["path"] = str(Path(path).resolve())
    given = {"val_path": val_path, "targets": targets, "val_targets": val_targets}
    for key, value in given.items():
        if entry.get(key) is not None:  # the spec's own, relative to the spec file
            entry[key] = str((spec.base_dir / entry[key]).resolve())
        if value is not None:
            entry[key] = str(Path(value).resolve())
    if target is not None:
        entry["target"] = target
    return set_value(spec, "data", entry)


def without_builtin(entry: dict) -> dict:
    """A data entry without the fields of a builtin set (``builtin``, ``n``, a number of
    ``classes``): what stays applies to data from a file (or folder) as well."""
    return {k: v for k, v in entry.items()
            if k not in ("builtin", "n") and not (k == "classes" and isinstance(v, int))}


# ---------------------------------------------------------------- --set KEY.PATH=VALUE
def apply_sets(spec: Spec, items, *, data=None) -> Spec:
    """``spec`` with each ``--set key.path=value`` applied to the spec as written, validated again.

    Values are YAML (``0.1``, ``true``, ``null``, ``[1, 28, 28]``); every key on the path
    must be one the spec can have there, so a misspelt path is refused, with a suggestion.
    A problem with a value set this way names the --set rather than a line of the file.

    ``data``: the file or folder ``--data`` gives (None: none). It replaces a builtin set, as
    :func:`with_data` does later, so the builtin set's fields are taken out of the spec as
    written before the sets are applied and checked: ``--set data.classes=[cat, dog]`` is then
    checked as a setting for data from a file, which it is, not refused as one for the builtin set.
    """
    if not items:
        return spec
    raw = spec.raw if spec.raw is not None else spec.data
    if data is not None and isinstance(raw.get("data"), dict):
        raw = {**raw, "data": without_builtin(raw["data"])}
    raw, sets = with_sets(raw, items)
    return validate(raw, file=spec.file, positions=spec.positions,
                    default_name=spec.data["name"], sets=sets)
