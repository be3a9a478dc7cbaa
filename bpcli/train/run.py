"""A run, from spec and data to a filled run folder: what ``bpcli train`` and ``bpcli sweep`` share.

:func:`prepare` does every check that can fail on bad input (spec, data, shapes,
labels, batch size) before anything is written; :func:`execute` then creates
the run folder and trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as data_mod
from ..engine.backend import check as check_device
from ..errors import CheckFailed, InputError
from ..nn.losses import LOSSES
from ..nn.model import Model
from ..spec.document import Spec, differences
from ..spec.fields import Invalid, closest
from ..spec.validate import set_value, with_data
from .run_folder import RunFolder
from .tables import few, is_number


@dataclass
class Prepared:
    model: Model
    train: tuple
    val: tuple | None
    source: str
    fingerprint: str


def fit(model: Model, dataset: data_mod.Dataset):
    """Prepared arrays for ``model``, naming the data file in any error about them."""
    try:
        return model.prepare(dataset.X, dataset.y)
    except InputError as e:
        e.file = e.file or dataset.source
        raise


def check_data(spec: Spec, model: Model, dataset: data_mod.Dataset) -> None:
    """What ``train`` (and gradcheck, sweep) refuse in data that the spec ``spec`` could be
    changed to fit, each with the change that makes it fit (InputError):

    - samples of another shape than the spec's ``input``;
    - class names (a label column of names, class folders of pictures) under a regression loss;
    - named classes that the loss does not tell apart one to one (2 classes, 5 outputs): eval
      and predict would refuse such a run (:meth:`Model.classes`);
    - class indices 0..K-1 beyond the classes the loss tells apart.
    """
    got, want = tuple(dataset.X.shape[1:]), list(spec.data["input"])
    if dataset.X.ndim >= 2 and got != tuple(want):
        flat = (f" (or give rows of {int(np.prod(want))} numbers, read as {want})"
                if len(got) == 1 and len(want) > 1 else "")
        raise spec.error("input", f"{dataset.source} has samples of shape {got}, but the spec's "
                                  f"input is {want}: {_change(spec, {'input': list(got)})}{flat}")
    if dataset.y is None or model.loss_def.label_shape(model.output_shape) is None:
        return
    if dataset.classes is not None:
        _check_classes(spec, model, dataset)
    elif model.n_classes is not None:
        _check_indices(spec, model, dataset)


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
    from ..spec.document import parse_path

    keys = []
    for path, value in changes.items():
        line = spec.positions.get(parse_path(path), (None,))[0] if where else None
        keys.append(f"{path}: {_yaml(value)}" + (f" (line {line})" if line else ""))
    place = (spec.file or "the spec") if where else "the spec"
    return f"set {' and '.join(keys)} in {place}, or {_sets(changes)}"


def _sets(changes: dict) -> str:
    import shlex

    return " ".join(f"--set {shlex.quote(f'{path}={_yaml(v)}')}" for path, v in changes.items())


def _yaml(value) -> str:
    return f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)


def recorded(spec: Spec, data=None, target=None, val_data=None) -> Spec:
    """The spec as the run folder records it: its data entry names the data actually trained on
    (``data`` and ``val_data`` from the command line win), with absolute paths, so that
    ``bpcli eval RUN`` finds it again from the run folder."""
    cfg = spec.data["data"]
    if data is not None:
        return with_data(spec, data, target, val_data)
    if cfg and cfg["path"]:
        return with_data(spec, (spec.base_dir / cfg["path"]).resolve(), target, val_data)
    if val_data is not None:
        raise InputError("validation data from a file goes with training data from a file: give "
                         "--data FILE too, or data: {path: FILE} in the spec", path="--val-data")
    return spec


def learned(spec: Spec, dataset: data_mod.Dataset) -> Spec:
    """The spec with what reading its data found, for eval and predict to read files alike:
    ``data.classes`` (class names in index order), ``data.features`` (a table's feature columns)
    and ``data.target`` (its label column, by name when the table has a header)."""
    found = {"classes": dataset.classes, "features": dataset.features, "target": dataset.target}
    found = {k: v for k, v in found.items() if v is not None}
    if not found:
        return spec
    return set_value(spec, "data", {**spec.data["data"], **found})


def prepare(spec: Spec, data=None, target=None, val_data=None, device=None) -> Prepared:
    """Model, split (or validation file) and prepared arrays: every input check, nothing written.
    ``device``: the one the run will use (--device), else the spec's ``training.device``."""
    from .loop import check_batch, fingerprint

    given = spec  # errors name the spec as the user gave it (its --set items too)
    spec = recorded(spec, data, target, val_data)
    # a loss without labels (sum_squares) trains on a table without a label column too
    needs = LOSSES[spec.data["loss"]["name"]].label_shape((None, 1)) is not None
    labels = "required" if needs else "optional"
    # messages and summary.json name the files as they were given; a label outside the spec's
    # data.classes is one of the spec's, not of a trained run's
    dataset = data_mod.read(spec, labels=labels, shown_as=data, classes_from="spec")
    spec = learned(spec, dataset)
    model = Model(spec)
    check_data(given, model, dataset)
    digest = fingerprint(dataset.X, dataset.y)
    try:  # cast once, before the split copies: the float64 original is freed before they are made
        X = model.prepare_x(dataset.X)
    except InputError as e:
        e.file = e.file or dataset.source
        raise
    dataset = data_mod.Dataset(X, dataset.y, dataset.source)
    val_path = spec.data["data"]["val_path"]
    if val_path is not None:
        # read with the training file's options, classes and columns
        mine = isinstance((given.data["data"] or {}).get("classes"), list)
        val = data_mod.read(spec, val_path, labels=labels, shown_as=val_data,
                            classes_from="spec" if mine else "run")
        train, val = fit(model, dataset), fit(model, val)
    else:
        (Xtr, ytr), val = data_mod.split(dataset, spec.data["data"]["val_split"], spec.data["seed"])
        train = fit(model, data_mod.Dataset(Xtr, ytr, dataset.source))
        if val is not None:
            val = fit(model, data_mod.Dataset(*val, dataset.source))
    model.require_params("train")
    check_batch(model, train[0].shape[0])
    if device is None:  # a spec's training.device that is not here: refused before any folder
        try:
            check_device(spec.data["training"]["device"])
        except InputError as e:
            raise spec.error("training.device", e.message) from None
    return Prepared(model, train, val, dataset.source, digest)


def preflight(p: Prepared) -> dict:
    """A fast gradcheck on the first 4 training samples (prepared, as training sees them), in
    float64; CheckFailed if it fails."""
    from ..explain.gradcheck import gradcheck

    X, y = p.train
    report = gradcheck(p.model.spec, X[:4], None if y is None else y[:4], mode="fast",
                       directions=4, with_cost=False)
    if not report["passed"]:
        bad = [r["layer"] for r in report.get("layers", []) if not r["passed"]]
        raise CheckFailed("preflight gradcheck failed" + (f" in {', '.join(bad)}" if bad else "")
                          + "; not training. Run bpcli gradcheck on the spec for details.")
    return report


def execute(p: Prepared, run_dir: Path, *, progress=None, command: str = "",
            threads: int | None = None, **options) -> dict:
    """Create ``run_dir`` (never overwriting), write the resolved spec, train with the BLAS pools
    limited to ``threads`` (default: :data:`bpcli.engine.threads.DEFAULT_THREADS`); the summary.
    A resumed run keeps the count it was trained with unless ``threads`` is given."""
    from .loop import train

    folder = RunFolder.create(run_dir)
    folder.write_spec(p.model.spec)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is reported
        summary = train(p.model, p.train, p.val, folder, source=p.source, progress=progress,
                        command=command, data_fingerprint=p.fingerprint, threads=threads,
                        **options)
    summary["run_dir"] = str(folder)
    return summary


def spec_changes(old: Spec, new: Spec) -> list[tuple[str, object, object]]:
    """(key path, old value, new value) for every resolved key that differs, in spec order."""
    return differences(old.data, new.data)


def describe_changes(changes, limit: int = 12) -> str:
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes[:limit])
    more = f"; and {len(changes) - limit} more" if len(changes) > limit else ""
    return shown + more


