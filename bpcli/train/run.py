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
from ..errors import CheckFailed, InputError
from ..nn.model import Model
from ..spec.document import Spec
from ..spec.validate import set_value


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


def recorded(spec: Spec, data=None, target=None) -> Spec:
    """The spec as the run folder records it: its data entry names the data actually trained on,
    with an absolute path, so that ``bpcli eval RUN`` finds it again from the run folder."""
    cfg = spec.data["data"]
    if data is not None:
        return set_value(spec, "data", {"path": str(Path(data).resolve()),
                                        "target": target or (cfg or {}).get("target", "y"),
                                        "val_split": cfg["val_split"] if cfg else 0.2})
    if cfg and cfg["path"]:
        return set_value(spec, "data", dict(cfg, path=str((spec.base_dir / cfg["path"]).resolve()),
                                            target=target or cfg["target"]))
    return spec


def prepare(spec: Spec, data=None, target=None) -> Prepared:
    """Model, split and prepared arrays: every input check, nothing written."""
    from .loop import check_batch, fingerprint

    model = Model(recorded(spec, data, target))
    dataset = data_mod.from_spec(spec, None if data is None else str(data), target)
    digest = fingerprint(dataset.X, dataset.y)
    try:  # cast once, before the split copies: the float64 original is freed before they are made
        X = model._prepare_x(dataset.X)
    except InputError as e:
        e.file = e.file or dataset.source
        raise
    dataset = data_mod.Dataset(X, dataset.y, dataset.source)
    val_split = spec.data["data"]["val_split"] if spec.data["data"] else 0.2
    (Xtr, ytr), val = data_mod.split(dataset, val_split, spec.data["seed"])
    train = fit(model, data_mod.Dataset(Xtr, ytr, dataset.source))
    if val is not None:
        val = fit(model, data_mod.Dataset(*val, dataset.source))
    check_batch(model, train[0].shape[0])
    return Prepared(model, train, val, dataset.source, digest)


def preflight(p: Prepared) -> dict:
    """A fast gradcheck on the first 4 training samples, in float64; CheckFailed if it fails."""
    from ..explain.gradcheck import gradcheck

    X, y = p.train
    report = gradcheck(p.model.spec, X[:4], None if y is None else y[:4], mode="fast",
                       directions=4, with_cost=False)
    if not report["passed"]:
        bad = [r["layer"] for r in report.get("layers", []) if not r["passed"]]
        raise CheckFailed("preflight gradcheck failed" + (f" in {', '.join(bad)}" if bad else "")
                          + "; not training. Run bpcli gradcheck on the spec for details.")
    return report


def execute(p: Prepared, run_dir: Path, *, progress=None, command: str = "", **options) -> dict:
    """Create ``run_dir`` (never overwriting), write the resolved spec, train; the summary."""
    from .loop import new_run_dir, train, write_spec

    run_dir = new_run_dir(Path(run_dir))
    write_spec(p.model, run_dir)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is reported
        summary = train(p.model, p.train, p.val, run_dir, source=p.source, progress=progress,
                        command=command, data_fingerprint=p.fingerprint, **options)
    summary["run_dir"] = str(run_dir)
    return summary


def resume(run_dir: Path, spec: Spec | None = None, *, force: bool = False, epochs: int | None = None,
           progress=None, command: str = "", **options) -> dict:
    """Continue an interrupted (or finished, with more ``epochs``) run in its own folder.

    The run's recorded spec is used; a ``spec`` given as well must resolve to the
    same thing (its hash), unless ``force``, in which case it replaces it.
    """
    from ..spec.validate import load
    from .loop import resume as resume_training, write_spec

    run_dir = Path(run_dir)
    for needed in ("spec.yaml", "last.npz", "metrics.csv"):
        if not (run_dir / needed).exists():
            raise InputError(f"cannot resume: the run folder has no {needed} (a run folder written "
                             f"by bpcli train has it)", file=str(run_dir))
    recorded_spec = load(run_dir / "spec.yaml")
    use = recorded_spec
    if spec is not None:
        candidate = recorded(spec)
        data_entry = recorded_spec.data["data"]
        if data_entry and data_entry.get("path"):  # the run trained on a file: compare like with like
            candidate = set_value(candidate, "data", data_entry)
        if candidate.fingerprint() != recorded_spec.fingerprint():
            if not force:
                raise InputError(f"{spec.file or 'the spec'} differs from the spec this run was "
                                 f"trained with (hash {candidate.fingerprint()} vs "
                                 f"{recorded_spec.fingerprint()}); resume it without a spec, or "
                                 f"add --force to continue with the new one", file=str(run_dir))
            use = candidate
    if epochs is not None:
        use = set_value(use, "training.epochs", epochs)
    p = prepare(use)
    write_spec(p.model, run_dir)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        summary = resume_training(p.model, p.train, p.val, run_dir, source=p.source,
                                  progress=progress, command=command,
                                  data_fingerprint=p.fingerprint, **options)
    summary["run_dir"] = str(run_dir)
    return summary
