"""Pictures of how a trained model scores (``bpcli eval --plot``): a classifier's confusion matrix,
a regressor's predictions against the truth, and for networks whose answer is a picture a grid
of samples (input, target, prediction, error). Each function returns the matplotlib figure;
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
    # constrained layout makes room for rotated class names: tight_layout clipped the x label
    fig, axes = plt.subplots(1, 2, figsize=(2 * side, side), layout="constrained")
    rotate = 45 if max(map(len, classes)) > 3 else 0
    for ax, values, name, fmt in ((axes[0], cm, "counts", "{:d}"),
                                  (axes[1], normalised, "row-normalised (diagonal: recall)",
                                   "{:.2f}")):
        top = values.max() or 1
        ax.imshow(values, cmap="Blues", vmin=0, vmax=top)
        ax.set_xticks(range(k), classes, rotation=rotate, ha="right" if rotate else "center",
                      rotation_mode="anchor")
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(name)
        if k <= _ANNOTATE_UP_TO:
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, fmt.format(v.item()), ha="center", va="center", fontsize=9,
                        color="white" if v > top / 2 else "black")
    fig.suptitle(title)
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


def class_palette(k: int) -> np.ndarray:
    """Colours (k, 3) of uint8 for k classes: black and white for two (a binary mask as it is
    usually stored), else black for class 0 (background) and matplotlib's tab20 colours for the
    others (its 10 dark hues, then their light ones), repeated past 20. Masks written by ``bpcli predict`` and the grids here share them."""
    if k <= 2:
        return np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)[:k]
    from matplotlib import colormaps

    pairs = np.asarray(colormaps["tab20"].colors)  # dark and light of 10 hues: darks first
    tab = np.rint(np.vstack([pairs[0::2], pairs[1::2]]) * 255).astype(np.uint8)
    return np.vstack([[0, 0, 0], tab[np.arange(k - 1) % len(tab)]]).astype(np.uint8)


def _picture(x) -> tuple[np.ndarray, str | None]:
    # (C, H, W) -> what imshow takes: (H, W) in gray, or (H, W, 3|4); other channel counts: the first
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        return x, "gray"
    if x.shape[0] in (3, 4):
        return np.clip(np.moveaxis(x, 0, -1), 0.0, 1.0), None
    return x[0], "gray"


def _grid(n: int, title: str):
    plt = pyplot()
    fig, axes = plt.subplots(n, 4, figsize=(10.0, 2.5 * n + 0.8), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig, axes


def restoration_grid(inputs, targets, predictions, metrics: list[str], limits=(0.0, 1.0),
                     title: str = ""):
    """One row per sample of pictures (C, H, W): the input, the target, the prediction (titled
    with ``metrics[i]``: PSNR, SSIM) and the error |prediction − target| (the mean over channels),
    pictures drawn on ``limits`` (low, high) and every error on one scale, the largest in the
    grid."""
    n = len(targets)
    fig, axes = _grid(n, title)
    errors = [np.abs(np.asarray(p, float) - np.asarray(t, float)).mean(axis=0)
              for p, t in zip(predictions, targets)]
    top = max((float(e.max()) for e in errors), default=0.0) or 1.0
    for i in range(n):
        for ax, x, name in ((axes[i, 0], inputs[i], "input"), (axes[i, 1], targets[i], "target"),
                            (axes[i, 2], predictions[i], f"prediction: {metrics[i]}")):
            picture, cmap = _picture(x)
            ax.imshow(picture, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
            ax.set_title(name, fontsize=9)
        shown = axes[i, 3].imshow(errors[i], cmap="magma", vmin=0.0, vmax=top,
                                  interpolation="nearest")
        axes[i, 3].set_title("|prediction − target|", fontsize=9)
    fig.colorbar(shown, ax=axes[:, 3].tolist(), shrink=0.8)
    return fig


def segmentation_grid(inputs, truth, predicted, metrics: list[str], classes: list[str],
                      title: str = ""):
    """One row per sample: the input picture (C, H, W), the true and the predicted class maps
    (H, W) in :func:`class_palette`'s colours (the prediction titled with ``metrics[i]``: Dice,
    IoU), and the wrong pixels (white) with their share."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    n, k = len(truth), len(classes)
    colours = class_palette(k) / 255.0
    cmap = ListedColormap(colours)
    fig, axes = _grid(n, title)
    for i in range(n):
        picture, gray = _picture(inputs[i])
        axes[i, 0].imshow(picture, cmap=gray, interpolation="nearest")
        axes[i, 0].set_title("input", fontsize=9)
        for ax, maps, name in ((axes[i, 1], truth[i], "target"),
                               (axes[i, 2], predicted[i], f"prediction: {metrics[i]}")):
            ax.imshow(maps, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
            ax.set_title(name, fontsize=9)
        wrong = np.asarray(truth[i]) != np.asarray(predicted[i])
        axes[i, 3].imshow(wrong, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[i, 3].set_title(f"wrong pixels: {wrong.mean():.1%}", fontsize=9)
    fig.legend(handles=[Patch(facecolor=c, edgecolor="0.5", label=name)
                        for c, name in zip(colours, classes)][:_ANNOTATE_UP_TO],
               loc="outside lower center", ncol=min(k, 8), fontsize=8)
    return fig


def formats() -> list[str]:
    """The file suffixes (without the dot) matplotlib can write: png, svg, pdf, ..."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())
