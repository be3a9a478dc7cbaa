"""How a gradcheck report reads: rich tables for people, a PNG for the step-size sweep."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

PASS, FAIL = "[green]pass[/]", "[red]FAIL[/]"


def _ok(flag: bool) -> str:
    return PASS if flag else FAIL


def gradcheck_tables(report: dict, title: str) -> list:
    """Everything a person needs from a report, most important first."""
    out = []
    if not report["parameters"]:  # a network of activations and pooling: its layers speak
        out.append("the network has no parameters: its layers' input gradients are checked")
    elif report["mode"] == "exact":
        t = Table(title=f"{title}: every entry, reverse mode vs central differences "
                        f"(float64, {report['n_samples']} samples)")
        longest = max(len(r["name"]) for r in report["parameters"])
        t.add_column("parameter", no_wrap=True, min_width=longest)
        t.add_column("shape", no_wrap=True)
        for col in ("checked", "abs err", "rel err", "kinks", "result"):
            t.add_column(col, justify="right")
        for r in report["parameters"]:
            t.add_row(r["name"], "×".join(map(str, r["shape"])), str(r["checked"]),
                      f"{r['max_abs_err']:.2e}", f"{r['max_rel_err']:.2e}", str(r["kinks"]),
                      _ok(r["passed"]))
        out.append(t)
    if not report["directions"]:
        return out + _layer_tables(report)
    t = Table(title=f"{len(report['directions'])} random directions v (seed {report['seed']}): "
                    "⟨v, ∇L⟩ by reverse mode against dL·v by forward mode and central differences")
    for col in ("v", "⟨v, ∇L⟩", "|rev − fwd|", "|rev − num|", "result"):
        t.add_column(col, justify="right")
    for d in report["directions"]:
        t.add_row(str(d["direction"]), f"{d['reverse']:.10g}", f"{d['reverse_vs_forward']:.1e}",
                  f"{d['reverse_vs_numeric']:.1e}",
                  _ok(d["passed"]) + (f" (kink: {d['kink']})" if d["kink"] else ""))
    out.append(t)
    return out + _layer_tables(report)


def _layer_tables(report: dict) -> list:
    out = []
    if report.get("layers"):
        t = Table(title="each layer on its own: its backward against its forward, on the recorded input")
        t.add_column("layer", no_wrap=True)
        for col in ("rel err", "kinks", "result", "worst"):
            t.add_column(col, justify="right" if col != "worst" else "left")
        for r in report["layers"]:
            w = r["worst"]
            worst = (f"{w['tensor']}{w['index']}: analytic {w['analytic']:.6g}, numeric "
                     f"{w['numeric']:.6g}") if w else ""
            t.add_row(r["layer"], f"{r['max_rel_err']:.1e}", str(r["kinks"]), _ok(r["passed"]), worst)
        out.append(t)
    if report.get("linear"):
        t = Table(title="linear layers: adjoint dot-test ⟨Ax, y⟩ = ⟨x, Aᵀy⟩; a layer against its explicit matrix (conv: Toeplitz)")
        for col in ("layer", "test", "error", "result"):
            t.add_column(col, justify="left" if col in ("layer", "test") else "right")
        for r in report["linear"]:
            err = r["rel_err"] if r["test"] == "adjoint" else r["max_abs_err"]
            test = r["test"] if r["test"] == "adjoint" else f"{r['test']} {'×'.join(map(str, r['matrix']))}"
            t.add_row(r["layer"], test, f"{err:.1e}", _ok(r["passed"]))
        out.append(t)
    if "cost" in report:
        c = report["cost"]
        t = Table(title=f"the full gradient of {c['parameters']} parameters, three ways: "
                        "estimated times (one pass of each timed here, times the passes it takes)")
        for col in ("method", "work", "est. time", "vs reverse"):
            t.add_column(col, justify="left" if col == "method" else "right")
        rev = c["reverse_mode"]["seconds"] or 1e-12
        rows = [("numerical", f"{c['numerical']['loss_evaluations']} loss evaluations",
                 c["numerical"]["seconds"]),
                ("forward mode", f"{c['forward_mode']['passes']} tangent passes", c["forward_mode"]["seconds"]),
                ("reverse mode", "1 forward + 1 backward", rev)]
        for name, work, sec in rows:
            t.add_row(name, work, _seconds(sec), f"{sec / rev:.0f}×")
        out.append(t)
    return out


def _seconds(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.2f} s"


def summary_line(report: dict) -> str:
    s = report["structure"]
    flags = (f"zero upstream → zero gradient: {'yes' if s['zero_upstream_gives_zero'] else 'NO'}; "
             f"linear in upstream: {'yes' if s['linear_in_upstream'] else 'NO'}; "
             f"repeatable: {'yes' if s['repeatable'] else 'NO'}")
    verdict = "all gradients agree" if report["passed"] else "gradients DISAGREE"
    redrawn = f" (check point redrawn {report['redrawn']}× to avoid ReLU kinks)" if report["redrawn"] else ""
    return f"{flags}\nloss {report['loss']:.6g}{redrawn}; {verdict}"


def sweep_table(sweep: dict) -> Table:
    t = Table(title=f"central-difference error against h (reverse mode: {sweep['reverse']:.12g}); "
                    f"default h ≈ {sweep['h_default']:.1e}")
    for col in ("h", "numeric", "|error|"):
        t.add_column(col, justify="right")
    for r in sweep["rows"]:
        t.add_row(f"{r['h']:.0e}", f"{r['numeric']:.12g}", f"{r['abs_err']:.2e}")
    return t


def sweep_figure(sweep: dict):
    """|central difference − reverse mode| against the step h, both log axes; an error of exactly
    0 (which a log axis cannot show) is a mark on the bottom edge, not a made-up value."""
    import numpy as np

    from .plots import pyplot

    plt = pyplot()
    hs = np.array([r["h"] for r in sweep["rows"]], float)
    errs = np.array([r["abs_err"] for r in sweep["rows"]], float)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.loglog(hs[errs > 0], errs[errs > 0], marker="o", label="|central difference - reverse mode|")
    if (errs == 0).any():
        ax.plot(hs[errs == 0], np.zeros((errs == 0).sum()), ls="none", marker="v", color="C0",
                transform=ax.get_xaxis_transform(), clip_on=False, label="exactly 0")
    ax.set_xscale("log")
    ax.axvline(sweep["h_default"], color="gray", ls="--", label="default h = ε^(1/3)")
    ax.set_xlabel("step h")
    ax.set_ylabel("absolute error")
    ax.set_title("truncation (right) against rounding (left)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


def sweep_png(sweep: dict, out: Path) -> Path:
    """:func:`sweep_figure` written to the PNG ``out``."""
    from .plots import save

    return save(sweep_figure(sweep), out)
