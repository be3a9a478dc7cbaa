"""Where a training step's time goes, layer by layer (``bpcli bench``, like Caffe's ``time``)."""

from __future__ import annotations

import time

import numpy as np

from ..engine import backward, evaluate
from .gradcheck import random_batch
from ..nn.model import Model


def profile(model: Model, batch: int, steps: int = 20, seed: int = 0) -> dict:
    """Forward and backward seconds per training step for each layer, on a random batch.

    Each equation's time is measured inside the engine's own passes and added up
    by the layer it came from; ``step_ms`` is the same steps timed without the
    per-equation clock, so the table's overhead shows as the difference.
    """
    X, y = random_batch(model, batch, seed)
    X, y = model.prepare(X, y)
    # a training step's program: dropout with masks, batchnorm on batch statistics
    values = model.inputs(X, y, model.draw_masks(batch, np.random.default_rng(seed)))
    prog, wrt = model.train_program, list(model.params)
    fwd, bwd = [0.0] * len(prog.eqns), [0.0] * len(prog.eqns)
    backward(prog, evaluate(prog, values), "loss", wrt)  # warm up: plans, caches, BLAS threads
    for _ in range(steps):
        env = evaluate(prog, values, timings=fwd)
        backward(prog, env, "loss", wrt, timings=bwd)
    start = time.perf_counter()
    for _ in range(steps):
        backward(prog, evaluate(prog, values), "loss", wrt)
    step = (time.perf_counter() - start) / steps
    layers: dict[str, dict] = {}
    for e, f, b in zip(prog.eqns, fwd, bwd):
        row = layers.setdefault(str(e.origin), {"layer": str(e.origin), "forward_ms": 0.0,
                                                "backward_ms": 0.0, "ops": 0})
        row["forward_ms"] += 1e3 * f / steps
        row["backward_ms"] += 1e3 * b / steps
        row["ops"] += 1
    total = sum(r["forward_ms"] + r["backward_ms"] for r in layers.values()) or 1.0
    for r in layers.values():
        r["share"] = (r["forward_ms"] + r["backward_ms"]) / total
    return {"batch": batch, "dtype": str(model.dtype), "steps": steps, "step_ms": 1e3 * step,
            "samples_per_s": batch / step, "layers": list(layers.values())}
