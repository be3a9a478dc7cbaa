"""The pictures say what the data say: facts of each matplotlib figure (axes, ticks, limits,
markers, legends, labels), not its pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.transforms import Bbox

from bpcli.explain.plots import runs_figure, sweep_figure

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.fixture(autouse=True)
def close_figures():
    """The figures these tests build are read, never saved: close them after each test."""
    yield
    from bpcli.explain.plots import pyplot

    pyplot().close("all")


def metrics(losses, *, val=None, step_per_epoch: int = 10, acc: bool = False) -> pd.DataFrame:
    """A metrics.csv as read back: epoch 1..n, step (= epoch for full-batch gd: step_per_epoch 1)."""
    n = len(losses)
    df = pd.DataFrame({"epoch": np.arange(1, n + 1), "step": step_per_epoch * np.arange(1, n + 1),
                       "train_loss": np.asarray(losses, float)})
    if val is not None:
        df["val_loss"] = np.asarray(val, float)
    if acc:
        df["train_accuracy"] = np.linspace(0.5, 0.9, n)
        df["val_accuracy"] = np.linspace(0.5, 0.8, n)
    return df


def drawn(fig):
    fig.canvas.draw()
    return fig


def labels(axis, lo, hi) -> list[str]:
    """The tick labels a reader sees on ``axis`` between lo and hi, major and minor."""
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return [t.label1.get_text() for t in ticks
            if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi]


def lines_with(ax, x, y) -> list:
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) and
            np.any((np.asarray(ln.get_xdata(), float) == x) & (np.asarray(ln.get_ydata(), float) == y))]


# ---------------------------------------------------------------- a run's curves
def test_a_diverged_run_has_axes_from_its_finite_data_and_marks_the_infinite_point():
    # the field report: 6.3 -> 5e293 -> inf, drawn on a fixed [1, 10] axis as one tiny segment
    loss = [6.3, 5e150, 5e293, np.inf]
    fig = drawn(runs_figure([("diverged", metrics(loss, val=[7.0, 6e150, np.inf, np.inf],
                                                  step_per_epoch=1))]))
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "log" and lo <= 6.3 and hi >= 5e293 and np.isfinite(hi)
    # a red x on the top edge (y in axes coordinates: 1) at each infinite point's x
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert sorted(x for ln in marks for x in ln.get_xdata()) == [3, 4, 4]
    assert all(set(ln.get_ydata()) == {1.0} and ln.get_color() == "red" for ln in marks)
    notes = " ".join(t.get_text() for t in ax.texts)
    assert "train: inf at iteration 4" in notes and "validation: inf at iteration 3 (and 1 more)" in notes
    assert len(labels(ax.yaxis, lo, hi)) >= 4


def test_epochs_whose_every_batch_was_skipped_are_gaps_not_joined():
    loss = [2.0, 1.5, np.nan, np.nan, 1.2, np.nan, 1.0, 0.9]
    fig = drawn(runs_figure([("skippy", metrics(loss, val=np.linspace(2, 1, 8)))]))
    ax = fig.axes[0]
    train = next(ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 8)
    y = np.asarray(train.get_ydata(), float)
    assert np.isnan(y[[2, 3, 5]]).all() and y[4] == 1.2   # the gaps stay in the line, as gaps
    # the lone epoch 5 between two gaps gets a dot, so that it shows
    assert any(ln.get_marker() == "o" and list(ln.get_xdata()) == [5] for ln in ax.get_lines())
    assert "3 epochs with every batch skipped" in " ".join(t.get_text() for t in ax.texts)
    assert ax.get_yscale() == "log"   # the gaps do not make the positive losses look non-positive


@pytest.mark.slow
def test_a_20_epoch_run_has_integer_epoch_ticks():
    fig = drawn(runs_figure([("r", metrics(np.linspace(1, 0.1, 20), acc=True))]))
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [float(t) for t in ax.get_xticks() if lo <= t <= hi]
        assert len(ticks) >= 3 and all(t == int(t) for t in ticks), ticks
        assert ax.get_xlabel() == "epoch"


@pytest.mark.parametrize("low, high", [(2e-3, 3e-1), (0.35, 2.1), (0.54, 0.71), (1e-9, 1e3)])
def test_a_log_loss_axis_has_enough_tick_labels(low, high):
    # the field report: a loss from 0.3 to 0.002 showed only 10^-2 and 10^-1
    fig = drawn(runs_figure([("r", metrics(np.geomspace(high, low, 15)))]))
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "log" and lo <= low and hi >= high
    assert len(labels(ax.yaxis, lo, hi)) >= 4, labels(ax.yaxis, lo, hi)


def test_six_runs_one_legend_entry_each_below_the_panels_and_line_styles_once():
    runs = [(f"run-{i}", metrics(np.linspace(1, 0.1 * (i + 1), 10), val=np.linspace(1.1, 0.2, 10),
                                 acc=True)) for i in range(6)]
    fig = drawn(runs_figure(runs))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [name for name, _ in runs]
    box = legend.get_window_extent()
    assert not any(Bbox.intersection(box, ax.get_window_extent()) for ax in fig.axes)
    assert box.y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)   # below the panels
    styles = fig.axes[0].get_legend()
    assert [t.get_text() for t in styles.get_texts()] == ["train", "validation"]
    assert fig.axes[1].get_legend() is None


def test_the_x_label_is_true_of_every_run_when_gd_and_minibatch_runs_are_mixed():
    gd = ("gd", metrics(np.linspace(1, 0.5, 30), step_per_epoch=1))
    mini = ("adam", metrics(np.linspace(1, 0.2, 10)))
    assert drawn(runs_figure([gd])).axes[0].get_xlabel() == "iteration"
    assert drawn(runs_figure([mini])).axes[0].get_xlabel() == "epoch"
    for order in ([gd, mini], [mini, gd]):
        label = drawn(runs_figure(order)).axes[0].get_xlabel()
        assert label == "epoch (for the full-batch runs, one iteration)"


def test_a_single_run_has_no_run_legend_and_its_name_as_title():
    fig = drawn(runs_figure([("pulse-cnn", metrics([1.0, 0.5, 0.2], val=[1.1, 0.6, 0.3]))]))
    assert fig.legends == [] and fig.get_suptitle() == "pulse-cnn"


# ---------------------------------------------------------------- a sweep
def sweep(lrs, batches, seeds, acc):
    """Sweep rows and curves: acc(lr, batch, seed) is each variant's final validation accuracy."""
    rows, curves = [], {}
    for lr in lrs:
        for b in batches:
            for s in seeds:
                name = f"lr={lr}_b={b}_s={s}"
                rows.append({"optimizer.lr": lr, "training.batch_size": b, "optimizer.momentum": 0.9,
                             "seed": s, "status": "ok", "final_val_accuracy": acc(lr, b, s),
                             "final_val_loss": 0.1, "run": name})
                curves[name] = metrics(np.linspace(1, 0.1, 5), val=np.linspace(1, 0.2, 5))
    return rows, curves


