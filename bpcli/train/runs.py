"""Finding runs: a run folder, a folder of runs, or a sweep folder (whose variants are runs)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import InputError
from ..spec.document import differences
from .run_folder import RunFolder, final_metrics


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
    """One row per run below ``folder`` (or per variant of a sweep folder), with final metrics."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", file=str(folder))
    candidates = [folder] if RunFolder.is_run(folder) else sorted(
        d for d in folder.iterdir() if d.is_dir())
    rows = []
    for d in map(RunFolder, candidates):
        if not (d.summary.exists() or d.status.exists()):
            continue
        row = {"run": d.path.name if d.path != folder else str(d)}
        if d.status.exists():
            row["status"] = d.read_json(d.status)["status"]
        s = d.read_summary()
        if s is not None:
            row.setdefault("status", "diverged" if s["stop_reason"].startswith("diverged") else "ok")
            row.update(epochs=s["epochs"], steps=s["steps"], **final_metrics(s))
            if s.get("skipped_batches"):
                row["skipped"] = s["skipped_batches"]
        elif RunFolder.is_sweep(d.path):
            continue
        rows.append(row)
    return rows


def compare(run_a: Path, run_b: Path) -> dict:
    """Spec keys that differ (resolved, so defaults count) and the final metrics of both runs."""
    specs, finals = [], []
    for folder in (RunFolder.open(run_a), RunFolder.open(run_b)):
        specs.append(yaml.safe_load(folder.spec.read_text()))
        summary = folder.read_summary()
        finals.append(summary["final"] if summary else {})
    metric_keys = list(dict.fromkeys([*finals[0], *finals[1]]))
    return {"spec": differences(*specs),
            "final": [(k, finals[0].get(k), finals[1].get(k)) for k in metric_keys]}
