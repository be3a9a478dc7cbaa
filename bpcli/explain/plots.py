"""Pictures of training from plain data, drawn with matplotlib (Agg: files, never windows).

Runs (loss.png, ``bpcli plot``, ``bpcli diff``): each run's metrics.csv as a pandas DataFrame.
Sweeps (sweep.png): the sweep's rows (its varied values, seed, status, final metrics) and each
variant's metrics. Each ``*_figure`` function builds and returns the matplotlib Figure, which is
what the tests read; ``plot_*`` saves it. Axes come from the finite data; an infinite value is a
red x on the axis' top (+inf) or bottom (-inf) edge with a note, a value measured as NaN a red x on
the bottom edge with a note and a legend entry ("NaN loss"), and a missing value, one not measured
(an epoch whose every batch was skipped, a row without validation), a gap, or joined across for
validation. A frame tells NaN from missing as ``RunFolder.read_metrics`` reads metrics.csv: a NaN
that ``isna()`` does not count (pandas' nullable Float64); a plain float column's NaN is missing.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

_MANY_LEVELS = 5        # more numbers for a swept key than this: a colour bar and a number axis
_MANY_LINES = 6         # more settings of the other swept keys than this: points, not lines
_FEW_POINTS = 12        # a curve of this many points or fewer: each one marked (one epoch shows)
NAN_MARK = "nan"        # the gid of the red x's of NaN values: a legend entry is made for them


def pyplot():
    """matplotlib.pyplot on the Agg backend: bpcli draws files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, out, dpi: int = 110) -> Path:
    """Write ``fig`` to ``out`` (making its folder) in the format its suffix names (PNG without
    one), through a
    temporary file renamed into place, and free the figure: a reader, or a run killed while it
    draws, never leaves half a picture."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # one a writer
    try:
        fig.savefig(tmp, format=out.suffix.lstrip(".").lower() or "png", dpi=dpi)
        os.replace(tmp, out)
    except OSError as e:  # a refused write names no file: it is the picture's
        raise OSError(e.errno, e.strerror, str(out)) from None
    finally:
        tmp.unlink(missing_ok=True)
        pyplot().close(fig)
    return out


def smooth(values, window: int):
    """Trailing moving average over ``window`` rows of the finite values (1: unchanged); a
    missing or infinite value stays a gap."""
    values = values.where(np.isfinite(values))
    if window <= 1:
        return values
    return values.rolling(window, min_periods=1).mean().where(values.notna())


# ---------------------------------------------------------------- axes
def per_iteration(df) -> bool:
    """Whether a run's rows are iterations: full-batch gd logs every step, one step per epoch."""
    return len(df) > 0 and bool((df["step"] == df["epoch"]).all())


def x_label(frames) -> str:
    """The x label true of every run drawn: its rows are epochs, or iterations, or both kinds."""
    kinds = {per_iteration(df) for _, df in frames if len(df)}
    if kinds == {True}:
        return "iteration"
    if kinds == {False, True}:
        return "epoch (for the full-batch runs, one iteration)"
    return "epoch"


