"""How results read on a terminal: tables and lines for people (rich), a progress bar on stderr."""

from __future__ import annotations


from . import err, out


def cell(v) -> str:
    if v is None:
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def report(summary):
    """The end of a run: why it stopped, the final metrics, what was skipped, where the files are."""
    from ..train.run_folder import RunFolder

    folder = RunFolder(summary["run_dir"])
    final = summary["final"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if v is not None)
    out.print(f"{summary['stop_reason']}; {shown}", markup=False)
    if summary.get("skipped_note"):
        err.print(f"bpcli: warning: {summary['skipped_note']}", markup=False)
    out.print(f"run folder: {folder}", markup=False)
    out.print(f"loss curve: {folder.plot}", markup=False)


def with_progress(fn, quiet):
    """Run ``fn(callback)`` under a progress bar on stderr: epoch, step, losses, speed, ETA. The
    trainer calls ``callback(row, unit, total)`` after each metrics row."""
    if quiet or not err.is_terminal:
        return fn(None)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = None

        def cb(row, unit, total):
            nonlocal task
            if task is None:
                task = bar.add_task(unit, total=total, status="")
            loss = row["train_loss"]
            status = f"step {row['step']}  loss {'-' if loss is None else format(loss, '.4g')}"
            if row.get("val_loss") is not None:
                status += f"  val {row['val_loss']:.4g}"
            if row.get("val_accuracy") is not None:
                status += f"  val acc {row['val_accuracy']:.3f}"
            status += f"  {row['step'] / max(row['elapsed_s'], 1e-9):.0f} steps/s"
            bar.update(task, completed=row["epoch"], status=status)
        return fn(cb)
