"""Pictures of the two graphs: the forward graph a spec or expression compiles to, and the
backward graph reverse mode walks ("a whole extra new graph", as the lecture says of TensorFlow).

Forward nodes are the program's inputs and equations, labelled with op and
shape. Backward nodes are the VJP applications, one per equation that lies on
a path from a differentiated input to the output, labelled with the local
derivative they multiply the upstream gradient by; edges carry adjoints.
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
    return "(" + ", ".join("N" if n is None else str(n) for n in s) + ")"


def _vname(prog: Program, v: Var) -> str:
    return v.name or f"v{v.id}"


def forward_graph(prog: Program, output: str) -> Graph:
    g = Graph("forward graph")
    for name, v in prog.inputs.items():
        g.nodes[f"v{v.id}"] = f"{name}\n{_shape(v.shape)}"
        g.kinds[f"v{v.id}"] = "param" if name.startswith("layers.") else "input"
    stop = prog.outputs[output].id
    for e in prog.eqns:
        nid = f"v{e.out.id}"
        g.nodes[nid] = f"{e.prim.name}\n{_shape(e.out.shape)}"
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
    g.nodes["seed"] = f"ȳ = 1\n{_shape(prog.outputs[output].shape)}"
    g.kinds["seed"] = "output"
    source = {stop: "seed"}  # var id -> backward node that produced its adjoint
    for e in reversed(eqns):
        if e.out.id not in needed or e.out.id not in source:
            continue
        nid = f"b{e.out.id}"
        g.nodes[nid] = f"vjp {e.prim.name}\n× {e.prim.local}"
        g.kinds[nid] = "op"
        g.edges.append((source[e.out.id], nid))
        for a in e.inputs:
            if isinstance(a, Var) and a.id in live:
                if a.id in source and source[a.id] != nid:
                    acc = f"acc{a.id}"  # a second contribution: an accumulation node
                    if acc not in g.nodes:
                        g.nodes[acc] = f"+\n{_shape(a.shape)}"
                        g.kinds[acc] = "op"
                        g.edges.append((source[a.id], acc))
                    g.edges.append((nid, acc))
                    source[a.id] = acc
                else:
                    source[a.id] = nid
    for name in wrt:
        v = prog.inputs[name]
        if v.id in source:
            nid = f"d{v.id}"
            g.nodes[nid] = f"∂L/∂{name}\n{_shape(v.shape)}"
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


def _layers(g: Graph) -> dict[str, int]:
    """Depth of each node (longest path from a source); edges are in topological order."""
    depth = {n: 0 for n in g.nodes}
    changed = True
    while changed:  # a handful of sweeps: graphs here are small DAGs
        changed = False
        for a, b in g.edges:
            if depth[b] < depth[a] + 1:
                depth[b], changed = depth[a] + 1, True
    return depth


def to_png(graphs: list[Graph], out: Path) -> Path:
    from .plots import pyplot, save

    plt = pyplot()

    colors = {"input": "#cfe8fc", "param": "#fff2b3", "op": "#ffffff", "output": "#fcd5dc"}
    layouts = []
    for g in graphs:
        depth = _layers(g)
        rows: dict[int, list[str]] = {}
        for n in g.nodes:
            rows.setdefault(depth[n], []).append(n)
        pos = {n: (i - (len(ns) - 1) / 2, -d) for d, ns in rows.items() for i, n in enumerate(ns)}
        layouts.append((g, pos, max(len(ns) for ns in rows.values()), len(rows)))
    width = sum(max(3.0, 2.0 * w) for _, _, w, _ in layouts)
    height = max(3.0, 0.85 * max(h for *_, h in layouts))
    fig, axes = plt.subplots(1, len(graphs), figsize=(width, height), squeeze=False)
    for ax, (g, pos, w, h) in zip(axes[0], layouts):
        for a, b in g.edges:
            ax.annotate("", xy=pos[b], xytext=pos[a],
                        arrowprops=dict(arrowstyle="->", color="#555555", lw=0.8,
                                        shrinkA=12, shrinkB=12))
        for n, label in g.nodes.items():
            ax.text(*pos[n], label, ha="center", va="center", fontsize=7,
                    bbox=dict(boxstyle="round,pad=0.3", fc=colors[g.kinds[n]], ec="#333333", lw=0.6))
        ax.set_xlim(-w / 2 - 0.5, w / 2 + 0.5)
        ax.set_ylim(-h + 0.5, 0.5)
        ax.set_title(g.title)
        ax.axis("off")
    fig.tight_layout()
    return save(fig, out)
