"""Pictures of how a trained model scores (``bpcli eval --plot``): a classifier's confusion matrix,
a regressor's predictions against the truth. Each function returns the matplotlib figure;
:func:`bpcli.explain.plots.save` writes it."""

from __future__ import annotations

import numpy as np

from .plots import pyplot

_ANNOTATE_UP_TO = 20  # classes: beyond this the numbers in the cells would not be readable


def confusion_figure(cm, classes, title: str = ""):
    """Two panels of the confusion matrix ``cm`` (K, K), rows true and columns predicted class, in
    ``classes`` order: the counts, and each row divided by its total (the diagonal is then each
    class's recall; a class with no samples is a row of zeros). Class names label both axes."""
    plt = pyplot()
    cm = np.asarray(cm)
    k = len(classes)
    totals = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
    side = min(12.0, 2.5 + 0.45 * k)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side, side))
    rotate = 45 if max(map(len, classes)) > 3 else 0
    for ax, values, name, fmt in ((axes[0], cm, "counts", "{:d}"),
                                  (axes[1], normalised, "row-normalised (diagonal: recall)",
                                   "{:.2f}")):
        top = values.max() or 1
        ax.imshow(values, cmap="Blues", vmin=0, vmax=top)
        ax.set_xticks(range(k), classes, rotation=rotate, ha="right" if rotate else "center")
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(name)
        if k <= _ANNOTATE_UP_TO:
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, fmt.format(v.item()), ha="center", va="center", fontsize=9,
                        color="white" if v > top / 2 else "black")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def regression_figure(truth, predicted, title: str = ""):
    """Predicted (vertical) against true (horizontal) values, every output of every sample one
    point, with the identity line y = x on which a perfect model's points would lie."""
    plt = pyplot()
    truth = np.asarray(truth, dtype=float).reshape(-1)
    predicted = np.asarray(predicted, dtype=float).reshape(-1)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(truth, predicted, s=8, alpha=0.5 if truth.size > 200 else 0.8, lw=0)
    both = np.concatenate([truth, predicted])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    ax.plot([lo, hi], [lo, hi], color="C3", lw=1, label="predicted = true")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def formats() -> list[str]:
    """The file suffixes (without the dot) matplotlib can write: png, svg, pdf, ..."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())
