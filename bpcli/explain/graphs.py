"""Pictures of the two graphs: the forward graph a spec or expression compiles to, and the
backward graph reverse mode walks ("a whole extra new graph", as the lecture says of TensorFlow).

Forward nodes are the program's inputs and equations, labelled with op and
shape (none for a scalar). Backward nodes are the VJP applications, one per
equation that lies on a path from a differentiated input to the output,
labelled with the local derivative they multiply the upstream gradient ḡ by
(the terms of the primitive's notation); edges carry adjoints. Where a value
feeds several equations, a ``+`` node adds their contributions into its
adjoint, labelled with whose adjoint it is and how many terms it adds.

The picture is drawn in layers (Sugiyama's method): each node in the row of its
longest path from a source, a source just above its first consumer, an edge
that spans rows bent through a waypoint in each row it passes (so it never
crosses a box), and each row ordered by its neighbours' mean position to
uncross edges. A graph too tall to read at its own size is cut between rows
into columns side by side, where the fewest edges cross; each cut edge ends at
a lettered circle and goes on from its twin at the top of the next column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import Program
from ..engine.program import Var, depends_on


@dataclass
class Graph:
    title: str
    nodes: dict[str, str] = field(default_factory=dict)       # id -> label
    kinds: dict[str, str] = field(default_factory=dict)       # id -> input | op | param | output
    edges: list[tuple[str, str]] = field(default_factory=list)


def _shape(s) -> str:
    """``\n(N, 1, 64)`` below a label; nothing for a scalar."""
    return "\n(" + ", ".join("N" if n is None else str(n) for n in s) + ")" if s else ""


def _vname(prog: Program, v: Var) -> str:
    return v.name or f"v{v.id}"


def _local(e) -> str:
    """The adjoint terms of the equation's notation, with ḡ upstream, x or a, b the inputs and
    y the output: what this node multiplies the upstream gradient by."""
    terms = e.prim.notation.terms
    inputs = ["x"] if len(terms) == 1 else ["a", "b", "c"][:len(terms)]
    return ", ".join(t.format(*inputs, d="ḡ", y="y", **e.params) for t, a in zip(terms, e.inputs)
                     if isinstance(a, Var))


def forward_graph(prog: Program, output: str) -> Graph:
    g = Graph("forward graph")
    for name, v in prog.inputs.items():
        g.nodes[f"v{v.id}"] = f"{name}{_shape(v.shape)}"
        g.kinds[f"v{v.id}"] = "param" if name.startswith("layers.") else "input"
    stop = prog.outputs[output].id
    for e in prog.eqns:
        nid = f"v{e.out.id}"
        g.nodes[nid] = f"{e.prim.name}{_shape(e.out.shape)}"
        g.kinds[nid] = "output" if e.out.id == stop else "op"
        g.edges += [(f"v{a.id}", nid) for a in e.inputs if isinstance(a, Var)]
        if e.out.id == stop:
            break
    used = {a for edge in g.edges for a in edge} | {f"v{stop}"}
    for nid in [n for n in g.nodes if n not in used]:  # e.g. labels y when drawing up to output
        del g.nodes[nid], g.kinds[nid]
    return g


def backward_graph(prog: Program, output: str, wrt) -> Graph:
    """VJP nodes from the output back to each input in ``wrt``."""
    g = Graph("backward graph")
    live = depends_on(prog, wrt)
    stop = prog.outputs[output].id
    eqns = [e for e in prog.eqns if e.out.id <= stop]
    # which equations receive an adjoint: walk back from the output
    needed = {stop}
    for e in reversed(eqns):
        if e.out.id in needed:
            needed |= {a.id for a in e.inputs if isinstance(a, Var) and a.id in live}
    g.nodes["seed"] = f"ȳ = 1{_shape(prog.outputs[output].shape)}"
    g.kinds["seed"] = "output"
    source = {stop: "seed"}  # var id -> backward node that produced its adjoint
    producer = {e.out.id: e.prim.name for e in eqns}
    names = {v.id: n for n, v in prog.inputs.items()}
    terms: dict[str, int] = {}
    for e in reversed(eqns):
        if e.out.id not in needed or e.out.id not in source:
            continue
        nid = f"b{e.out.id}"
        g.nodes[nid] = f"vjp {e.prim.name}\n{_local(e)}"
        g.kinds[nid] = "op"
        g.edges.append((source[e.out.id], nid))
        for a in e.inputs:
            if isinstance(a, Var) and a.id in live:
                if a.id in source and source[a.id] != nid:
                    acc = f"acc{a.id}"  # a second contribution: an accumulation node
                    if acc not in g.nodes:
                        g.kinds[acc] = "op"
                        g.edges.append((source[a.id], acc))
                        terms[acc] = 1
                    terms[acc] += 1
                    whose = names.get(a.id) or f"{producer[a.id]}'s output"
                    g.nodes[acc] = f"+ {terms[acc]} terms\nadjoint of {whose}{_shape(a.shape)}"
                    g.edges.append((nid, acc))
                    source[a.id] = acc
                else:
                    source[a.id] = nid
    for name in wrt:
        v = prog.inputs[name]
        if v.id in source:
            nid = f"d{v.id}"
            g.nodes[nid] = f"∂L/∂{name}{_shape(v.shape)}"
            g.kinds[nid] = "param"
            g.edges.append((source[v.id], nid))
    return g


def to_dot(graphs: list[Graph]) -> str:
    """Graphviz text: one cluster per graph."""
    colors = {"input": "lightblue", "param": "khaki", "op": "white", "output": "lightpink"}
    lines = ["digraph bpcli {", "  rankdir=TB;", '  node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", fontsize=10];']
    for k, g in enumerate(graphs):
        lines += [f"  subgraph cluster_{k} {{", f'    label="{g.title}";']
        for nid, label in g.nodes.items():
            text = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'    g{k}_{nid} [label="{text}", fillcolor={colors[g.kinds[nid]]}];')
        lines += [f"    g{k}_{a} -> g{k}_{b};" for a, b in g.edges]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _rows(g: Graph) -> dict[str, int]:
    """Row of each node: a sink's is its longest path from a source; every other node sits
    just above its first consumer, so a weight is drawn beside the layer that reads it."""
    row = {n: 0 for n in g.nodes}
    changed = True
    while changed:  # a handful of sweeps: graphs here are small DAGs
        changed = False
        for a, b in g.edges:
            if row[b] < row[a] + 1:
                row[b], changed = row[a] + 1, True
    for n in sorted(g.nodes, key=row.get, reverse=True):  # consumers first
        below = [row[b] for a, b in g.edges if a == n]
        if below:
            row[n] = min(below) - 1
    return row


# Sizes in inches for node labels in DejaVu Sans at _FONT points (the saved picture is 110 dpi, so
# 9 pt is 14 pixels): a character (the widest label lines average 0.072), a line, a box's
# margins, the gap between boxes in a row and between rows.
_FONT, _TITLE = 9, 12
_CHAR, _LINE, _PAD_W, _PAD_H = 0.075, 0.2, 0.2, 0.14
_GAP, _ROW_GAP = 0.3, 0.5
_TALL = 12.0       # a graph taller than this is wrapped into columns
_ASPECT = 0.8      # ... as many as bring the picture's height / width nearest this
_COLUMN_GAP, _GRAPH_GAP = 0.5, 0.9    # between two columns of a graph, between two graphs
_MARGIN, _HEAD = 0.25, 0.55          # around the picture, the titles' band
_LINK, _LINK_R = 0.35, 0.12   # a connector's distance beyond its column's last (first) row, radius


def _box(label: str) -> tuple[float, float]:
    lines = label.split("\n")
    return max(len(t) for t in lines) * _CHAR + _PAD_W, len(lines) * _LINE + _PAD_H


def _layout(g: Graph):
    """Positions (inches) of nodes and waypoints, and each edge as a polyline of point ids. A row
    is as tall as its tallest box, with _ROW_GAP between rows."""
    row = _rows(g)
    rows: dict[int, list] = {}
    for n in g.nodes:
        rows.setdefault(row[n], []).append(n)
    paths, up, down = [], {}, {}
    for k, (a, b) in enumerate(g.edges):
        path = [a] + [("via", k, r) for r in range(row[a] + 1, row[b])] + [b]
        for r, w in zip(range(row[a] + 1, row[b]), path[1:-1]):
            rows[r].append(w)
        for p, q in zip(path, path[1:]):
            down.setdefault(p, []).append(q)
            up.setdefault(q, []).append(p)
        paths.append(path)
    order = sorted(rows)
    for _ in range(6):  # barycentre sweeps, down then up: each point near its neighbours' mean
        for sweep, links in ((order[1:], up), (order[-2::-1], down)):
            for r in sweep:
                index = {p: i for rr in (r - 1, r + 1) for i, p in enumerate(rows.get(rr, []))}
                key = {p: sum(index[q] for q in links[p]) / len(links[p]) if links.get(p) else i
                       for i, p in enumerate(rows[r])}
                rows[r].sort(key=key.__getitem__)
    size = {p: _box(g.nodes[p]) if p in g.nodes else (0.05, 0.0) for r in rows.values() for p in r}
    pos, y, above = {}, 0.0, None
    for r in order:
        points = rows[r]
        tall = max(size[p][1] for p in points)
        if above is not None:
            y -= above / 2 + _ROW_GAP + tall / 2
        above = tall
        width = sum(size[p][0] for p in points) + _GAP * (len(points) - 1)
        x = -width / 2
        for p in points:
            pos[p] = (x + size[p][0] / 2, y)
            x += size[p][0] + _GAP
    return pos, size, paths


@dataclass
class _Column:
    """Rows ``first``..``last`` (indices into the graph's rows, top down) drawn as one column, in
    the layout's inches: its top and bottom edges (connectors included), its left and right."""
    first: int
    last: int
    top: float
    bottom: float
    left: float
    right: float
    below: dict = field(default_factory=dict)   # (path, segment) -> x of its connector below
    above: dict = field(default_factory=dict)   # (path, segment) -> x of its connector above


def _row_ys(pos, size) -> tuple[list[float], list[float]]:
    """The layout's distinct row centres, top down, and each row's height."""
    ys = sorted({y for _, y in pos.values()}, reverse=True)
    tall = {y: 0.0 for y in ys}
    for p, (_, y) in pos.items():
        tall[y] = max(tall[y], size[p][1])
    return ys, [tall[y] for y in ys]


def _columns(pos, size, paths, n: int) -> list[_Column]:
    """Cut the graph between rows into ``n`` columns of about equal height (fewer if it has
    fewer rows). Each cut is, among those leaving the column within 12% of its share of the
    height still to place, the one the fewest edges cross (each crossing is drawn as a pair of
    connectors), then the one nearest that share."""
    ys, tall = _row_ys(pos, size)
    at = {y: i for i, y in enumerate(ys)}
    crossing = [0] * len(ys)   # edge segments from row i down to row i + 1
    for path in paths:
        for p in path[:-1]:
            crossing[at[pos[p][1]]] += 1
    top = [y + h / 2 for y, h in zip(ys, tall)]
    bottom = [y - h / 2 for y, h in zip(ys, tall)]
    spans, s = [], 0
    for k in range(n - 1, 0, -1):   # k columns still to place after this one
        if len(ys) - s <= k:
            break
        share = (top[s] - bottom[-1]) / (k + 1)
        ends = range(s, len(ys) - k)
        near = [e for e in ends if abs(top[s] - bottom[e] - share) <= 0.12 * share] or [
            min(ends, key=lambda e: abs(top[s] - bottom[e] - share))]
        e = min(near, key=lambda e: (crossing[e], abs(top[s] - bottom[e] - share)))
        spans.append((s, e))
        s = e + 1
    spans.append((s, len(ys) - 1))
    columns = [_Column(s, e, top[s] + (_LINK + _LINK_R if k else 0.0),
                       bottom[e] - (_LINK + _LINK_R if k < len(spans) - 1 else 0.0), 0.0, 0.0)
               for k, (s, e) in enumerate(spans)]
    # connectors: where several share a box, side by side
    for upper, lower in zip(columns, columns[1:]):
        cut = [(i, j) for i, path in enumerate(paths) for j, p in enumerate(path[:-1])
               if at[pos[p][1]] == upper.last]
        for links, end, other in ((upper.below, 0, 1), (lower.above, 1, 0)):
            ends: dict = {}
            for i, j in sorted(cut, key=lambda ij: pos[paths[ij[0]][ij[1] + other]][0]):
                ends.setdefault(paths[i][j + end], []).append((i, j))
            for p, group in ends.items():
                for m, ij in enumerate(group):
                    links[ij] = pos[p][0] + (m - (len(group) - 1) / 2) * (2 * _LINK_R + 0.08)
    for c in columns:
        xs = [pos[p][0] + side * size[p][0] / 2 for p, (_, y) in pos.items()
              if c.first <= at[y] <= c.last for side in (-1, 1)]
        xs += [x + side * _LINK_R for x in (*c.below.values(), *c.above.values())
               for side in (-1, 1)]
        c.left, c.right = min(xs), max(xs)
    return columns


def _arrange(layouts) -> tuple[list[list[_Column]], float, float]:
    """Columns for each graph's layout and the picture's size (inches): one column each while
    every graph is at most _TALL inches tall; otherwise, for a column height of the tallest
    graph's over n, as many columns per graph as reach it, with the n that brings the
    picture's height / width nearest _ASPECT. A bigger network makes a bigger picture, not a
    thinner one."""
    heights = [max(y + size[p][1] / 2 for p, (_, y) in pos.items())
               - min(y - size[p][1] / 2 for p, (_, y) in pos.items()) for pos, size, _ in layouts]

    def picture(n):
        target = max(heights) / n
        # a graph up to 15% taller than target keeps the fewer columns: no column of two rows
        cols = [_columns(*layout, max(1, math.ceil(h / target - 0.15)))
                for layout, h in zip(layouts, heights)]
        width = (sum(c.right - c.left for cs in cols for c in cs) + 2 * _MARGIN
                 + _COLUMN_GAP * sum(len(cs) - 1 for cs in cols) + _GRAPH_GAP * (len(cols) - 1))
        height = max(c.top - c.bottom for cs in cols for c in cs) + _HEAD + 2 * _MARGIN
        return cols, width, height

    if max(heights) <= _TALL:
        return picture(1)
    return min((picture(n) for n in range(1, 13)),
               key=lambda o: abs(math.log(o[2] / o[1] / _ASPECT)))


def _edge_end(start, end, half_w, half_h):
    """Where the segment start -> end meets the box around ``end``."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    t = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return end[0] - t * dx, end[1] - t * dy


def _letters():
    """A, B, ..., Z, AA, AB, ...: the names of the connectors."""
    from itertools import count, product
    from string import ascii_uppercase

    for n in count(1):
        for letters in product(ascii_uppercase, repeat=n):
            yield "".join(letters)


_COLORS = {"input": "#cfe8fc", "param": "#fff2b3", "op": "#ffffff", "output": "#fcd5dc"}
_EDGE = {"color": "#555555", "lw": 0.9}


def graphs_figure(graphs: list[Graph]):
    """The graphs side by side, drawn to scale on a single Axes whose units are inches: labels at
    _FONT points, each box the size :func:`_layout` made room for. A graph taller than _TALL
    inches is cut between rows into columns read left to right; an edge cut in two ends at a
    lettered circle below its column and goes on from the same letter above the next."""
    from .plots import pyplot

    layouts = [_layout(g) for g in graphs]
    placed, width, height = _arrange(layouts)
    fig = pyplot().figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-height, 0)
    ax.axis("off")
    left, letters = _MARGIN, _letters()   # connectors named across all graphs: no two "A"s
    for g, layout, columns in zip(graphs, layouts, placed):
        left = _draw(ax, g, layout, columns, left, letters) + _GRAPH_GAP
    return fig


def _draw(ax, g: Graph, layout, columns: list[_Column], left: float, letters) -> float:
    """Draw ``g`` in its columns from ``left`` (picture inches) with its title above; return
    where its last column ends."""
    from matplotlib.patches import Circle, FancyBboxPatch

    pos, size, paths = layout
    ys, _ = _row_ys(pos, size)
    column_of = {y: k for k, c in enumerate(columns) for y in ys[c.first:c.last + 1]}
    shifts, x = [], left
    for c in columns:   # layout inches -> picture inches, column by column
        shifts.append((x - c.left, -_MARGIN - _HEAD - c.top))
        x += c.right - c.left + _COLUMN_GAP
    right = x - _COLUMN_GAP
    ax.text((left + right) / 2, -_MARGIN - _HEAD / 2, g.title, ha="center", va="center",
            fontsize=_TITLE)
    names = {ij: next(letters) for c in columns for ij in sorted(c.below, key=c.below.get)}

    def at(p, lx=None, ly=None):
        """Picture inches of point ``p``, or of (lx, ly), layout inches in p's column."""
        (px, py), (sx, sy) = pos[p], shifts[column_of[pos[p][1]]]
        return (px if lx is None else lx) + sx, (py if ly is None else ly) + sy

    for i, path in enumerate(paths):
        stroke = [at(path[0])]
        for j, (p, q) in enumerate(zip(path, path[1:])):
            k, kq = column_of[pos[p][1]], column_of[pos[q][1]]
            if k != kq:   # the edge leaves this column: a connector below it, its twin above
                ends = (at(p, columns[k].below[i, j], columns[k].bottom + _LINK_R),
                        at(q, columns[kq].above[i, j], columns[kq].top - _LINK_R))
                stroke.append(ends[0])
                ax.plot(*zip(*stroke), **_EDGE, zorder=1, solid_capstyle="round")
                for cx, cy in ends:
                    ax.add_patch(Circle((cx, cy), _LINK_R, fc="white", ec=_EDGE["color"],
                                        lw=_EDGE["lw"], zorder=3))
                    ax.text(cx, cy, names[i, j], ha="center", va="center", fontsize=_FONT,
                            zorder=4)
                stroke = [ends[1]]
            stroke.append(at(q))
        w, h = size[path[-1]]
        tip = _edge_end(stroke[-2], stroke[-1], w / 2 + 0.02, h / 2 + 0.02)
        if len(stroke) > 2:
            ax.plot(*zip(*stroke[:-1]), **_EDGE, zorder=1, solid_capstyle="round")
        ax.annotate("", xy=tip, xytext=stroke[-2], zorder=1,
                    arrowprops={"arrowstyle": "->", "shrinkA": 0, "shrinkB": 0, **_EDGE})
    for n, label in g.nodes.items():
        (cx, cy), (w, h) = at(n), size[n]
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, zorder=3, lw=0.7,
                                    boxstyle="round,pad=0,rounding_size=0.06",
                                    fc=_COLORS[g.kinds[n]], ec="#333333"))
        ax.text(cx, cy, label, ha="center", va="center", fontsize=_FONT, zorder=4)
    return right


def to_png(graphs: list[Graph], out: Path) -> Path:
    """Save :func:`graphs_figure` at the 110 dpi of every bpcli picture: a 9 pt label is 14 pixels
    tall there, to be read at the picture's own size."""
    from .plots import save

    return save(graphs_figure(graphs), out)
