"""Optimizers: how a gradient is used (the lecture: "a different problem than how it is computed").

Each updates the model's parameter arrays in place and returns the step's size,
max |ΔW| over all entries, which the lecture's stopping rule compares with
``training.precision``. Update rules follow PyTorch's ``torch.optim`` exactly,
including where ``weight_decay`` enters (added to the gradient, except AdamW's
decoupled decay) and ``grad_clip`` (``torch.nn.utils.clip_grad_norm_`` on the
whole gradient before the step). The learning rate is an argument of every
step, so a schedule (:mod:`bpcli.schedule`) can change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.fields import (Invalid, Param, Table, boolean, fraction, nonneg_float, optional,
                           positive_float)


@dataclass(frozen=True)
class OptimizerDef:
    name: str
    doc: str
    make: Callable  # resolved fields -> Optimizer
    params: tuple[Param, ...] = ()
    full_batch: bool = False
    check: Callable = lambda cfg: None  # resolved fields -> raises Invalid(key=...) on a bad combination


OPTIMIZERS = Table("optimizer")


def clip_by_global_norm(grads: dict, max_norm) -> dict:
    """g <- g · min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the 2-norm of all entries together.

    The same rule and the same 1e-6 as ``torch.nn.utils.clip_grad_norm_``;
    ``max_norm`` 0 or None leaves the gradients alone.
    """
    if not max_norm:
        return grads
    norm = np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    scale = min(1.0, max_norm / (norm + 1e-6))
    return grads if scale == 1.0 else {k: g * scale for k, g in grads.items()}


ALL = "all_parameters"  # the state entry of the parameters laid end to end


class Optimizer:
    """Clips, then asks :meth:`delta` for each parameter's step, applies it, and reports max |ΔW|.

    ``state[ALL]`` holds the buffers (momentum, averages) of all parameters laid end to end;
    ``t`` counts steps from 1, as torch's ``state["step"]``.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.wd = cfg.get("weight_decay", 0.0)
        self.t = 0
        self.state: dict[str, dict] = {}

    def step(self, params, grads, lr, measure: bool = True) -> float:
        """Update ``params`` in place; max |ΔW| over all entries (0.0 unless ``measure``).

        Every rule here is elementwise, so it runs once on all parameters laid end to end
        (state ``ALL`` holds the buffers that way): the same update, with a dozen NumPy calls
        per step instead of a dozen per tensor, which matters for small networks. On a GPU the
        parameters, gradients and buffers all live there and the same NumPy calls dispatch to CuPy.
        """
        self.t += 1
        grads = clip_by_global_norm(grads, self.cfg.get("grad_clip"))
        names = list(params)
        w = np.concatenate([params[n].reshape(-1) for n in names])
        g = np.concatenate([np.reshape(grads[n], -1) for n in names])
        delta = self.delta(self.state.setdefault(ALL, {}), w, g, lr).astype(w.dtype, copy=False)
        start = 0
        for n in names:
            size = params[n].size
            params[n] -= delta[start:start + size].reshape(params[n].shape)
            start += size
        # only the lecture's precision stop needs the step's size: two passes saved otherwise
        return float(np.abs(delta).max()) if measure and delta.size else 0.0

    def delta(self, state, w, g, lr):
        """The amount to subtract from ``w`` this step."""
        raise NotImplementedError


class SGD(Optimizer):
    """g <- g + wd W;  v <- mu v + g (v = g at the first step);  W <- W - lr (g + mu v if nesterov else v).

    With mu = 0 this is the lecture's W <- W - gamma dL/dW.
    """

    def delta(self, state, w, g, lr):
        mu = self.cfg.get("momentum", 0.0)
        if self.wd:
            g = g + self.wd * w
        if mu:
            v = state.get("v")
            v = state["v"] = g.copy() if v is None else mu * v + g
            g = g + mu * v if self.cfg.get("nesterov") else v
        return lr * g


class Adagrad(Optimizer):
    """g <- g + wd W;  s <- s + g²;  W <- W - lr g / (sqrt(s) + eps)."""

    def delta(self, state, w, g, lr):
        if self.wd:
            g = g + self.wd * w
        s = state["sum"] = state.get("sum", 0.0) + g * g
        return lr * g / (np.sqrt(s) + self.cfg["eps"])


class RMSprop(Optimizer):
    """g <- g + wd W;  a <- alpha a + (1 - alpha) g²;  d = sqrt(a - m²) + eps with m the gradient's
    running average if centered (else m = 0);  b <- mu b + g / d;  W <- W - lr b (mu = 0: lr g / d)."""

    def delta(self, state, w, g, lr):
        c = self.cfg
        alpha, mu = c["alpha"], c["momentum"]
        if self.wd:
            g = g + self.wd * w
        a = state["square_avg"] = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g
        if c["centered"]:
            m = state["grad_avg"] = alpha * state.get("grad_avg", 0.0) + (1 - alpha) * g
            d = np.sqrt(a - m * m) + c["eps"]
        else:
            d = np.sqrt(a) + c["eps"]
        if mu:
            b = state["buf"] = mu * state.get("buf", 0.0) + g / d
            return lr * b
        return lr * g / d