VARIED = ["optimizer.lr", "training.batch_size", "optimizer.momentum"]


def points(ax):
    """(x, y) of the points on each plotted line of a final-metric panel, by line label."""
    return {ln.get_label(): list(zip(ln.get_xdata(), ln.get_ydata())) for ln in ax.get_lines()
            if ln.get_marker() == "o"}


def test_sweep_error_bars_are_the_spread_over_seeds_only_one_line_per_other_value():
    # accuracy depends on the batch size, not on the seed: the spread over seeds is 0.01
    def acc(lr, b, s):
        return {16: 0.9, 64: 0.7}[b] + (0.01 if s else -0.01)
    rows, curves = sweep([0.1, 0.01], [16, 64], [0, 1], acc)
    fig = drawn(sweep_figure(rows, curves, VARIED))
    assert len(fig.axes) == 3   # every variant; by lr; by batch size; none for the one momentum
    by_lr = fig.axes[1]
    assert "mean ± standard deviation over 2 seeds" in by_lr.get_title()
    lines = points(by_lr)
    assert set(lines) == {"batch_size=16", "batch_size=64"}
    assert [round(y, 9) for _, y in lines["batch_size=16"]] == [0.9, 0.9]
    bars = [c for c in by_lr.containers]
    spreads = [seg[1][1] - seg[0][1] for c in bars for seg in c.lines[2][0].get_segments()]
    # each bar is mean ± the sample standard deviation of the two seeds, not of lr or batch size
    assert np.allclose(spreads, 2 * np.std([0.91, 0.89], ddof=1))
    assert "momentum=0.9" in fig.get_suptitle()


