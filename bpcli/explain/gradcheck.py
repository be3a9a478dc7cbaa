"""Gradient checking with the lecture's three witnesses, always in float64.

1. **Reverse mode** (backpropagation): ∇L from one forward and one backward pass.
2. **Forward mode**: the directional derivative dL·v from one forward-tangent pass.
   ⟨v, ∇L⟩ must equal it to rounding, with no step size involved.
3. **Central differences**, the lecture's numerical gradient done carefully:

       dL/dW_i ≈ (L(W_i + h) - L(W_i - h)) / 2h,   h = ε^(1/3) · max(1, |W_i|),

   error O(h²) from truncation plus O(ε/h) from rounding; ε^(1/3) (about 6e-6)
   balances the two. An entry passes when |analytic - numeric| ≤ atol + rtol·max(|a|, |n|).

*Exact* mode checks every parameter entry; *fast* mode checks several random
Gaussian directions (one forward-mode pass and two loss evaluations each).

Where a ReLU/max input lies within h of its tie, the loss has no derivative
there: the entry is reported as non-differentiable (the node named), not as a
failure; a random check point with such entries is redrawn first.

Then, so that a failure names its culprit, every layer of the spec is checked on
its own: its backward against its forward on the recorded input (parameters
and input), the adjoint dot-test ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for conv and dense layers,
and for convolutions the operator against the explicit banded Toeplitz matrix
it stands for. Structural checks and the lecture's cost argument in numbers
close the report.
"""

from __future__ import annotations

import time

import numpy as np

from ..engine import Program, backend, backward, evaluate, forward_tangent
from ..engine.program import Var
from ..nn.layers import LAYERS
from ..nn.model import Model

RTOL, ATOL = 1e-5, 1e-8
DOT_RTOL = 1e-10          # forward mode vs reverse mode, and adjoint dot-tests: rounding only
H_REL = np.finfo(np.float64).eps ** (1 / 3)
EXACT_LIMIT = 2000        # --mode auto: exact up to this many parameters, fast above

