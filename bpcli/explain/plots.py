"""Loss curves from run folders' ``metrics.csv``, drawn with matplotlib (Agg: files, never windows)."""

from __future__ import annotations

from pathlib import Path



def pyplot():
    """matplotlib.pyplot on the Agg backend: bpcli draws files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, out, dpi: int = 110) -> Path:
    """Write ``fig`` to ``out`` (making its folder) and free it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def smooth(values, window: int):
    """Trailing moving average over ``window`` rows (1: unchanged); gaps (NaN) stay gaps."""
    if window <= 1:
        return values
    return values.rolling(window, min_periods=1).mean()


def plot_runs(runs, out, *, logy: bool | None = None, smoothing: int = 1,
              title: str | None = None) -> Path:
    """Train (solid) and validation (dashed) loss of each run, plus accuracy where there is one.

    ``runs`` are (name, metrics) pairs, metrics a run's metrics.csv as a pandas DataFrame.

    ``logy`` None: a log loss axis when every loss is positive; ``smoothing``: moving-average
    window in rows (the raw curve stays visible, faint).
    """
    plt = pyplot()
    frames = list(runs)
    has_acc = any("val_accuracy" in df or "train_accuracy" in df for _, df in frames)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(11 if has_acc else 6.5, 4.2),
                             squeeze=False)
    ax_loss = axes[0][0]
    for i, (run, df) in enumerate(frames):
        # full-batch gd logs every iteration (one step per epoch); minibatch optimizers every epoch
        x = df["epoch"]
        xlabel = "iteration" if (df["step"] == df["epoch"]).all() else "epoch"
        color = f"C{i}"
        label = run if len(frames) > 1 else ""
        # validation may be evaluated every few rows (training.eval_every): join the rows that have it
        val = lambda col: (x[df[col].notna()], smooth(df[col].dropna(), smoothing))  # noqa: E731
        if smoothing > 1:
            ax_loss.plot(x, df["train_loss"], color=color, alpha=0.2, lw=0.8)
        ax_loss.plot(x, smooth(df["train_loss"], smoothing), color=color,
                     label=f"{label} train".strip())
        if "val_loss" in df:
            ax_loss.plot(*val("val_loss"), color=color, ls="--", label=f"{label} validation".strip())
        if has_acc:
            ax = axes[0][1]
            if "train_accuracy" in df:
                ax.plot(x, smooth(df["train_accuracy"], smoothing), color=color,
                        label=f"{label} train".strip())
            if "val_accuracy" in df:
                ax.plot(*val("val_accuracy"), color=color, ls="--",
                        label=f"{label} validation".strip())
    ax_loss.set_xlabel(xlabel)
    ax_loss.set_ylabel("loss")
    if logy is None:
        logy = all((df["train_loss"] > 0).all() for _, df in frames)
    if logy:
        ax_loss.set_yscale("log")
    ax_loss.set_title("loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    if has_acc:
        ax = axes[0][1]
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or (frames[0][0] if len(frames) == 1 else f"{len(frames)} runs"))
    fig.tight_layout()
    return save(fig, out)
