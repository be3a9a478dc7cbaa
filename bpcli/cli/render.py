"""How results read on a terminal: tables and lines for people (rich), a progress bar on stderr."""

from __future__ import annotations


from . import err, out


def cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):  # as the spec's YAML writes it
        return "true" if v else "false"
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


def runs_table(rows: list[dict], title: str):
    """``bpcli runs``: a row per run, its final metrics; at 80 columns the headers stand one word
    a line and run names fold, never cut."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    cols = [c for c in ("run", "status", "epochs", "steps", "final_train_loss", "final_val_loss",
                        "final_val_accuracy", "best_val_loss", "best_val_accuracy")
            if any(c in r for r in rows)]
    for c in cols:
        # a header word a line, the values whole: the run names fold into what is left
        table.add_column(c.replace("final_", "").replace("_", "\n"), overflow="fold",
                         justify="left" if c in ("run", "status") else "right", no_wrap=c != "run")
    for r in rows:
        table.add_row(*[cell(r.get(c)) for c in cols])
    return table


def progress_bar(console):
    """The training progress line: what counts first (epoch i/N, a short bar, elapsed, ETA), then
    the losses, step and speed, which a narrow terminal cuts with an ellipsis (at 80 columns:
    ``epoch 12/300 ━━━━ 0:00:03 ETA 0:01:12 loss 0.1235  val 0.2345  a…``)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.table import Column

    return Progress(TextColumn("[bold]{task.description}"), MofNCompleteColumn(),
                    BarColumn(bar_width=12), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(),
                    # the columns before it take about 50 characters; it gets the rest, on one line
                    TextColumn("{task.fields[status]}", markup=False, table_column=Column(
                        no_wrap=True, overflow="ellipsis", max_width=max(12, console.width - 52))),
                    console=console, transient=True)


def status_text(row: dict) -> str:
    """A metrics row as the progress line shows it, most telling first: losses, validation
    accuracy, step, speed."""
    loss = row["train_loss"]
    status = f"loss {'-' if loss is None else format(loss, '.4g')}"
    if row.get("val_loss") is not None:
        status += f"  val {row['val_loss']:.4g}"
    if row.get("val_accuracy") is not None:
        status += f"  val acc {row['val_accuracy']:.3f}"
    return status + f"  step {row['step']}  {row['step'] / max(row['elapsed_s'], 1e-9):.0f} steps/s"


def with_progress(fn, quiet):
    """Run ``fn(callback)`` under a progress bar on stderr: epoch, step, losses, speed, ETA. The
    trainer calls ``callback(row, unit, total)`` after each metrics row."""
    if quiet or not err.is_terminal:
        return fn(None)
    with progress_bar(err) as bar:
        task = None

        def cb(row, unit, total):
            nonlocal task
            if task is None:
                task = bar.add_task(unit, total=total, status="")
            bar.update(task, completed=row["epoch"], status=status_text(row))
        return fn(cb)