def epoch_axis(ax, label: str) -> None:
    """Integer ticks on the x axis: there is no epoch 2.5. Data spanning under two epochs (a
    one-epoch run) gets half an epoch of room each side, so its one tick reads 1, not 0.96...1.04."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    lo, hi = ax.dataLim.intervalx
    if np.isfinite(lo) and np.isfinite(hi) and hi - lo < 2:
        ax.set_xlim(np.floor(lo) - 0.5, np.ceil(hi) + 0.5)
    ax.set_xlabel(label)


def log_axis(ax) -> None:
    """A log y axis with labels enough to read a value: evenly spaced round numbers under half a
    decade, 1, 2, 3, 5, 7 under one and a half, 1, 2, 5 under three, decades beyond (round ones,
    0, 50, 100, over many); unlabelled digits between. Plain numbers (0.02) where the limits already set
    lie in [1e-4, 1e5], powers of ten otherwise."""
    from matplotlib.ticker import (LogFormatterSciNotation, LogLocator, NullFormatter,
                                   StrMethodFormatter)

    lo, hi = ax.get_ylim()
    with np.errstate(over="ignore"):   # its autoscale's 5% margin past a loss of 1e300
        ax.set_yscale("log")
    ax.yaxis.set_major_locator(_log_ticks())
    # every tick the locator chose is labelled (LogFormatter's thresholds would hide the 2s and 5s)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}") if 1e-4 <= lo and hi <= 1e5 else
                                 LogFormatterSciNotation(labelOnlyBase=False,
                                                         minor_thresholds=(np.inf, np.inf)))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs="auto"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _log_ticks():
    from matplotlib.ticker import LogLocator, MaxNLocator

    class LogTicks(LogLocator):
        """LogLocator with more labelled ticks over a short range, round exponents over a long
        one, and never a decade past 1e308 (LogLocator adds some beyond the view: inf)."""

        def tick_values(self, vmin, vmax):
            lo, hi = np.log10(max(vmin, 1e-307)), np.log10(min(vmax, 1e307))
            if hi - lo > 10:
                exps = MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
                return 10.0 ** exps[(exps > -308) & (exps < 308)]
            if hi - lo <= 0.5:   # too narrow for digits: evenly spaced round numbers
                return MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
            subs = (1, 2, 3, 5, 7) if hi - lo <= 1.5 else (1, 2, 5) if hi - lo <= 3 else (1,)
            with np.errstate(over="ignore"):
                ticks = LogLocator(base=10, subs=subs, numticks=99).tick_values(vmin, vmax)
            return ticks[np.isfinite(ticks)]

    return LogTicks()


def fit_y(ax, values, log: bool) -> None:
    """y limits covering every finite value (positive ones on a log axis), 5% margin each side;
    autoscaling is not used because a value near the float maximum overflows its margin."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if not v.size:
        return
    if log:
        lo, hi = np.log10(v.min()), np.log10(v.max())
        pad = 0.05 * (hi - lo) or 0.1
        ax.set_ylim(10 ** max(lo - pad, -307.0), 10 ** min(hi + pad, 307.0))
    else:
        lo, hi = float(v.min()), float(v.max())
        pad = 0.05 * (hi - lo) or 0.05 * abs(hi) or 0.1
        big = np.finfo(float).max
        ax.set_ylim(max(lo - pad, -big), min(hi + pad, big))


def draw_series(ax, x, y, *, join: bool, smoothing: int = 1, xname: str = "epoch",
                **style) -> list[str]:
    """One curve: ``y`` (a Series) against ``x``; returns notes on its infinite values.

    ``join``: draw straight across missing values (validation evaluated every few rows); else a
    missing value is a gap. An infinite value is left out of the line and drawn as a red x on
    the top (+inf) or bottom (-inf) edge, and noted ("inf at epoch 3", ``xname`` naming x). A
    value measured as NaN (NaN but not ``isna()``: a nullable Float64 column) is left out the
    same way and drawn as a red x on the bottom edge with gid :data:`NAN_MARK`, and noted ("nan
    at epoch 3"). A point with no neighbour gets a dot, so it shows, and so does every point of
    a short curve (a one-epoch run's single validation loss).
    """
    measured_nan = (y.notna() & np.isnan(y.astype(float))).to_numpy()
    y = y.astype(float)
    x = np.asarray(x)
    finite = smooth(y, smoothing)
    if smoothing > 1:
        ax.plot(x, y.where(np.isfinite(y)), color=style.get("color"), alpha=0.2, lw=0.8)
    keep = finite.notna().to_numpy() if join else np.ones(len(y), bool)
    few = int(finite.notna().sum()) <= _FEW_POINTS
    ax.plot(x[keep], finite.to_numpy()[keep], **(_marker(join) if few else {}), **style)
    if not join:
        f = finite.notna().to_numpy()
        lonely = f & ~np.r_[False, f[:-1]] & ~np.r_[f[1:], False]
        ax.plot(x[lonely], finite.to_numpy()[lonely], ls="none", marker="o", ms=3,
                color=style.get("color"))
    notes = []
    for sign, edge in ((1, 1.0), (-1, 0.0)):
        at = x[(y == sign * np.inf).to_numpy()]
        if len(at):
            ax.plot(at, np.full(len(at), edge), ls="none", marker="x", ms=8, mew=2, color="red",
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)
            more = f" (and {len(at) - 1} more)" if len(at) > 1 else ""
            notes.append(f"{'-' if sign < 0 else ''}inf at {xname} {at[0]}{more}")
    at = x[measured_nan]
    if len(at):   # where training diverged: a gap alone would read as "not measured"
        ax.plot(at, np.zeros(len(at)), ls="none", marker="x", ms=8, mew=2, color="red",
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, gid=NAN_MARK)
        more = f" (and {len(at) - 1} more)" if len(at) > 1 else ""
        notes.append(f"nan at {xname} {at[0]}{more}")
    return notes


def _marker(join: bool) -> dict:
    """The marks of a short curve's points: filled for training, hollow for validation (joined),
    so the two still differ where a single point has no dash to show."""
    return {"marker": "o", "ms": 4, **({"mfc": "white"} if join else {})}