def resume(run_dir: Path, spec: Spec | None = None, *, force: bool = False, epochs: int | None = None,
           progress=None, command: str = "", on_change=None, threads: int | None = None,
           **options) -> dict:
    """Continue an interrupted (or finished, with more ``epochs``) run in its own folder.

    The run's recorded spec is used; a ``spec`` given as well must resolve to the same thing,
    unless ``force``, in which case it replaces it: ``on_change(text)`` is then told what
    changes (each differing key with the run's value and the new one), before training.
    """
    from .loop import resume as resume_training

    folder = RunFolder.open(run_dir, RunFolder.LAST, RunFolder.METRICS)
    recorded_spec = folder.load_spec()
    use = recorded_spec
    if spec is not None:
        candidate = recorded(spec)
        data_entry = recorded_spec.data["data"]
        if data_entry and data_entry.get("path"):  # the run trained on a file: compare like with like
            candidate = set_value(candidate, "data", data_entry)
        changes = spec_changes(recorded_spec, candidate)
        if changes:
            if not force:
                raise InputError(f"{spec.file or 'the spec'} differs from the spec this run was "
                                 f"trained with in {len(changes)} key(s) (run -> given): "
                                 f"{describe_changes(changes)}. Resume without a spec, or add "
                                 f"--force to continue with the given one", file=str(run_dir))
            if on_change is not None:
                on_change(f"--force: continuing {run_dir} with {spec.file or 'the given spec'}, "
                          f"which changes {len(changes)} key(s): {describe_changes(changes)}")
            use = candidate
    if epochs is not None:
        use = set_value(use, "training.epochs", epochs)
    p = prepare(use)
    folder.write_spec(p.model.spec)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            summary = resume_training(p.model, p.train, p.val, folder, source=p.source,
                                      progress=progress, command=command,
                                      data_fingerprint=p.fingerprint, threads=threads, **options)
    except InputError:  # refused (--epochs too few): the run folder is left as it was
        folder.write_spec(recorded_spec)
        raise
    summary["run_dir"] = str(folder)
    return summary