def random_batch(model: Model, n: int, seed: int):
    """A small batch that fits the spec's input, with labels as a user would give them (the
    loss's own ``example_labels``); standard normal inputs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *model.spec.data["input"]))
    return X, model.loss_def.example_labels(rng, n, model.output_shape)


def crossed(eqns, env_a, env_b) -> str | None:
    """The first node whose branch differs between two evaluations (a tie crossed), or None;
    each primitive with a kink says which branch it takes (``Primitive.branch``)."""
    for e in eqns:
        branch = e.prim.branch
        if branch is None:
            continue
        args = [[env[a.id] if isinstance(a, Var) else a for a in e.inputs] for env in (env_a, env_b)]
        if not bool((branch(*args[0], **e.params) == branch(*args[1], **e.params)).all()):
            return f"{e.origin} {e.prim.name}"
    return None


def _largest(x) -> float:
    """max |x| as a float, 0 for an empty array, wherever x lives (CuPy's max has no initial)."""
    return float(abs(x).max()) if x.size else 0.0


def _on(ref, a):
    """Host array ``a`` (a random draw) moved to where ``ref`` lives: the check points' draws
    come from host generators on every device, so CPU and GPU check the same directions."""
    return backend.like(np.asarray(a, dtype=np.float64), ref)


def _pass(a, n, scale):
    return abs(a - n) <= ATOL + RTOL * scale


# ---------------------------------------------------------------- the whole network
class _Point:
    """The check point: prepared data, the loss, and evaluation with branch records."""

    def __init__(self, model: Model, X, y):
        self.model, self.X, self.y = model, X, y
        self.values = model.inputs(X, y)
        self.prog = model.program
        self.env = evaluate(self.prog, self.values)
        self.loss = float(self.env[self.prog.outputs["loss"].id])
        self.grads = backward(self.prog, self.env, "loss", list(model.params))

    def loss_env(self):
        env = evaluate(self.prog, self.values)
        return float(env[self.prog.outputs["loss"].id]), env

    def direction(self, rng) -> dict:
        """A random Gaussian direction in parameter space, of unit length."""
        v = {n: _on(w, rng.standard_normal(w.shape)) for n, w in self.model.params.items()}
        norm = np.sqrt(sum(float(np.vdot(d, d)) for d in v.values()))
        return {n: d / norm for n, d in v.items()}

    def along(self, v, h):
        """(loss, env) at W + h v and at W - h v; the parameters are restored afterwards."""
        params = self.model.params
        saved = {n: w.copy() for n, w in params.items()}
        out = []
        for sign in (1, -1):
            for n, w in params.items():
                w[...] = saved[n] + sign * h * v[n]
            out.append(self.loss_env())
        for n, w in params.items():
            w[...] = saved[n]
        return out

    def crossed(self, env_a, env_b) -> str | None:
        return crossed(self.prog.eqns, env_a, env_b)

    def central(self, flat, i, h):
        w0 = flat[i]
        flat[i] = w0 + h
        lp, env_p = self.loss_env()
        flat[i] = w0 - h
        lm, env_m = self.loss_env()
        flat[i] = w0
        return lp, lm, self.crossed(env_p, env_m)


def check_entries(pt: _Point, eps, max_entries, rng):
    """Exact mode: every entry (or a sample of ``max_entries`` per tensor) against central differences."""
    rows = []
    for name, w in pt.model.params.items():
        flat, gflat = w.reshape(-1), pt.grads[name].reshape(-1)
        idx = (np.arange(flat.size) if max_entries is None or flat.size <= max_entries
               else np.sort(rng.choice(flat.size, max_entries, replace=False)))
        worst_abs = worst_rel = 0.0
        worst, ok, kinks = None, True, []
        for i in idx:
            h = eps if eps is not None else H_REL * max(1.0, abs(float(flat[i])))
            lp, lm, node = pt.central(flat, i, h)
            num, ana = (lp - lm) / (2 * h), float(gflat[i])
            err, scale = abs(ana - num), max(abs(ana), abs(num))
            if node is not None:
                kinks.append({"index": _index(i, w.shape), "node": node})
                continue
            ok &= _pass(ana, num, scale)
            if err > worst_abs:
                worst_abs, worst = err, {"index": _index(i, w.shape), "analytic": ana, "numeric": num}
            if scale > ATOL:
                worst_rel = max(worst_rel, err / scale)
        rows.append({"name": name, "shape": list(w.shape), "checked": int(len(idx)),
                     "max_abs_err": worst_abs, "max_rel_err": worst_rel, "passed": bool(ok),
                     "kinks": len(kinks), "kink_entries": kinks[:5], "worst": worst})
    return rows


def check_directions(pt: _Point, n_dirs: int, eps, rng):
    """Fast mode, and reverse vs forward in every mode: random Gaussian directions v."""
    model = pt.model
    rows = []
    for k in range(n_dirs if model.params else 0):  # no parameters: no direction to take
        v = pt.direction(rng)
        reverse = float(sum(np.vdot(pt.grads[n], v[n]) for n in v))
        _, forward = forward_tangent(pt.prog, pt.values, v, "loss")
        forward = float(forward)
        scale_w = max(1.0, max(_largest(w) for w in model.params.values()))
        h = eps if eps is not None else H_REL * scale_w
        (lp, env_p), (lm, env_m) = pt.along(v, h)
        numeric = (lp - lm) / (2 * h)
        node = pt.crossed(env_p, env_m)
        scale = max(abs(reverse), abs(forward))
        fwd_ok = abs(reverse - forward) <= DOT_RTOL * max(scale, 1e-12) + 1e-14
        num_ok = node is not None or _pass(reverse, numeric, max(scale, abs(numeric)))
        rows.append({"direction": k, "reverse": reverse, "forward": forward, "numeric": numeric,
                     "reverse_vs_forward": abs(reverse - forward),
                     "reverse_vs_numeric": abs(reverse - numeric), "kink": node,
                     "passed": bool(fwd_ok and num_ok)})
    return rows


# ---------------------------------------------------------------- layer by layer
def _layer_programs(prog: Program, layers=()):
    """For each layer: a program of its own equations, inputs = what flows in from outside.

    Parameters and buffers keep their names; the values the layer takes from other layers are
    named by their place (``layers``: the compiled layers' records, ``Model.layer_shapes``):
    ``input`` for its input, ``with[k]`` for the k-th output its ``with`` names."""
    groups: dict = {}
    for e in prog.eqns:
        if e.origin.layer() is not None:
            groups.setdefault(e.origin, []).append(e)
    param_names = {v.id: n for n, v in prog.inputs.items()}
    for origin, eqns in groups.items():
        made = {e.out.id for e in eqns}
        places = {}
        if origin.index < len(layers):
            for k, vid in reversed(list(enumerate(layers[origin.index].input_ids))):
                places[vid] = "input" if k == 0 else f"with[{k - 1}]"
        inputs, outer = {}, None
        for e in eqns:
            for a in e.inputs:
                if isinstance(a, Var) and a.id not in made and a.id not in {v.id for v in inputs.values()}:
                    name = param_names.get(a.id)
                    if name is None or name in ("X", "y"):
                        name = places.get(a.id, "input")
                        outer = a if name == "input" else outer
                    inputs[name] = a
        sub = Program(inputs, eqns, {"out": eqns[-1].out}, prog.n_vars)
        yield origin, sub, outer


def check_layers(pt: _Point, eps, rng, max_entries=50):
    """Each layer's backward against its own forward, on the input recorded at the check point.

    With a random upstream gradient v, reverse mode gives Jᵀv for the layer's
    parameters and input; central differences of ⟨v, layer(·)⟩ give the same
    entry by entry. A failure names the layer, the tensor, the worst index and both values.
    """
    out = []
    for origin, sub, _ in _layer_programs(pt.prog, pt.model.layer_shapes):
        values = {n: pt.env[v.id] for n, v in sub.inputs.items()}
        env = evaluate(sub, values)
        out_id = sub.outputs["out"].id
        v = _on(env[out_id], rng.standard_normal(np.shape(env[out_id])))
        grads = backward(sub, env, "out", list(sub.inputs), seed=v)
        report = {"layer": str(origin), "passed": True, "max_rel_err": 0.0, "kinks": 0, "worst": None}
        worst_err = -1.0
        for name, x in values.items():
            flat, gflat = x.astype(np.float64).reshape(-1), grads[name].reshape(-1)
            idx = (np.arange(flat.size) if flat.size <= max_entries
                   else np.sort(rng.choice(flat.size, max_entries, replace=False)))
            for i in idx:
                h = eps if eps is not None else H_REL * max(1.0, abs(float(flat[i])))
                envs = []
                for sign in (1, -1):
                    moved = flat.copy()
                    moved[i] += sign * h
                    envs.append(evaluate(sub, dict(values, **{name: moved.reshape(np.shape(x))})))
                if crossed(sub.eqns, *envs):
                    report["kinks"] += 1
                    continue
                num = float(np.vdot(v, envs[0][out_id] - envs[1][out_id])) / (2 * h)
                ana = float(gflat[i])
                err, scale = abs(ana - num), max(abs(ana), abs(num))
                if scale > ATOL:
                    report["max_rel_err"] = max(report["max_rel_err"], err / scale)
                if not _pass(ana, num, scale):
                    report["passed"] = False
                    if err > worst_err:
                        worst_err = err
                        report["worst"] = {"tensor": name, "index": _index(i, np.shape(x)),
                                           "analytic": ana, "numeric": num}
        out.append(report)
    return out


def _linear_part(sub: Program, values):
    """The layer as a map of its input with parameters fixed and biases zeroed: A x."""
    vals = {n: (np.zeros_like(v) if n.endswith(".bias") else v) for n, v in values.items()}

    def apply(x):
        return evaluate(sub, dict(vals, input=x))[sub.outputs["out"].id]

    def transpose(y):
        env = evaluate(sub, dict(vals, input=np.zeros_like(values["input"])))
        return backward(sub, env, "out", ["input"], seed=y)["input"]
    return apply, transpose


def check_linear_layers(pt: _Point, rng):
    """⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for every layer that is a linear map of its input (its bias zeroed:
    ``LayerDef.linear``); a layer with a matrix view against that explicit matrix."""
    rows = []
    for origin, sub, outer in _layer_programs(pt.prog, pt.model.layer_shapes):
        definition = LAYERS[origin.name]
        if not definition.linear or outer is None:
            continue
        values = {n: pt.env[v.id] for n, v in sub.inputs.items()}
        apply, transpose = _linear_part(sub, values)
        x = _on(values["input"], rng.standard_normal(np.shape(values["input"])))
        ax = apply(x)
        yv = _on(ax, rng.standard_normal(ax.shape))
        lhs, rhs = float(np.vdot(ax, yv)), float(np.vdot(x, transpose(yv)))
        rel = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-300)
        row = {"layer": str(origin), "test": "adjoint", "lhs": lhs, "rhs": rhs, "rel_err": rel,
               "passed": bool(rel <= DOT_RTOL)}
        rows.append(row)
        if definition.matrix is not None:
            rows.append(_matrix_row(origin, pt.model.spec, values, apply))
    return rows


