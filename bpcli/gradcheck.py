"""Gradient checking: reverse mode (backpropagation) against central differences, in float64.

The lecture's numerical gradient, done with a central difference

    dL/dW_i ≈ (L(W_i + h) - L(W_i - h)) / 2h,   h = ε^(1/3) · max(1, |W_i|),

whose error is O(h²) from truncation plus O(ε/h) from rounding; ε^(1/3)
balances the two (about 6e-6 in float64). An entry passes when
``|analytic - numeric| <= atol + rtol · max(|analytic|, |numeric|)``.

Near a ReLU kink the loss has no derivative and the two one-sided differences
disagree; such entries are reported as non-differentiable, not as failures.
"""

from __future__ import annotations

import numpy as np

from .model import Model

RTOL, ATOL = 1e-5, 1e-8
H_REL = np.finfo(np.float64).eps ** (1 / 3)


def random_batch(model: Model, n: int, seed: int):
    """A small batch that fits the spec's input and the loss's labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *model.spec.data["input"]))
    out = model.output_shape
    name = model.loss_def.name
    if model.loss_def.label_shape(out) is None:
        y = None
    elif name == "softmax_cross_entropy":
        y = rng.integers(0, out[1], n)
    elif name == "logistic":
        y = rng.choice([-1, 1], n)
    else:
        y = rng.standard_normal((n, *out[1:]))
    return X, y


def gradcheck(spec, X=None, y=None, *, n: int = 4, seed: int = 0, eps: float | None = None,
              max_entries: int = 200) -> dict:
    """Check every parameter tensor of ``spec``; return a report dict (JSON-ready)."""
    model = Model(spec, dtype=np.float64) if not isinstance(spec, Model) else spec
    if X is None:
        X, y = random_batch(model, n, seed)
    else:
        X, y = X[:n], None if y is None else y[:n]
    X, y = model.prepare(X, y)
    loss, grads = model._loss_and_grad(X, y)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for name, w in model.params.items():
        flat, gflat = w.reshape(-1), grads[name].reshape(-1)
        idx = (np.arange(flat.size) if flat.size <= max_entries
               else np.sort(rng.choice(flat.size, max_entries, replace=False)))
        worst_abs = worst_rel = 0.0
        worst_at, ok, kinks = None, True, 0
        for i in idx:
            w0 = flat[i]
            h = eps if eps is not None else H_REL * max(1.0, abs(w0))
            flat[i] = w0 + h
            lp = model._loss(X, y)
            flat[i] = w0 - h
            lm = model._loss(X, y)
            flat[i] = w0
            num, ana = (lp - lm) / (2 * h), gflat[i]
            err = abs(ana - num)
            scale = max(abs(ana), abs(num))
            if err > ATOL + RTOL * scale:
                # a kink: the one-sided slopes disagree by far more than curvature explains
                right, left = (lp - loss) / h, (loss - lm) / h
                if abs(right - left) > 1e3 * (ATOL + RTOL * scale):
                    kinks += 1
                    continue
                ok = False
            if err > worst_abs:
                worst_abs, worst_at = err, (int(i), float(ana), float(num))
            if scale > ATOL:
                worst_rel = max(worst_rel, err / scale)
        row = {"name": name, "shape": list(w.shape), "checked": int(len(idx)),
               "max_abs_err": float(worst_abs), "max_rel_err": float(worst_rel), "passed": ok,
               "kinks": kinks}
        if worst_at is not None:
            flat_i, ana, num = worst_at
            row["worst"] = {"index": [int(j) for j in np.unravel_index(flat_i, w.shape)],
                            "analytic": ana, "numeric": num}
        rows.append(row)
    return {"passed": all(r["passed"] for r in rows), "loss": loss, "n_samples": int(X.shape[0]),
            "seed": seed, "h": "eps^(1/3)*max(1,|w|)" if eps is None else eps,
            "rtol": RTOL, "atol": ATOL, "parameters": rows}
