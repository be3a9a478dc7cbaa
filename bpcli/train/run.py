"""A run, from spec and data to a filled run folder: what ``bpcli train`` and ``bpcli sweep`` share.

:func:`prepare` does every check that can fail on bad input (spec, data, shapes,
labels, batch size) before anything is written; :func:`execute` then creates
the run folder and trains.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as data_mod
from ..engine.backend import check as check_device
from ..errors import CheckFailed, InputError, WriteFailed
from ..nn.losses import LOSSES
from ..nn.model import Model
from ..core.document import Spec, differences
from ..spec.validate import set_value, with_data
from .run_folder import RunFolder
from .checkpoint import misfit
from .data_fit import check_data


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


def recorded(spec: Spec, data=None, target=None, val_data=None, targets=None,
             val_targets=None) -> Spec:
    """The spec as the run folder records it: its data entry names the data actually trained on
    (``data``, ``val_data`` and their target pictures ``targets``, ``val_targets`` from the
    command line win), with absolute paths, so that ``bpcli eval RUN`` finds it again from the
    run folder."""
    cfg = spec.data["data"]
    pictures = {"targets": targets, "val_targets": val_targets}
    if data is not None:
        return with_data(spec, data, target, val_data, **pictures)
    if cfg and cfg["path"]:
        return with_data(spec, (spec.base_dir / cfg["path"]).resolve(), target, val_data,
                         **pictures)
    for given, name in ((val_data, "--val-data"), (targets, "--targets"),
                        (val_targets, "--val-targets")):
        if given is not None:
            what = ("validation data from a file" if name == "--val-data" else
                    "target pictures from a folder")
            raise InputError(f"{what} goes with training data from a file: give --data FILE too, "
                             f"or data: {{path: FILE}} in the spec", path=name)
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


def _labels(spec: Spec) -> str:
    # a loss without labels (sum_squares) trains on a table without a label column too
    needs = LOSSES[spec.data["loss"]["name"]].label_shape((None, 1)) is not None
    return "required" if needs else "optional"


def read_fitted(given: Spec, data=None, target=None, val_data=None, targets=None,
                val_targets=None) -> tuple[Spec, Model, data_mod.Dataset]:
    """The training data (``data``, else the spec's own) read and checked against ``given`` as
    train checks it (:func:`check_data`, InputError naming the change that makes it fit): the
    spec with what reading found (:func:`learned`), its model and the data set. What ``bpcli
    validate`` runs when the spec names its data."""
    spec = recorded(given, data, target, val_data, targets, val_targets)
    # messages and summary.json name the files as they were given; a label outside the spec's
    # data.classes is one of the spec's, not of a trained run's
    dataset = data_mod.read(spec, labels=_labels(spec), shown_as=data, classes_from="spec",
                            targets_shown_as=targets)
    spec = learned(spec, dataset)
    model = Model(spec)
    check_data(given, model, dataset)
    return spec, model, dataset


def prepare(spec: Spec, data=None, target=None, val_data=None, device=None, targets=None,
            val_targets=None) -> Prepared:
    """Model, split (or validation file) and prepared arrays: every input check, nothing written.
    ``device``: the one the run will use (--device), else the spec's ``training.device``;
    ``targets``, ``val_targets``: target picture folders from the command line (--targets)."""
    from .loop import check_batch, fingerprint

    given = spec  # errors name the spec as the user gave it (its --set items too)
    spec, model, dataset = read_fitted(spec, data, target, val_data, targets, val_targets)
    labels = _labels(spec)
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
                            classes_from="spec" if mine else "run", targets_shown_as=val_targets)
        train, val = fit(model, dataset), fit(model, val)
    else:
        fraction = spec.data["data"]["val_split"]
        (Xtr, ytr), val = data_mod.split(dataset, fraction, spec.data["seed"])
        if val is None and fraction > 0:
            data_mod.note(f"data.val_split {fraction} of {len(Xtr)} samples holds none out: "
                          f"no validation metrics (give more data, or --val-data FILE)")
        train = fit(model, data_mod.Dataset(Xtr, ytr, dataset.source))
        if val is not None:
            val = fit(model, data_mod.Dataset(*val, dataset.source))
    model.require_params("train")
    n_train, asked = train[0].shape[0], spec.data["training"]["batch_size"]
    if check_batch(model, n_train) < (n_train if asked == "full" else asked):
        data_mod.note(f"training.batch_size {asked} is more than the {n_train} training "
                      f"samples: every step takes all {n_train}")
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
    """Create ``run_dir`` (never overwriting), hold it (:meth:`RunFolder.hold`), write the
    resolved spec, train on ``threads`` batch-slice workers (default:
    :func:`bpcli.engine.threads.default`); the summary. A resumed run runs at ``threads`` or
    the default too: the count never changes the bits."""
    from .loop import train

    folder = RunFolder.create(run_dir)
    with folder.hold():
        try:
            folder.write_spec(p.model.spec)
        except WriteFailed as e:
            folder.note_write_failed(e)
            raise
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is told
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
           progress=None, command: str = "", on_change=None, on_note=None,
           threads: int | None = None, **options) -> dict:
    """Continue an interrupted (or finished, with more ``epochs``) run in its own folder.

    The run's recorded spec is used; a ``spec`` given as well must resolve to the same thing,
    unless ``force``, in which case it replaces it: ``on_change(text)`` is then told what
    changes (each differing key with the run's value and the new one), before training.
    Everything from the first read of the folder on happens holding it
    (:meth:`RunFolder.hold`): a second writer is refused, naming the first. ``on_note(text)``
    is told when last.npz is damaged and the checkpoint before it is taken.
    """
    folder = RunFolder.open(run_dir, RunFolder.METRICS)
    with folder.hold():
        note = folder.resume_from()
        if note is not None and on_note is not None:
            on_note(note)
        return _resume(folder, run_dir, spec, force, epochs, progress, command, on_change,
                       threads, options)


def _resume(folder, run_dir, spec, force, epochs, progress, command, on_change, threads,
            options) -> dict:
    from .loop import resume as resume_training

    recorded_spec = folder.load_spec()
    use = recorded_spec
    if spec is not None:
        candidate = recorded(spec)
        data_entry = recorded_spec.data["data"]
        if data_entry and data_entry.get("path"):  # the run trained on a file: compare like with like
            candidate = set_value(candidate, "data", data_entry)
        if epochs is not None:  # --epochs wins over the spec's, as in train: no difference to tell
            candidate = set_value(candidate, "training.epochs",
                                  recorded_spec.data["training"]["epochs"])
        changes = spec_changes(recorded_spec, candidate)
        misfit = _misfit(folder, candidate) if changes else None
        if misfit is not None:  # not even --force continues it: its weights are another network's
            raise InputError(f"{spec.file or 'the spec'} differs from the spec this run was "
                             f"trained with in {len(changes)} key(s) (run -> given): "
                             f"{describe_changes(changes)}; and its network's weights do not fit "
                             f"this run's ({misfit}), so no resume can continue it: train it as "
                             f"a new run, bpcli train {shlex.quote(spec.file) if spec.file else 'SPEC'}",
                             file=str(run_dir))
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
    try:
        folder.write_spec(p.model.spec)
    except WriteFailed as e:
        folder.note_write_failed(e)
        raise
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


def _misfit(folder: RunFolder, spec: Spec) -> str | None:
    """The first weight of ``spec``'s network that the run's last.npz does not hold in its shape
    (:func:`checkpoint.misfit`), or None when every one fits."""
    with np.load(folder.last, allow_pickle=False) as f:  # whole: RunFolder.resume_from read it
        shapes = {k: f[k].shape for k in f.files if not k.startswith("__")}
    return misfit(shapes, Model(spec))