def _matrix_row(origin, spec, values, apply):
    """The layer (biases zeroed) on one recorded sample against its explicit matrix T, y = T x
    (for a convolution, the banded Toeplitz matrix the lecture draws)."""
    layer = spec.network[origin.layer()]
    x1 = values["input"][:1]
    w = next((values[n] for n in values if n.endswith(".weight")), None)  # upsampling has none
    T = layer.definition.matrix(layer.fields, x1.shape[1:], w)
    explicit = T @ x1.reshape(-1)
    err = _largest(apply(x1).reshape(-1) - explicit)
    scale = _largest(explicit)
    return {"layer": str(origin), "test": "toeplitz" if w is not None and w.ndim >= 3 else "matrix",
            "matrix": list(T.shape), "max_abs_err": err,
            "passed": bool(err <= 1e-12 * max(1.0, scale))}


# ---------------------------------------------------------------- structure and cost
def check_structure(pt: _Point, rng):
    """Zero upstream gives zero; backward is linear in the upstream gradient; runs repeat exactly."""
    prog, wrt = pt.prog, list(pt.model.params)
    ref = backend.any_array(pt.grads.values())   # where the model lives (None: no parameters)
    zero = backward(prog, pt.env, "loss", wrt, seed=_on(ref, 0.0))
    a, b = rng.standard_normal(2)
    g_a = backward(prog, pt.env, "loss", wrt, seed=_on(ref, a))
    g_b = backward(prog, pt.env, "loss", wrt, seed=_on(ref, b))
    g_ab = backward(prog, pt.env, "loss", wrt, seed=_on(ref, a + b))
    again = backward(prog, evaluate(prog, pt.values), "loss", wrt)
    size = max((_largest(g_ab[n]) for n in wrt), default=0.0) or 1.0
    lin = max((_largest(g_ab[n] - g_a[n] - g_b[n]) for n in wrt), default=0.0) / size
    return {"zero_upstream_gives_zero": all(not bool(zero[n].any()) for n in wrt),
            "linear_in_upstream": bool(lin <= 1e-12), "linear_rel_err": lin,
            "repeatable": all(bool((again[n] == pt.grads[n]).all()) for n in wrt)}


