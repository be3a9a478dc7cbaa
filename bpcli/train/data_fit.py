"""What ``train`` (and gradcheck, sweep) refuse in data that the spec could be changed to fit,
each refusal with the change that makes it fit: samples of another shape than the spec's input,
class names under a regression loss, classes that the network's outputs do not tell apart one
to one (with a rare class named as a likely typo), class indices beyond the outputs."""

from __future__ import annotations

import shlex

import numpy as np

from . import data as data_mod
from ..errors import InputError
from ..nn.model import Model
from ..core.document import Spec, parse_path
from ..core.fields import Invalid, closest
from .tables import few, is_number


def check_data(spec: Spec, model: Model, dataset: data_mod.Dataset) -> None:
    """What ``train`` (and gradcheck, sweep) refuse in data that the spec ``spec`` could be
    changed to fit, each with the change that makes it fit (InputError):

    - samples of another shape than the spec's ``input``;
    - class names (a label column of names, class folders of pictures) under a regression loss;
    - named classes that the loss does not tell apart one to one (2 classes, 5 outputs): eval
      and predict would refuse such a run (:meth:`Model.classes`);
    - class indices 0..K-1 beyond the classes the loss tells apart (per sample, or per pixel
      in label maps: masks, naming the mask files).
    """
    got, want = tuple(dataset.X.shape[1:]), list(spec.data["input"])
    if dataset.X.ndim >= 2 and got != tuple(want):
        if _pictures_channels_last(got):
            # never input: [32, 32, 3]: that is 32 channels of 32x3 pictures
            fit = [got[-1], *got[:-1]]
            raise spec.error("input", f"{dataset.source} has samples of shape {got}, which look "
                                      f"like {got[0]}x{got[1]} pictures of {got[-1]} channels "
                                      f"stored channels last, but the spec's input is {want} "
                                      f"(bpcli reads [channels, height, width]): "
                                      f"{_change(spec, {'input': fit, 'data.layout': 'channels_last'})}"
                                      f", or transpose X yourself (np.moveaxis(X, -1, 1)) and "
                                      f"set input: {_yaml(fit)}")
        flat = (f" (or give rows of {int(np.prod(want))} numbers, read as {want})"
                if len(got) == 1 and len(want) > 1 else "")
        raise spec.error("input", f"{dataset.source} has samples of shape {got}, but the spec's "
                                  f"input is {want}: {_change(spec, {'input': list(got)})}{flat}")
    if dataset.y is None or model.loss_def.label_shape(model.output_shape) is None:
        return
    _check_label_shape(spec, model, dataset)
    if _label_maps(model, dataset):
        _check_maps(spec, model, dataset)
    if dataset.classes is not None:
        _check_classes(spec, model, dataset)
    elif model.n_classes is not None:
        _check_indices(spec, model, dataset)


def _check_label_shape(spec: Spec, model: Model, dataset: data_mod.Dataset) -> None:
    """Labels of a shape the loss does not take, refused with y's shape as the file holds it (the
    loss's own check runs later on the training split, whose shape the user never saw). No
    sample is tried first (the shape alone, no value, is checked); the whole y is converted only
    to word the error, which each loss checks the shape of before any value."""
    loss, y = model.loss_def, dataset.y
    if dataset.classes is not None or np.asarray(y[:0]).dtype.kind not in "biufb":
        return
    try:
        loss.labels(np.asarray(y[:0]), model.output_shape, spec.data["loss"])
        return
    except Invalid:
        pass
    try:
        loss.labels(np.asarray(y), model.output_shape, spec.data["loss"])
    except Invalid as e:
        shape = "" if str(tuple(y.shape)) in str(e) else f" (y in the file: shape {y.shape})"
        raise InputError(f"{loss.name} loss: {e}{shape}", file=dataset.source) from None


def _pictures_channels_last(sample) -> bool:
    """Whether array samples look like pictures with their channels last: (height, width, C) with
    C 1, 3 or 4 (grey, RGB, RGBA) and a height that is no such number of channels."""
    return len(sample) == 3 and sample[-1] in (1, 3, 4) and sample[0] > 4 and sample[1] > 4


