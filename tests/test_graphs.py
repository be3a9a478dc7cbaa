"""Pictures of the forward and backward graphs: every label says something, no edge crosses a box."""

from __future__ import annotations

import numpy as np
import pytest

import bpcli
from bpcli.engine import api as ad
from bpcli.engine.expr import parse
from bpcli.explain.graphs import _box, _layout, backward_graph, forward_graph

LECTURE = "ln(x1) + x1*x2 - sin(x2)"


def test_accumulation_nodes_say_whose_adjoint_they_add():
    # x1 feeds ln and ×, x2 feeds × and sin: each adjoint is a sum of two terms
    prog = parse(LECTURE)
    g = backward_graph(prog, "y", list(prog.inputs))
    sums = sorted(label for n, label in g.nodes.items() if n.startswith("acc"))
    assert sums == ["+ 2 terms\nadjoint of x1", "+ 2 terms\nadjoint of x2"]


def test_accumulation_of_an_intermediate_value_names_its_producer():
    # v = x·x feeds sin and cos: its adjoint adds two terms before the mul's VJP
    def f(x):
        v = x * x
        return ad.sin(v) + ad.cos(v)
    g = backward_graph(ad.make_program(f, 0.5), "y", ["x0"])
    assert [label for n, label in g.nodes.items() if n.startswith("acc")] == [
        "+ 2 terms\nadjoint of mul's output"]


def test_scalar_nodes_have_no_empty_shape_and_arrays_show_theirs():
    prog = parse(LECTURE)
    for g in (forward_graph(prog, "y"), backward_graph(prog, "y", list(prog.inputs))):
        assert not any("()" in label for label in g.nodes.values())
    model = bpcli.build("specs/lecture_cnn.yaml")
    g = forward_graph(model.program, "loss")
    assert "conv\n(N, 1, 64)" in g.nodes.values() and "mean" in g.nodes.values()


def test_vjp_nodes_show_the_local_derivative_times_the_upstream_gradient():
    prog = parse(LECTURE)
    labels = set(backward_graph(prog, "y", list(prog.inputs)).nodes.values())
    assert {"vjp log\nḡ / x", "vjp sin\nḡ × cos x", "vjp mul\nḡ × b, ḡ × a", "vjp sub\nḡ, −ḡ"} <= labels


def _crosses(p, q, centre, size):
    """Does the segment p -> q pass through the box (sampled finely)?"""
    (cx, cy), (w, h) = centre, size
    t = np.linspace(0.0, 1.0, 400)[:, None]
    pts = np.asarray(p) + t * (np.asarray(q) - np.asarray(p))
    return bool(np.any((np.abs(pts[:, 0] - cx) < w / 2) & (np.abs(pts[:, 1] - cy) < h / 2)))


@pytest.mark.parametrize("source", ["specs/lecture_cnn.yaml", "specs/pulse_cnn.yaml", LECTURE,
                                    "sin(x1*x1) + cos(x1*x1) * exp(x2) - x2"])
def test_no_edge_crosses_a_box_it_does_not_join(source):
    if source.endswith(".yaml"):
        model = bpcli.build(source)
        prog, output, wrt = model.program, "loss", list(model.params)
    else:
        prog, output, wrt = parse(source), "y", None
        wrt = list(prog.inputs)
    for g in (forward_graph(prog, output), backward_graph(prog, output, wrt)):
        pos, size, paths = _layout(g)
        assert all(size[n] == _box(g.nodes[n]) for n in g.nodes)
        for path in paths:
            for p, q in zip(path, path[1:]):
                for n in g.nodes:
                    if n not in (path[0], path[-1]):
                        assert not _crosses(pos[p], pos[q], pos[n], size[n]), (g.title, path, n)
        # each edge flows downwards one row per segment
        for path in paths:
            ys = [pos[p][1] for p in path]
            assert all(a > b for a, b in zip(ys, ys[1:]))