def test_one_seed_draws_no_error_bar_and_says_so():
    rows, curves = sweep([0.1, 0.01, 0.001], [16], [0], lambda lr, b, s: 0.5 + lr)
    fig = drawn(sweep_figure(rows, curves, VARIED))
    assert len(fig.axes) == 2 and fig.axes[1].get_xlabel() == "optimizer.lr"
    assert fig.axes[1].containers == [] and "no error bars" in fig.axes[1].get_title()
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["0.001", "0.01", "0.1"]


def test_sweep_curves_show_a_diverged_variant_and_name_the_loss_they_draw():
    rows, curves = sweep([0.1, 10.0], [16], [0], lambda lr, b, s: 0.9)
    curves["lr=10.0_b=16_s=0"] = metrics([1.0, 1e200, np.inf], val=[1.0, 1e100, np.inf])
    ax = drawn(sweep_figure(rows, curves, VARIED)).axes[0]
    lo, hi = ax.get_ylim()
    assert lo <= 0.2 and hi >= 1e100 and ax.get_ylabel() == "validation loss"
    assert any(ln.get_marker() == "x" and list(ln.get_xdata()) == [3] for ln in ax.get_lines())
    xs = [float(t) for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert all(x == int(x) for x in xs)


# ---------------------------------------------------------------- Toeplitz matrices
def test_a_tall_conv2d_toeplitz_matrix_fits_and_shows_its_corner_at_one_square_per_entry():
    import bpcli
    from bpcli.explain.layer_table import toeplitz_figure

    # the field report: image_cnn's 6272×784 T(w) was an 825×2563 strip with a tiny title
    fig = drawn(toeplitz_figure(bpcli.build(SPECS / "image_cnn.yaml"), 0))
    width, height = fig.get_size_inches()
    assert 1 / 2 <= height / width <= 2
    whole, corner = fig.axes[:2]
    assert whole.get_images()[0].get_array().shape == (6272, 784)
    assert "rows squeezed 3.2×" in whole.get_title()
    assert corner.get_images()[0].get_array().shape == (96, 96)
    assert "6272×784" in fig.get_suptitle()
    title = next(t for t in fig.texts if 'T(w)' in t.get_text()).get_window_extent()
    assert title.x0 >= 0 and title.x1 <= fig.bbox.width   # the title fits the picture


def test_a_small_toeplitz_matrix_is_one_square_panel():
    import bpcli
    from bpcli.explain.layer_table import toeplitz_figure

    fig = drawn(toeplitz_figure(bpcli.build(SPECS / "lecture_cnn.yaml"), 0))
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 1 and images[0].get_images()[0].get_array().shape == (64, 64)


def test_the_step_size_sweep_marks_an_exact_zero_instead_of_inventing_a_value():
    from bpcli.explain.gradcheck_report import sweep_figure

    rows = [{"h": h, "abs_err": e} for h, e in ((1e-8, 3e-9), (1e-6, 0.0), (1e-4, 2e-10))]
    ax = drawn(sweep_figure({"rows": rows, "h_default": 6e-6})).axes[0]
    curve = next(ln for ln in ax.get_lines() if ln.get_label().startswith("|central"))
    assert list(curve.get_ydata()) == [3e-9, 2e-10]
    zero = next(ln for ln in ax.get_lines() if ln.get_label() == "exactly 0")
    assert list(zero.get_xdata()) == [1e-6] and list(zero.get_ydata()) == [0.0]
    assert ax.get_ylim()[0] > 1e-12   # no 1e-18 stand-in stretching the axis