def _check_classes(spec: Spec, model: Model, dataset: data_mod.Dataset) -> None:
    """Named classes: a classification loss that tells exactly as many apart."""
    k, loss = model.n_classes, model.loss_def.name
    classes = [str(c) for c in dataset.classes]
    count, names = len(classes), few(classes)
    table, pictures = dataset.target is not None, dataset.names is not None
    if k is None:
        what = (f"{dataset.source}: column {dataset.target!r} holds class names" if table else
                f"{dataset.source} holds pictures in class folders" if pictures else
                f"the labels of {dataset.source} are indices into data.classes")
        texts = [c for c in classes if not is_number(c)]
        numbers = (f"; or, if the column holds numbers, mend its cells that are not: {few(texts)}"
                   if table and len(texts) < count else "")
        raise spec.error("loss", f"{what} ({names}), so a classifier is meant, but {loss} is a "
                                 f"regression loss: {_classifier(spec, model, count)}{numbers}")
    if count == k:
        return
    if count < 2:
        raise InputError(f"holds 1 class ({names}): a classifier learns from examples of 2 "
                         f"classes or more", file=dataset.source)
    whose = f"{dataset.source} holds" if table or pictures else "data.classes names"
    what, key = f"{whose} {count} classes ({names})", model.outputs_key()
    # more classes than outputs, one of them on a row or two: a misspelt label, most likely
    listed = isinstance((spec.data["data"] or {}).get("classes"), list)
    rare = _rare(dataset) if count > k and not listed else ""
    if rare:
        rare = f"{rare}. If there are {count} classes, "
    if k == model.output_shape[1] and key is not None:  # one output per class: the layer's units
        raise spec.error(key, f"{what}, but this layer gives {k} outputs and the {loss} loss "
                              f"tells one class apart per output: {rare}"
                              f"{_change(spec, {key: count})}")
    raise spec.error("loss", f"{what}, but the {loss} loss tells {k} apart: "
                             f"{rare}{_fit_classes(spec, model, count)}")


def _label_maps(model: Model, dataset: data_mod.Dataset) -> bool:
    """Whether the labels are class maps (N, *spatial) of a classifier whose output is
    (N, K, *spatial): a class index per pixel (masks)."""
    y, out = dataset.y, model.output_shape
    return (model.n_classes is not None and len(out) >= 3 and y.ndim == len(out) - 1
            and tuple(y.shape[1:]) == tuple(out[2:]))


def _check_maps(spec: Spec, model: Model, dataset: data_mod.Dataset) -> None:
    """Label maps' values: class indices 0..K-1 of the K classes the network's output tells
    apart."""
    y, k = np.asarray(dataset.y), model.n_classes
    if y.dtype.kind not in "iub":
        return  # fractions or non-integers: the loss's own check says what it takes
    ignore = spec.data["loss"].get("ignore_index")
    try:
        data_mod.check_mask_values(y, k, names=dataset.target_names, source=dataset.source,
                                   ignore=ignore,
                                   against=f"the {k} classes the network's output tells apart")
    except InputError as e:
        count = int(np.max(y, initial=0, where=y != ignore)) + 1
        raise InputError(f"{e.message}; if there are {count} classes, the network needs {count} "
                         f"output channels, one per class", file=e.file) from None


