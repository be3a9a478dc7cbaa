"""Optimizers: how a gradient is used (the lecture: "a different problem than how it is computed").

Each updates the model's parameter arrays in place and returns the step's size,
max |ΔW| over all entries, which the lecture's stopping rule compares with
``training.precision``. Update rules follow PyTorch's ``torch.optim`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .schema import Param, fraction, nonneg_float, positive_float, boolean


@dataclass(frozen=True)
class OptimizerDef:
    name: str
    params: tuple[Param, ...]
    doc: str
    make: Callable  # resolved fields -> optimizer object with .step(params, grads) -> max |ΔW|
    full_batch: bool = False


OPTIMIZERS: dict[str, OptimizerDef] = {}


class GradientDescent:
    """The lecture's steepest descent: W <- W - gamma dL/dW."""

    def __init__(self, cfg):
        self.lr = cfg["lr"]

    def step(self, params, grads):
        biggest = 0.0
        for name, w in params.items():
            delta = self.lr * grads[name]
            w -= delta
            biggest = max(biggest, float(np.max(np.abs(delta), initial=0.0)))
        return biggest


class SGD:
    """v <- mu v + g;  W <- W - lr v  (PyTorch's momentum form; mu = 0 is plain SGD)."""

    def __init__(self, cfg):
        self.lr, self.mu, self.nesterov = cfg["lr"], cfg["momentum"], cfg["nesterov"]
        self.v: dict[str, np.ndarray] = {}

    def step(self, params, grads):
        biggest = 0.0
        for name, w in params.items():
            g = grads[name]
            if self.mu:
                v = self.v.get(name)
                v = self.v[name] = g.copy() if v is None else self.mu * v + g
                g = g + self.mu * v if self.nesterov else v
            delta = self.lr * g
            w -= delta
            biggest = max(biggest, float(np.max(np.abs(delta), initial=0.0)))
        return biggest


class Adam:
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g²;  W <- W - lr m̂ / (sqrt(v̂) + eps)."""

    def __init__(self, cfg):
        self.lr, self.b1, self.b2, self.eps = cfg["lr"], cfg["beta1"], cfg["beta2"], cfg["eps"]
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params, grads):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        biggest = 0.0
        for name, w in params.items():
            g = grads[name]
            m = self.m[name] = self.b1 * self.m.get(name, 0) + (1 - self.b1) * g
            v = self.v[name] = self.b2 * self.v.get(name, 0) + (1 - self.b2) * g * g
            delta = (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
            w -= delta.astype(w.dtype, copy=False)
            biggest = max(biggest, float(np.max(np.abs(delta), initial=0.0)))
        return biggest


_LR = "step size (the lecture's gamma)"
OPTIMIZERS["gd"] = OptimizerDef(
    "gd", (Param("lr", positive_float, 0.1, _LR),),
    "the lecture's steepest descent on the full training set: W -= lr dL/dW until the step's "
    "largest |ΔW| < training.precision or training.max_iters", GradientDescent, full_batch=True)
OPTIMIZERS["sgd"] = OptimizerDef(
    "sgd", (Param("lr", positive_float, 0.01, _LR),
            Param("momentum", fraction, 0.0, "momentum factor mu, 0 for plain SGD"),
            Param("nesterov", boolean, False, "Nesterov momentum")),
    "minibatch stochastic gradient descent, optional (Nesterov) momentum, as torch.optim.SGD", SGD)
OPTIMIZERS["adam"] = OptimizerDef(
    "adam", (Param("lr", positive_float, 0.001, _LR),
             Param("beta1", fraction, 0.9, "decay of the gradient average"),
             Param("beta2", fraction, 0.999, "decay of the squared-gradient average"),
             Param("eps", nonneg_float, 1e-8, "added to the denominator")),
    "Adam with bias correction, as torch.optim.Adam", Adam)
