"""Finding runs: a run folder, a folder of runs, or a sweep folder (whose variants are runs)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..core.document import differences
from .run_folder import RunFolder


def expand(paths) -> list[RunFolder]:
    """Run folders as given, with each sweep folder replaced by its finished variants' run folders."""
    out = []
    for p in map(Path, paths):
        if RunFolder.is_sweep(p):
            found = sorted(d for d in p.iterdir() if d.is_dir() and (d / RunFolder.METRICS).exists())
            if not found:
                raise InputError("sweep folder has no finished runs yet", file=str(p))
            out += [RunFolder(d) for d in found]
        else:
            out.append(RunFolder.open(p, RunFolder.METRICS))
    return out


def list_runs(folder: Path) -> list[dict]:
    """One row per run below ``folder`` (or per variant of a sweep folder): ``run``, ``status``
    (:data:`~bpcli.train.run_folder.STATUSES`, or a sweep variant's ``failed``/``error``),
    ``epochs`` done of ``epochs_asked``, ``steps``, ``resumable``, the final metrics as
    ``final_<name>``, ``best_val_loss`` (or ``best_val_accuracy``, the metric it watched) where
    there is one, ``skipped`` batches where any were, and a ``note`` saying what went wrong
    for a run whose write failed (``write_failed``) or whose files do not read back
    (``damaged``: which file, and what to do); the other runs are listed all the same.
    A run without summary.json (killed, or still training) is listed from its metrics.csv."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", file=str(folder))
    candidates = [folder] if RunFolder.is_run(folder) else sorted(
        d for d in folder.iterdir() if d.is_dir())
    rows = []
    for d in map(RunFolder, candidates):
        if RunFolder.is_sweep(d.path) or not (RunFolder.is_run(d.path) or d.status.exists()):
            continue
        row = {"run": d.path.name if d.path != folder else str(d)}
        try:
            rows.append(_row(d, row))
        except InputError as e:  # one run's damaged file hides none of the others
            rows.append({**row, "status": "damaged", "resumable": False, "note": str(e)})
    return rows


def _row(d: RunFolder, row: dict) -> dict:
    if not d.summary.exists() and d.status.exists():  # a sweep variant that failed
        return {**row, "status": d.read_status()["status"], "resumable": False}
    state = d.state()
    damage = d.damage()
    if damage is not None:
        raise damage
    row.update(status=state.status, epochs=state.epochs, epochs_asked=state.epochs_asked,
               steps=state.steps, resumable=state.resumable, **state.final_row())
    if state.skipped:
        row["skipped"] = state.skipped
    if state.note:
        row["note"] = state.note
    return row


def compare(run_a: Path, run_b: Path) -> dict:
    """Spec keys that differ (resolved, so defaults count), how each run stands (``state``, a
    :class:`~bpcli.train.run_folder.RunState` each) and their final metrics: summary.json's, or
    the last metrics.csv row of a run without one (killed, or still training)."""
    specs, states = [], []
    for folder in (RunFolder.open(run_a), RunFolder.open(run_b)):
        specs.append(folder.read_spec())
        states.append(folder.state())
    finals = [s.final for s in states]
    metric_keys = list(dict.fromkeys([*finals[0], *finals[1]]))
    return {"spec": differences(*specs), "state": states,
            "final": [(k, finals[0].get(k), finals[1].get(k)) for k in metric_keys]}
