"""Weight initializers: what a spec's top-level ``init:`` names.

Each draws one weight tensor from the spec's seeded generator, as the
``torch.nn.init`` function it names. Biases always start at zero. Fans are
PyTorch's: for a weight of shape (out, in, *kernel), fan_in = in · prod(kernel)
and fan_out = out · prod(kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.fields import Invalid, Param, Table, number, optional, positive_float


@dataclass(frozen=True)
class InitDef:
    name: str
    doc: str
    draw: Callable  # (rng, shape, fan_in, fan_out, fields) -> float64 array
    params: tuple[Param, ...] = ()
    check: Callable = lambda cfg: None  # resolved fields -> raises Invalid(key=...)


INITIALIZERS = Table("initializer")


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel), as torch.nn.init computes them."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _uniform_check(c):
    if c["a"] is not None and (c["low"], c["high"]) != (0.0, 1.0):
        raise Invalid("give either a (bounds -a, a) or low and high, not both", key="a")
    if c["a"] is None and not c["low"] < c["high"]:
        raise Invalid(f"low must be below high, got low {c['low']} and high {c['high']}", key="low")


def _uniform(rng, shape, fan_in, fan_out, c):
    low, high = (-c["a"], c["a"]) if c["a"] is not None else (c["low"], c["high"])
    return rng.uniform(low, high, shape)


def _xavier(rng, shape, fan_in, fan_out, c):
    a = c["gain"] * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape)


INITIALIZERS.add(InitDef(
    "he",
    doc="normal with std sqrt(2 / fan_in), the usual choice for ReLU nets, as torch's "
        "kaiming_normal_ (nonlinearity relu, mode fan_in)",
    draw=lambda rng, shape, fan_in, fan_out, c: rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)))
INITIALIZERS.add(InitDef(
    "xavier",
    doc="uniform on (-a, a), a = gain sqrt(6 / (fan_in + fan_out)), as torch's "
        "xavier_uniform_ (Glorot)",
    draw=_xavier,
    params=(Param("gain", positive_float, 1.0, "scale factor, as torch's gain"),)))
INITIALIZERS.add(InitDef(
    "normal",
    doc="normal with the given mean and std, as torch's normal_",
    draw=lambda rng, shape, fan_in, fan_out, c: c["mean"] + c["std"] * rng.standard_normal(shape),
    params=(Param("mean", number, 0.0, "mean"),
        Param("std", positive_float, 1.0, "standard deviation"))))
INITIALIZERS.add(InitDef(
    "uniform",
    doc="uniform on (low, high), or on (-a, a) when a is given, as torch's uniform_",
    draw=_uniform,
    params=(Param("low", number, 0.0, "lower bound"),
        Param("high", number, 1.0, "upper bound"),
        Param("a", optional(positive_float), None, "symmetric bounds -a, a instead of low, high")),
    check=_uniform_check))
INITIALIZERS.add(InitDef(
    "zeros",
    doc="all zeros (a network of zeros learns nothing behind a ReLU: for tests and "
        "linear models)",
    draw=lambda rng, shape, fan_in, fan_out, c: np.zeros(shape)))


def init_weights(param_info, init_cfg: dict, seed: int, dtype) -> dict[str, np.ndarray]:
    """Every parameter's starting value: weights drawn in parameter order from one generator
    seeded by ``seed`` (each by its layer's initializer); biases zero, and any other parameter
    that is not drawn (batchnorm's scale: 1) its ``start``."""
    rng = np.random.default_rng(seed)
    overrides = init_cfg.get("layers") or {}
    out = {}
    for p in param_info:
        if p.fan_in is None:
            out[p.name] = np.full(p.shape, p.start, dtype=dtype)
            continue
        cfg = overrides.get(p.layer, init_cfg)
        fan_in, fan_out = p.fan_in, fans(p.shape)[1]
        out[p.name] = INITIALIZERS[cfg["name"]].draw(rng, p.shape, fan_in, fan_out, cfg).astype(dtype)
    return out