class Adam(Optimizer):
    """g <- g + wd W;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g²;
    W <- W - lr/(1 - b1^t) · m / (sqrt(v)/sqrt(1 - b2^t) + eps)."""

    decoupled = False

    def delta(self, state, w, g, lr):
        c = self.cfg
        b1, b2 = c["beta1"], c["beta2"]
        decay = 0.0
        if self.wd and self.decoupled:
            decay = lr * self.wd * w      # AdamW: W <- W (1 - lr wd), apart from the gradient
        elif self.wd:
            g = g + self.wd * w
        if "m" not in state:
            state["m"], state["v"] = np.zeros_like(g), np.zeros_like(g)
        m, v = state["m"], state["v"]
        # in place, same arithmetic as m <- b1 m + (1-b1) g and v <- b2 v + (1-b2) g²: fewer temporaries
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        denom = np.sqrt(v)
        denom /= np.sqrt(c2)
        denom += c["eps"]
        step = m * (lr / c1)
        step /= denom
        # as torch: the decay is applied first, so the Adam step is taken from the decayed W;
        # the Adam step itself does not depend on W, so the two simply add
        return step + decay if self.wd and self.decoupled else step


class AdamW(Adam):
    """Adam with decoupled weight decay: W <- W (1 - lr wd), then the Adam step (wd not in g)."""

    decoupled = True


def _nesterov_needs_momentum(cfg):
    if cfg.get("nesterov") and not cfg["momentum"]:
        raise Invalid("Nesterov momentum needs momentum > 0 (as torch.optim.SGD)", key="momentum")


_LR = "step size (the lecture's gamma); a schedule scales it"
_WD = Param("weight_decay", nonneg_float, 0.0, "wd W added to every parameter's gradient, biases "
            "too, as torch.optim; on weights the same as regularization.l2 = wd/2")
_CLIP = Param("grad_clip", optional(nonneg_float), None, "clip the gradient to this global 2-norm "
              "before the step, as torch.nn.utils.clip_grad_norm_; null or 0: off")
_MU = "momentum factor mu"
_ADAM = (Param("lr", positive_float, 0.001, _LR),
         Param("beta1", fraction, 0.9, "decay of the gradient average"),
         Param("beta2", fraction, 0.999, "decay of the squared-gradient average"),
         Param("eps", nonneg_float, 1e-8, "added to the denominator"))


OPTIMIZERS.add(OptimizerDef(
    "gd",
    doc="the lecture's steepest descent on the full training set: W -= lr dL/dW until the "
        "step's largest |ΔW| < training.precision or training.max_iters",
    make=SGD,
    params=(Param("lr", positive_float, 0.1, _LR),
            _WD,
            _CLIP),
    full_batch=True))
OPTIMIZERS.add(OptimizerDef(
    "sgd",
    doc="minibatch stochastic gradient descent, optional (Nesterov) momentum, as "
        "torch.optim.SGD",
    make=SGD,
    params=(Param("lr", positive_float, 0.01, _LR),
            Param("momentum", fraction, 0.0, f"{_MU}, 0 for plain SGD"),
            Param("nesterov", boolean, False, "Nesterov momentum (needs momentum > 0)"),
            _WD,
            _CLIP),
    check=_nesterov_needs_momentum))
OPTIMIZERS.add(OptimizerDef(
    "momentum",
    doc="sgd with heavy-ball momentum: v = mu v + g, W -= lr v, as torch.optim.SGD "
        "with momentum",
    make=SGD,
    params=(Param("lr", positive_float, 0.01, _LR),
            Param("momentum", fraction, 0.9, _MU),
            _WD,
            _CLIP)))
OPTIMIZERS.add(OptimizerDef(
    "nesterov",
    doc="sgd with Nesterov momentum: v = mu v + g, W -= lr (g + mu v), as "
        "torch.optim.SGD with nesterov=True",
    make=lambda cfg: SGD(dict(cfg, nesterov=True)),
    params=(Param("lr", positive_float, 0.01, _LR),
            Param("momentum", fraction, 0.9, f"{_MU} (> 0)"),
            _WD,
            _CLIP),
    check=lambda cfg: _nesterov_needs_momentum(dict(cfg, nesterov=True))))
OPTIMIZERS.add(OptimizerDef(
    "adagrad",
    doc="per-entry steps lr / sqrt(sum of squared gradients), as torch.optim.Adagrad",
    make=Adagrad,
    params=(Param("lr", positive_float, 0.01, _LR),
            Param("eps", nonneg_float, 1e-10, "added to the denominator"),
            _WD,
            _CLIP)))
OPTIMIZERS.add(OptimizerDef(
    "rmsprop",
    doc="per-entry steps lr / sqrt(running average of squared gradients), as "
        "torch.optim.RMSprop",
    make=RMSprop,
    params=(Param("lr", positive_float, 0.01, _LR),
            Param("alpha", fraction, 0.99, "decay of the squared-gradient average"),
            Param("eps", nonneg_float, 1e-8, "added to the denominator"),
            Param("momentum", fraction, 0.0, f"{_MU} on the scaled step, 0 for none"),
            Param("centered", boolean, False, "divide by the gradient's estimated variance instead"),
            _WD,
            _CLIP)))
OPTIMIZERS.add(OptimizerDef(
    "adam",
    doc="Adam with bias correction, as torch.optim.Adam (weight_decay enters the gradient)",
    make=Adam,
    params=(*_ADAM, _WD, _CLIP)))
OPTIMIZERS.add(OptimizerDef(
    "adamw",
    doc="Adam with decoupled weight decay, W -= lr wd W beside the Adam step, as "
        "torch.optim.AdamW",
    make=AdamW,
    params=(*_ADAM,
            Param("weight_decay", nonneg_float, 0.01, "decoupled decay wd: W -= lr wd W each "
                  "step, not through the gradient (torch's AdamW default 0.01)"),
            _CLIP)))
