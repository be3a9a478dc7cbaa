"""The picture `bpcli graph` saves can be read at its own size: labels of 9 points or more at the
saved 110 dpi, no box over another, each label inside its box, and a picture about as tall as it
is wide however long the network. A tall graph is wrapped into columns, each cut edge a pair of
lettered connectors. Read from the matplotlib figure's artists (Agg), and the saved PNG's size."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
from matplotlib.patches import Circle
from PIL import Image

import bpcli
from bpcli.engine.expr import parse
from bpcli.explain.graphs import backward_graph, forward_graph, graphs_figure, to_png
from bpcli.explain.plots import pyplot

SPECS = Path(__file__).resolve().parents[1] / "specs"
LECTURE = "ln(x1) + x1*x2 - sin(x2)"
DPI = 110   # what bpcli.explain.plots.save writes every picture at


def graphs_of(source: str):
    """The forward and backward graphs `bpcli graph SOURCE` draws."""
    if source.endswith(".yaml"):
        model = bpcli.build(SPECS / source)
        prog, output, wrt = model.program, "loss", list(model.params)
    else:
        prog, output = parse(source), "y"
        wrt = list(prog.inputs)
    return [forward_graph(prog, output), backward_graph(prog, output, wrt)]


def chain(depth: int) -> str:
    """sin(sin(...sin(x)...)): a graph one node wide and ``depth`` + 1 long each way."""
    return "sin(" * depth + "x" + ")" * depth


@pytest.fixture(scope="module")
def drawn():
    """source -> (figure drawn at the saved dpi, its renderer), for every picture read here."""
    figures = {}

    def draw(source):
        if source not in figures:
            fig = graphs_figure(graphs_of(source))
            fig.set_dpi(DPI)
            fig.canvas.draw()
            figures[source] = fig, fig.canvas.get_renderer()
        return figures[source]
    yield draw
    pyplot().close("all")


def boxes(fig, renderer):
    """Window extents (pixels) of the node boxes and connector circles: patches, or boxes
    drawn around a text."""
    return [p.get_window_extent(renderer) for ax in fig.axes
            for p in (*ax.patches, *(t.get_bbox_patch() for t in ax.texts)) if p is not None]


def connectors(fig, renderer):
    """letter -> the window extents of the texts drawn on connector circles with that letter."""
    circles = [p.get_window_extent(renderer) for ax in fig.axes for p in ax.patches
               if isinstance(p, Circle)]
    found = {}
    for t in (t for ax in fig.axes for t in ax.texts):
        e = t.get_window_extent(renderer)
        if any(c.contains(*e.get_points().mean(axis=0)) for c in circles):
            found.setdefault(t.get_text(), []).append(e)
    assert sum(map(len, found.values())) == len(circles)
    return found


def test_image_cnn_picture_is_about_square_with_the_same_nodes(workdir):
    # before: 1441 x 3371 pixels (13.1 x 30.6 in), two slivers of 32 and 30 rows at 7 pt
    graphs = graphs_of("image_cnn.yaml")
    assert (len(graphs[0].nodes), len(graphs[1].nodes)) == (69, 51)
    width, height = Image.open(to_png(graphs, workdir / "g.png")).size
    assert 0.6 <= height / width <= 1.25, (width, height)
    assert max(width, height) <= 2600, (width, height)


@pytest.mark.parametrize("source", ["image_cnn.yaml", "pulse_cnn.yaml", "lecture_cnn.yaml",
                                    LECTURE])
def test_every_label_is_at_least_9_points_at_the_saved_dpi(source, drawn, workdir):
    fig, renderer = drawn(source)
    texts = [t for ax in fig.axes for t in ax.texts]
    assert len(texts) >= sum(len(g.nodes) for g in graphs_of(source)) + 2   # + the two titles
    assert min(t.get_fontsize() for t in texts) >= 9
    # a 9 pt line is 9/72 in: at 110 dpi, at least 12 pixels from cap to baseline and beyond
    one_line = [t for t in texts if "\n" not in t.get_text()]
    assert min(t.get_window_extent(renderer).height for t in one_line) >= 9 / 72 * DPI * 0.9
    # and the PNG is saved at that dpi: the picture is not shrunk below its figure's inches
    width, height = Image.open(to_png(graphs_of(source), workdir / "g.png")).size
    assert abs(width - fig.get_size_inches()[0] * DPI) <= 1
    assert abs(height - fig.get_size_inches()[1] * DPI) <= 1


@pytest.mark.parametrize("source", ["image_cnn.yaml", "pulse_cnn.yaml", "lecture_cnn.yaml",
                                    LECTURE, chain(60)])
def test_no_two_boxes_overlap_and_every_label_fits_in_its_box(source, drawn):
    fig, renderer = drawn(source)
    extents = boxes(fig, renderer)
    assert len(extents) >= sum(len(g.nodes) for g in graphs_of(source))
    for a, b in combinations(extents, 2):
        assert not a.overlaps(b), (a, b)
    inside = 0
    for t in (t for ax in fig.axes for t in ax.texts):
        e = t.get_window_extent(renderer)
        holders = [b for b in extents if b.contains(*e.get_points().mean(axis=0))]
        if holders:   # a label: within its box; a title sits in no box
            (box,) = holders
            assert box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1, (
                t.get_text(), e, box)
            inside += 1
    assert inside == len(extents)


@pytest.mark.parametrize("depth", [20, 60, 150])
def test_a_longer_network_makes_a_bigger_picture_not_a_thinner_one(depth, drawn):
    # one column per graph would be 0.8 in wide and 0.8 in taller per sin
    fig, _ = drawn(chain(depth))
    width, height = fig.get_size_inches()
    assert 0.45 <= height / width <= 1.6, (depth, width, height)


def test_tall_graphs_wrap_into_columns_joined_by_pairs_of_lettered_connectors(drawn):
    fig, renderer = drawn("image_cnn.yaml")
    pairs = connectors(fig, renderer)
    assert pairs and {len(p) for p in pairs.values()} == {2}, pairs
    assert all(name.isalpha() and name.isupper() for name in pairs)
    # each pair: one below a column, its twin above the next column to the right, higher up
    for below, above in (sorted(pair, key=lambda e: e.y0) for pair in pairs.values()):
        assert above.y0 > below.y0 + fig.get_size_inches()[1] * DPI / 2
        assert above.x0 > below.x1


@pytest.mark.parametrize("source", [LECTURE, chain(8)])
def test_a_short_graph_stays_one_column_without_connectors(source, drawn):
    fig, renderer = drawn(source)
    assert connectors(fig, renderer) == {}