def nan_legend(ax, what: str) -> list:
    """The legend handle of the NaN marks draw_series drew on ``ax`` ("NaN loss"), if any."""
    from matplotlib.lines import Line2D

    if not any(ln.get_gid() == NAN_MARK for ln in ax.get_lines()):
        return []
    return [Line2D([], [], ls="none", marker="x", ms=8, mew=2, color="red", label=f"NaN {what}")]


def _color(i: int, n: int):
    """Run i's colour: the ten default ones, or twenty paler-paired ones for more runs."""
    return f"C{i}" if n <= 10 else pyplot().get_cmap("tab20")(i % 20)


def _note(ax, lines: list[str]) -> None:
    if lines:
        ax.text(0.02, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", ha="left",
                fontsize=8, color="red", bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})


# ---------------------------------------------------------------- runs
def runs_figure(runs, *, logy: bool | None = None, smoothing: int = 1, title: str | None = None):
    """Train (solid) and validation (dashed) loss of each run, plus accuracy where there is one.

    ``runs``: (name, metrics) pairs, metrics a run's metrics.csv as a pandas DataFrame (columns
    epoch, step, train_loss and optionally val_loss, train_accuracy, val_accuracy; an empty
    train_loss is an epoch whose every batch was skipped; a NaN is marked, as
    :func:`draw_series` says). ``logy`` None: a log loss axis when
    every finite loss is positive; ``smoothing``: moving-average window in rows (the raw curve
    stays visible, faint). Returns the Figure: one colour per run, a legend of runs below the
    panels when there are more than a few, the line styles explained once.
    """
    from matplotlib.lines import Line2D

    plt = pyplot()
    frames = list(runs)
    has_acc = any("val_accuracy" in df or "train_accuracy" in df for _, df in frames)
    has_val = any("val_loss" in df for _, df in frames)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(11 if has_acc else 6.5, 4.4),
                             squeeze=False, layout="constrained")
    panels = [("loss", "train_loss", "val_loss")]
    if has_acc:
        panels.append(("accuracy", "train_accuracy", "val_accuracy"))
    losses = np.concatenate([df[c].to_numpy(float) for _, df in frames
                             for c in ("train_loss", "val_loss") if c in df] or [np.empty(0)])
    finite = losses[np.isfinite(losses)]
    if logy is None:
        logy = bool(finite.size) and bool((finite > 0).all())
    xlabel = x_label(frames)
    nans = {}
    for ax, (what, train_col, val_col) in zip(axes[0], panels):
        notes = []
        for i, (run, df) in enumerate(frames):
            who = f"{run} " if len(frames) > 1 else ""
            for col, join, ls, kind in ((train_col, False, "-", "train"),
                                        (val_col, True, "--", "validation")):
                if col in df:
                    notes += [f"{who}{kind}: {n}" for n in
                              draw_series(ax, df["epoch"], df[col], join=join, smoothing=smoothing,
                                          xname="iteration" if per_iteration(df) else "epoch",
                                          color=_color(i, len(frames)), ls=ls)]
            if train_col == "train_loss" and "train_loss" in df and df["train_loss"].isna().any():
                notes.append(f"{who}train: {int(df['train_loss'].isna().sum())} epochs with "
                             f"every batch skipped (gaps)")
        fit_y(ax, losses if what == "loss" else
              np.concatenate([df[c].to_numpy(float) for _, df in frames
                              for c in (train_col, val_col) if c in df]),
              log=logy and what == "loss")
        if what == "loss" and logy:
            log_axis(ax)
        epoch_axis(ax, xlabel)
        ax.set_ylabel(what)
        ax.set_title(what, pad=10)   # room for the red x of an infinite value on the top edge
        ax.grid(alpha=0.3, which="major")
        _note(ax, notes)
        nans[what] = nan_legend(ax, what)
    few = any(df["train_loss"].notna().sum() <= _FEW_POINTS for _, df in frames
              if "train_loss" in df)
    styles = [Line2D([], [], color="0.3", label="train", **(_marker(False) if few else {}))]
    if has_val:
        styles.append(Line2D([], [], color="0.3", ls="--", label="validation",
                             **(_marker(True) if few else {})))
    axes[0][0].legend(handles=styles + nans["loss"], loc="best", fontsize=9)
    if nans.get("accuracy"):
        axes[0][1].legend(handles=nans["accuracy"], loc="best", fontsize=9)
    if len(frames) > 1:
        # below the panels, folded into columns: it covers no curve however many runs there are
        longest = max(len(run) for run, _ in frames)
        fig.legend(handles=[Line2D([], [], color=_color(i, len(frames)), lw=2, label=run)
                            for i, (run, _) in enumerate(frames)],
                   loc="outside lower center", fontsize=9,
                   ncol=max(1, min(len(frames), int(fig.get_figwidth() * 11) // (longest + 6))))
    fig.suptitle(title or (frames[0][0] if len(frames) == 1 else f"{len(frames)} runs"))
    return fig


def plot_runs(runs, out, *, logy: bool | None = None, smoothing: int = 1,
              title: str | None = None) -> Path:
    """:func:`runs_figure` written to the PNG ``out``."""
    return save(runs_figure(runs, logy=logy, smoothing=smoothing, title=title), out)


# ---------------------------------------------------------------- sweeps
def _short(path: str) -> str:
    return path.split(".")[-1]


def _ordered(values) -> list:
    """Distinct values, numbers by size before words in text order."""
    def key(v):
        return (0, float(v), "") if isinstance(v, (int, float)) and not isinstance(v, bool) \
            else (1, 0.0, str(v))
    return sorted(set(values), key=key)


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def sweep_figure(rows, curves: dict, varied):
    """A sweep in one Figure: every variant's curve, then for each swept key with more than one
    value, the final metric against that key's values.

    ``rows``: one dict per finished variant (sweep.csv's rows: each key path in ``varied`` with
    its value, seed, status, final_* metrics, run); ``curves``: run name -> that variant's
    metrics DataFrame (validation loss drawn, training loss where there is none); ``varied``:
    the key paths the sweep sets. A final-metric point is the mean over the seeds of the variants
    sharing every swept value; its error bar is their standard deviation (no bar for one seed).
    Each other swept key's settings get a line of their own; when they have more than a few
    settings, each setting is a point and the title says the others are pooled.
    """
    import pandas as pd
    from matplotlib.lines import Line2D

    plt = pyplot()
    table = pd.DataFrame(rows)
    keys = [p for p in varied if p in table and len(_ordered(table[p])) > 1]
    fig, axes = plt.subplots(1, 1 + len(keys), figsize=(5.8 * (1 + len(keys)), 4.6),
                             squeeze=False, layout="constrained")
    _sweep_curves(axes[0][0], table, curves, keys, plt, Line2D)
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[:0]
    metric = next((m for m in ("final_val_accuracy", "final_val_loss", "final_train_loss")
                   if m in ok and np.isfinite(ok[m].astype(float)).any()), None)
    for ax, key in zip(axes[0][1:], keys):
        if metric is None:
            ax.set_title(f"{_short(key)}: no variant finished with a final metric")
            continue
        _sweep_panel(ax, ok[np.isfinite(ok[metric].astype(float))], metric, key, keys)
    fixed = [f"{_short(p)}={table[p].iloc[0]}" for p in varied if p in table and p not in keys]
    fig.suptitle(f"sweep of {len(table)} variants" + (f"; the same for all: {', '.join(fixed)}"
                                                      if fixed else ""))
    return fig


def _sweep_curves(ax, table, curves, keys, plt, Line2D) -> None:
    """Every variant's validation (or training) loss, coloured by the first swept key's value,
    dashed and dotted by the second's."""
    from matplotlib.colors import LogNorm, Normalize

    hue = keys[0] if keys else None
    levels = _ordered(table[hue]) if hue else [None]
    cmap = plt.get_cmap("viridis")
    bar = hue is not None and len(levels) > _MANY_LEVELS and _numeric(levels)
    if bar:
        lo, hi = float(levels[0]), float(levels[-1])
        norm = LogNorm(lo, hi) if lo > 0 and hi / lo >= 20 else Normalize(lo, hi)
        colour = lambda v: cmap(norm(float(v)))   # noqa: E731
    else:
        colour = lambda v: cmap(levels.index(v) / max(1, len(levels) - 1))  # noqa: E731
    dash = keys[1] if len(keys) > 1 and len(_ordered(table[keys[1]])) <= 4 else None
    styles = dict(zip(_ordered(table[dash]), ("-", "--", ":", "-."))) if dash else {}
    drawn, values, notes = [], [], []
    for _, r in table.iterrows():
        df = curves.get(r.get("run"))
        if df is None or not len(df):
            continue
        col = "val_loss" if "val_loss" in df and np.isfinite(df["val_loss"]).any() else "train_loss"
        drawn.append((r.get("run"), df))
        values.append(df[col].to_numpy(float))
        notes += [f"{r['run']}: {n}" for n in draw_series(
            ax, df["epoch"], df[col], join=col == "val_loss", lw=1.2, alpha=0.85,
            xname="iteration" if per_iteration(df) else "epoch",
            color=colour(r[hue]) if hue else "C0", ls=styles.get(r[dash], "-") if dash else "-")]
    cols = {("val_loss" if "val_loss" in df and np.isfinite(df["val_loss"]).any()
             else "train_loss") for _, df in drawn}
    v = np.concatenate(values or [np.empty(0)])
    finite = v[np.isfinite(v)]
    log = bool(finite.size) and bool((finite > 0).all())
    fit_y(ax, v, log)
    if log:
        log_axis(ax)
    epoch_axis(ax, x_label(drawn))
    ax.set_ylabel({frozenset({"val_loss"}): "validation loss",
                   frozenset({"train_loss"}): "training loss"}.get(
        frozenset(cols), "validation loss (training loss where none)"))
    ax.set_title("every variant")
    ax.grid(alpha=0.3)
    _note(ax, notes[:4] + ([f"... and {len(notes) - 4} more"] if len(notes) > 4 else []))
    if bar:
        fig = ax.get_figure()
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=_short(hue))
    handles = [] if bar or hue is None else [
        Line2D([], [], color=colour(lv), label=f"{_short(hue)}={lv}") for lv in levels]
    handles += [Line2D([], [], color="0.3", ls=s, label=f"{_short(dash)}={lv}")
                for lv, s in styles.items()]
    handles += nan_legend(ax, "loss")
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="best")


def _sweep_panel(ax, ok, metric: str, key: str, keys: list) -> None:
    """The final metric against ``key``'s values: mean ± standard deviation over seeds of each
    setting of every swept key; a line per setting of the other keys (points when many)."""
    others = [k for k in keys if k != key]
    label = {k: ok[k].map(str) for k in keys}   # "16" and "full" group apart, as written
    stats = (ok.assign(**{f"_{k}": label[k] for k in keys})
             .groupby([f"_{k}" for k in keys], sort=False)
             .agg(value=(key, "first"), mean=(metric, "mean"), std=(metric, "std"),
                  seeds=(metric, "count"), **{f"o_{k}": (k, "first") for k in others})
             .reset_index())
    levels = _ordered(ok[key])
    many = len(levels) > _MANY_LEVELS and _numeric(levels)
    position = (lambda v: float(v)) if many else (lambda v: float(levels.index(v)))  # noqa: E731
    groups = [((), stats)] if not others else list(stats.groupby([f"o_{k}" for k in others],
                                                                 sort=True))
    pooled = len(groups) > _MANY_LINES
    for j, (setting, g) in enumerate(groups):
        g = g.assign(x=g["value"].map(position)).sort_values("x")
        # side by side, so that the bars of different lines do not hide each other
        x = g["x"] + (0 if many or pooled else (j - (len(groups) - 1) / 2) * 0.08)
        setting = setting if isinstance(setting, tuple) else (setting,)
        name = ", ".join(f"{_short(k)}={v}" for k, v in zip(others, setting)) or None
        colour = "C0" if pooled else f"C{j % 10}"
        ax.plot(x, g["mean"], marker="o", ls="none" if pooled else "-", color=colour,
                alpha=0.6 if pooled else 1.0, label=None if pooled else name)
        bars = g["seeds"] > 1
        if bars.any():
            ax.errorbar(x[bars], g["mean"][bars], yerr=g["std"][bars], fmt="none", capsize=4,
                        color=colour, alpha=0.6 if pooled else 1.0)
    if many:
        lo, hi = float(levels[0]), float(levels[-1])
        if lo > 0 and hi / lo >= 20:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
    seeds = sorted(set(stats["seeds"]))
    spread = ("one seed per setting: no error bars" if seeds == [1] else
              f"mean ± standard deviation over {seeds[-1] if len(seeds) == 1 else f'{seeds[0]}–{seeds[-1]}'} seeds")
    pool = (f"; each point one setting of {', '.join(map(_short, others))}" if pooled else "")
    ax.set_title(f"{metric.replace('final_', 'final ')} by {_short(key)}\n{spread}{pool}",
                 fontsize=10)
    ax.set_xlabel(key)
    ax.set_ylabel(metric.replace("final_", "final "))
    ax.grid(alpha=0.3)
    if others and not pooled:
        ax.legend(fontsize=8, loc="best")


def plot_sweep(rows, curves: dict, varied, out) -> Path:
    """:func:`sweep_figure` written to the PNG ``out``."""
    return save(sweep_figure(rows, curves, varied), out, dpi=100)