def _rare(dataset: data_mod.Dataset) -> str:
    """The classes of a table or picture folder with few samples beside the others' many (at
    most 2, or under 1% of them, and a fifth of the commonest class at most), each with its lines
    or files and the class it looks like, and what to do about a misspelt label; "" if none."""
    y, classes = np.asarray(dataset.y), [str(c) for c in dataset.classes]
    if y.ndim != 1 or (dataset.line_of is None and dataset.names is None):
        return ""
    counts = np.bincount(y, minlength=len(classes))
    rare = [c for c, n in enumerate(counts)
            if (n <= 2 or n < 0.01 * len(y)) and 5 * n <= counts.max()]
    common = [classes[c] for c in range(len(classes)) if c not in rare]
    if not rare or len(common) < 2:
        return ""
    texts = []
    for c in rare:
        n, at = int(counts[c]), np.flatnonzero(y == c)[:3]
        more = ", ..." if n > len(at) else ""
        if dataset.line_of is not None:
            lines = ", ".join(str(dataset.line_of(int(i))) for i in at)
            s = "s" * (n > 1)
            text = f"{classes[c]!r} appears on {n} row{s} (line{s} {lines}{more})"
        else:
            files = ", ".join(dataset.names[i] for i in at)
            text = f"{classes[c]!r} holds {n} picture{'s' * (n > 1)} ({files}{more})"
        like = closest(classes[c], common)
        texts.append(text + (f", like {like!r}" if like else ""))
    fix = ("fix the file" if dataset.line_of is not None else
           "move the pictures to their class's folder")
    return (f"{'; '.join(texts)}: {'a typo' if len(rare) == 1 else 'typos'}? {fix.capitalize()}, "
            f"or list the classes with data.classes ({_sets({'data.classes': common})}): bpcli "
            f"then names each label outside them")


def _check_indices(spec: Spec, model: Model, dataset: data_mod.Dataset) -> None:
    """Class indices 0..K-1 (numbers) beyond the classes the loss tells apart: the loss's own
    message with the numbers, and how to make the network tell K apart."""
    y = np.asarray(dataset.y)
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)) or not y.size:
        return
    values = np.unique(y)
    if (not np.issubdtype(values.dtype, np.number) or (values != np.round(values)).any()
            or values.min() < 0 or values.max() < model.n_classes):
        return
    count = int(values.max()) + 1
    try:
        model.loss_def.labels(values, model.output_shape)
    except Invalid as e:
        raise InputError(f"{model.loss_def.name} loss: {e}; if the labels are the class indices "
                         f"0..{count - 1} of {count} classes, "
                         f"{_fit_classes(spec, model, count, where=True)}",
                         file=dataset.source) from None


def _fit_classes(spec: Spec, model: Model, count: int, where: bool = False) -> str:
    """How to make the network tell ``count`` classes apart: its outputs, or its loss too."""
    key, k = model.outputs_key(), model.n_classes
    if k != model.output_shape[1]:  # a loss of a fixed number of classes (logistic, hinge: 2)
        return _classifier(spec, model, count, where)
    if key is None:
        return f"the network needs {count} outputs, one per class (it gives {k})"
    return f"the network needs {count} outputs, one per class: {_change(spec, {key: count}, where)}"


def _classifier(spec: Spec, model: Model, count: int, where: bool = False) -> str:
    """How to make the network a classifier of ``count`` classes: softmax cross-entropy with one
    output per class, or for 2 classes logistic with 1 output."""
    key, outputs = model.outputs_key(), model.output_shape[1]
    ways = [("softmax_cross_entropy", count, "one output per class")]
    if count == 2:
        ways.append(("logistic", 1, "1 output"))
    texts = []
    for loss, n, outs in ways:
        changes = {"loss": loss, **({key: n} if key is not None and n != outputs else {})}
        ending = (f", ending the layers in dense: {{units: {n}}}" if key is None and n != outputs
                  else "")
        texts.append(f"loss: {loss} with {outs}{ending} ("
                     + (_change(spec, changes, where) if len(ways) == 1 else _sets(changes)) + ")")
    return "use " + ", or, for 2 classes, ".join(texts)


def _change(spec: Spec, changes: dict, where: bool = False) -> str:
    """``changes`` (key path -> value) as the user makes them: in the spec, or with --set.
    ``where``: name the spec file and the line of each key (for an error placed elsewhere)."""
    keys = []
    for path, value in changes.items():
        line = spec.positions.get(parse_path(path), (None,))[0] if where else None
        keys.append(f"{path}: {_yaml(value)}" + (f" (line {line})" if line else ""))
    place = (spec.file or "the spec") if where else "the spec"
    return f"set {' and '.join(keys)} in {place}, or {_sets(changes)}"


def _sets(changes: dict) -> str:
    return " ".join(f"--set {shlex.quote(f'{path}={_yaml(v)}')}" for path, v in changes.items())


def _yaml(value) -> str:
    return f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)