def cost(pt: _Point, repeats: int = 3):
    """What the full gradient costs by each of the lecture's three methods, measured here."""
    model, prog = pt.model, pt.prog
    P = model.n_params()

    def best(fn):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)
    t_loss = best(lambda: evaluate(prog, pt.values))
    t_rev = best(lambda: backward(prog, evaluate(prog, pt.values), "loss", list(model.params)))
    tangent = {n: np.zeros_like(w) for n, w in list(model.params.items())[:1]}
    t_jvp = best(lambda: forward_tangent(prog, pt.values, tangent, "loss"))
    return {"parameters": P,
            "numerical": {"loss_evaluations": 2 * P, "seconds": 2 * P * t_loss},
            "forward_mode": {"passes": P, "seconds": P * t_jvp},
            "reverse_mode": {"passes": 2, "seconds": t_rev},
            "note": "per-pass times measured; multiplied by the passes each method needs"}


def sweep(pt: _Point, rng, exponents=range(-1, -13, -1)):
    """Central-difference error against h along one random direction: truncation vs rounding."""
    v = pt.direction(rng)
    exact = float(sum(np.vdot(pt.grads[n], v[n]) for n in v))
    rows = []
    for k in exponents:
        h = 10.0 ** k
        (lp, _), (lm, _) = pt.along(v, h)
        rows.append({"h": h, "numeric": (lp - lm) / (2 * h), "abs_err": abs((lp - lm) / (2 * h) - exact)})
    return {"reverse": exact, "rows": rows, "h_default": H_REL}


