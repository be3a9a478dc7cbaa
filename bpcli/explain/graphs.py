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
uncross edges.
"""

from __future__ import annotations

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


_CHAR, _LINE, _GAP, _ROW = 0.068, 0.16, 0.3, 0.95  # inches: a character, a line, between boxes, rows


def _box(label: str) -> tuple[float, float]:
    lines = label.split("\n")
    return max(len(t) for t in lines) * _CHAR + 0.2, len(lines) * _LINE + 0.12


def _layout(g: Graph):
    """Positions (inches) of nodes and waypoints, and each edge as a polyline of point ids."""
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
    pos = {}
    for r, points in rows.items():
        width = sum(size[p][0] for p in points) + _GAP * (len(points) - 1)
        x = -width / 2
        for p in points:
            pos[p] = (x + size[p][0] / 2, -r * _ROW)
            x += size[p][0] + _GAP
    return pos, size, paths


def _edge_end(start, end, half_w, half_h):
    """Where the segment start -> end meets the box around ``end``."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    t = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return end[0] - t * dx, end[1] - t * dy


def to_png(graphs: list[Graph], out: Path) -> Path:
    from .plots import pyplot, save

    plt = pyplot()

    colors = {"input": "#cfe8fc", "param": "#fff2b3", "op": "#ffffff", "output": "#fcd5dc"}
    layouts = [_layout(g) for g in graphs]
    spans = []
    for pos, size, _ in layouts:
        xs = [x + s * size[p][0] / 2 for p, (x, _) in pos.items() for s in (-1, 1)]
        spans.append((min(xs) - 0.2, max(xs) + 0.2, min(y for _, y in pos.values()) - 0.4))
    width = sum(hi - lo for lo, hi, _ in spans)
    height = max(-bottom for *_, bottom in spans) + 0.8
    fig, axes = plt.subplots(1, len(graphs), figsize=(max(3.0, width), max(2.5, height)),
                             squeeze=False, gridspec_kw={"width_ratios": [hi - lo for lo, hi, _ in spans]})
    for ax, g, (pos, size, paths), (lo, hi, bottom) in zip(axes[0], graphs, layouts, spans):
        for path in paths:
            points = [pos[p] for p in path]
            ax.plot([x for x, _ in points[:-1]], [y for _, y in points[:-1]], color="#555555",
                    lw=0.8, zorder=1, solid_capstyle="round")
            w, h = size[path[-1]]
            tip = _edge_end(points[-2], points[-1], w / 2 + 0.03, h / 2 + 0.03)
            ax.annotate("", xy=tip, xytext=points[-2], zorder=1,
                        arrowprops=dict(arrowstyle="->", color="#555555", lw=0.8,
                                        shrinkA=0, shrinkB=0))
        for n, label in g.nodes.items():
            ax.text(*pos[n], label, ha="center", va="center", fontsize=7, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.3", fc=colors[g.kinds[n]], ec="#333333", lw=0.6))
        ax.set_xlim(lo, hi)
        ax.set_ylim(bottom, 0.5)
        ax.set_title(g.title)
        ax.axis("off")
    fig.tight_layout()
    return save(fig, out)
