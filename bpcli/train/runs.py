"""Finding runs: a run folder, a folder of runs, or a sweep folder (whose variants are runs)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError


def is_run(folder: Path) -> bool:
    return (folder / "metrics.csv").exists()


def expand(paths) -> list[Path]:
    """Run folders as given, with each sweep folder replaced by its finished variants' run folders."""
    out = []
    for p in map(Path, paths):
        if (p / "sweep.json").exists():
            found = sorted(d for d in p.iterdir() if d.is_dir() and is_run(d))
            if not found:
                raise InputError("sweep folder has no finished runs yet", file=str(p))
            out += found
        else:
            out.append(p)
    return out


def final_metrics(summary: dict) -> dict:
    """A summary.json's final metrics as ``final_<name>``, and ``best_val_loss`` where there is one."""
    row = {f"final_{k}": v for k, v in summary["final"].items()}
    if (summary.get("best") or {}).get("val_loss") is not None:
        row["best_val_loss"] = summary["best"]["val_loss"]
    return row


def list_runs(folder: Path) -> list[dict]:
    """One row per run below ``folder`` (or per variant of a sweep folder), with final metrics."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", file=str(folder))
    if is_run(folder):
        candidates = [folder]
    else:
        candidates = sorted(d for d in folder.iterdir() if d.is_dir())
    rows = []
    for d in candidates:
        status_file, summary_file = d / "status.json", d / "summary.json"
        if not (summary_file.exists() or status_file.exists()):
            continue
        row = {"run": d.name if d != folder else str(d)}
        if status_file.exists():
            row["status"] = json.loads(status_file.read_text())["status"]
        if summary_file.exists():
            s = json.loads(summary_file.read_text())
            row.setdefault("status", "diverged" if s["stop_reason"].startswith("diverged") else "ok")
            row.update(epochs=s["epochs"], steps=s["steps"], **final_metrics(s))
        elif (d / "sweep.json").exists():
            continue
        rows.append(row)
    return rows


def _flatten(data, prefix=""):
    """{"a": {"b": 1}, "layers": [...]} -> {"a.b": 1, "layers[0].conv1d.kernel": ...}."""
    out = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = data
    return out


def compare(run_a: Path, run_b: Path) -> dict:
    """Spec keys that differ (resolved, so defaults count) and the final metrics of both runs."""
    import yaml

    specs, finals = [], []
    for run in (Path(run_a), Path(run_b)):
        if not (run / "spec.yaml").exists():
            raise InputError("not a run folder: it has no spec.yaml", file=str(run))
        specs.append(_flatten(yaml.safe_load((run / "spec.yaml").read_text())))
        summary = run / "summary.json"
        finals.append(json.loads(summary.read_text())["final"] if summary.exists() else {})
    keys = list(dict.fromkeys([*specs[0], *specs[1]]))
    spec_rows = [(k, specs[0].get(k), specs[1].get(k)) for k in keys if specs[0].get(k) != specs[1].get(k)]
    metric_keys = list(dict.fromkeys([*finals[0], *finals[1]]))
    return {"spec": spec_rows, "final": [(k, finals[0].get(k), finals[1].get(k)) for k in metric_keys]}