def _index(i, shape):
    return [int(j) for j in np.unravel_index(int(i), shape)]


# ---------------------------------------------------------------- the whole report
def gradcheck(spec, X=None, y=None, *, n: int = 4, seed: int = 0, eps: float | None = None,
              mode: str = "auto", directions: int = 8, max_entries: int | None = None,
              layers: bool = True, with_sweep: bool = False, with_cost: bool = True,
              device: str | None = None) -> dict:
    """Check a spec's gradients every way this module knows; return a JSON-ready report.

    ``device``: where the float64 model and the check run (``cpu``, ``gpu``); the random
    batch and directions come from host generators, so every device checks the same points.

    ``X``, ``y``: data to check on, as :meth:`Model.prepare` returns it (the first ``n``
    samples are used); None: a random batch of ``n`` samples with example labels.
    """
    model = spec if isinstance(spec, Model) else Model(spec, dtype=np.float64)
    if model.dtype != np.float64:
        model = Model(model.spec, dtype=np.float64)
    model.to(device)
    if mode == "auto":
        mode = "exact" if model.n_params() <= EXACT_LIMIT else "fast"
    draws = 0
    while True:
        if X is None or draws:
            pt = _Point(model, *model.prepare(*random_batch(model, n, seed + draws)))
        else:  # prepared data (labels as the loss takes them), cast to float64
            pt = _Point(model, np.asarray(X[:n], dtype=np.float64),
                        None if y is None else np.asarray(y[:n], dtype=np.float64))
        rng = np.random.default_rng(seed)
        rows = check_entries(pt, eps, max_entries, rng) if mode == "exact" else []
        kinks = sum(r["kinks"] for r in rows)
        # a random point with entries at a kink is redrawn (up to 3 times); given data is kept
        if not kinks or (X is not None) or draws >= 3:
            break
        draws += 1
    dirs = check_directions(pt, directions, eps, rng)
    report = {"mode": mode, "loss": pt.loss, "n_samples": int(pt.X.shape[0]), "seed": seed,
              "redrawn": draws, "h": "eps^(1/3)*max(1,|w|)" if eps is None else eps,
              "rtol": RTOL, "atol": ATOL, "parameters": rows, "directions": dirs}
    if mode == "fast":  # per tensor, the directions speak for all of them
        ok = all(d["passed"] for d in dirs)
        report["parameters"] = [{"name": n, "shape": list(w.shape), "checked": 0,
                                 "max_abs_err": max(d["reverse_vs_numeric"] for d in dirs),
                                 "max_rel_err": 0.0, "passed": ok, "kinks": 0}
                                for n, w in model.params.items()]
    if layers:
        report["layers"] = check_layers(pt, eps, rng)
        report["linear"] = check_linear_layers(pt, rng)
    report["structure"] = check_structure(pt, rng)
    if with_cost and model.params:
        report["cost"] = cost(pt)
    if with_sweep:
        report["sweep"] = sweep(pt, rng)
    s = report["structure"]
    report["passed"] = bool(
        all(r["passed"] for r in report["parameters"]) and all(d["passed"] for d in dirs)
        and all(r["passed"] for r in report.get("layers", []))
        and all(r["passed"] for r in report.get("linear", []))
        and s["zero_upstream_gives_zero"] and s["linear_in_upstream"] and s["repeatable"])
    return report
