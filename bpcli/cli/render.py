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


_GAP = 1  # spaces between the columns of a plain table: its box's divider, no padding


def _width(header: str, cells) -> int:
    """A column's width: its widest cell or header word (headers stand a word a line)."""
    return max([len(w) for w in header.split()] + [len(c) for c in cells])


def _plain_table(title: str):
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 padding=0, caption_justify="left")


# what ``bpcli runs`` leaves out first when the run names would not fit the terminal whole
_RUNS_OPTIONAL = ("steps", "best_val_accuracy", "best_val_loss", "final_train_loss")


def runs_table(rows: list[dict], title: str, width: int = 80):
    """``bpcli runs``: a row per run, its final metrics, in ``width`` columns. Headers stand one
    word a line, values and run names whole: where the names would not fit beside every column,
    the least telling columns (steps, then the best values, then the training loss) are left out
    and named under the table; a name wider than what is left folds, never cut."""
    cols = [c for c in ("run", "status", "epochs", "steps", "final_train_loss", "final_val_loss",
                        "final_val_accuracy", "best_val_loss", "best_val_accuracy")
            if any(c in r for r in rows)]
    header = {c: c.replace("final_", "").replace("_", "\n") for c in cols}
    cells = {c: [cell(r.get(c)) for r in rows] for c in cols}
    widths = {c: _width(header[c], cells[c]) for c in cols}
    need = lambda shown: sum(widths[c] + _GAP for c in shown) - _GAP  # noqa: E731
    left_out = []
    for c in _RUNS_OPTIONAL:
        if need(cols) <= width:
            break
        if c in cols:
            cols.remove(c)
            left_out.append(c)
    table = _plain_table(title)
    for c in cols:
        table.add_column(header[c], overflow="fold", no_wrap=c != "run",
                         justify="left" if c in ("run", "status") else "right",
                         min_width=widths[c] if c != "run" else None)
    for i in range(len(rows)):
        table.add_row(*[cells[c][i] for c in cols])
    if left_out:
        table.caption = (f"left out to fit {width} columns: "
                         f"{', '.join(c.replace('_', ' ') for c in left_out)} "
                         f"(bpcli runs --json has every one)")
    return table


def confusion_table(classes: list[str], matrix, title: str, width: int = 80):
    """eval's confusion matrix, rows the true class and columns the predicted one, in ``width``
    columns. The class names head the columns where they fit; otherwise the columns are numbered
    and each row's name carries its number (``3 digit_3``), said under the table. Row names are
    never cut."""
    counts = [[str(v) for v in row] for row in matrix]
    widest = max((len(v) for row in counts for v in row), default=1)
    corner = "true \\\npredicted"
    label = max([len(c) for c in classes] + [len("predicted")])
    numbered = label + sum(max(len(c), widest) + _GAP for c in classes) > width
    if numbered:
        digits = len(str(len(classes) - 1))
        names = [f"{i:>{digits}} {c}" for i, c in enumerate(classes)]
        heads = [str(i) for i in range(len(classes))]
    else:
        names, heads = list(classes), list(classes)
    table = _plain_table(title)
    table.add_column(corner, no_wrap=True, min_width=max([len(n) for n in names] + [label]))
    for h in heads:
        table.add_column(h, justify="right", no_wrap=True, min_width=max(len(h), widest))
    for name, row in zip(names, counts):
        table.add_row(name, *row)
    if numbered:
        table.caption = "columns: predicted, numbered as the rows"
    return table


_BAR_FIXED = 43  # the progress line's bar, clocks, "ETA" and spaces, with a character to spare


def progress_bar(console):
    """The training progress line: what counts first (where the run stands, a short bar,
    elapsed, ETA), then the losses and speed, cut with an ellipsis to what is left of the line
    (at 80 columns: ``epoch 3/300 · step 40/50 ━━━━ 0:00:03 ETA 0:01:12 loss 0.1235  val 0.…``)."""
    from rich.progress import (BarColumn, Progress, ProgressColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class Where(ProgressColumn):
        def render(self, task):
            return Text(task.fields.get("where", ""), no_wrap=True)

    class Status(ProgressColumn):
        def render(self, task):
            room = console.width - _BAR_FIXED - len(task.description) - len(
                task.fields.get("where", ""))
            text = Text(task.fields.get("status", ""), no_wrap=True)
            text.truncate(max(12, room), overflow="ellipsis")
            return text

    return Progress("[bold]{task.description}", Where(), BarColumn(bar_width=12),
                    TimeElapsedColumn(), "ETA", TimeRemainingColumn(), Status(),
                    console=console, transient=True)


def where_text(at) -> str:
    """Where a run stands, after the word ``epoch`` (or ``iteration``): ``3/10`` at an epoch's
    end, ``3/10 · step 40/50`` within one (Keras' and Lightning's steps)."""
    text = f"{at.epoch}/{at.total}"
    return text + (f" · step {at.batch}/{at.batches}" if at.batch < at.batches else "")


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
    """Run ``fn(callback)`` under a progress bar on stderr, from the moment training starts:
    where the run stands (steps within an epoch), losses, speed, ETA. The trainer calls
    ``callback(position, row)`` (:class:`bpcli.train.loop.Position`; ``row`` the metrics row
    just written, or None)."""
    if quiet or not err.is_terminal:
        return fn(None)
    with progress_bar(err) as bar:
        task = None

        def cb(at, row):
            nonlocal task
            if task is None:  # the first call is training's start: the clock starts here
                task = bar.add_task(at.unit, total=at.total, where="", status="")
            bar.update(task, completed=at.done, where=where_text(at),
                       **({} if row is None else {"status": status_text(row)}))
        return fn(cb)
