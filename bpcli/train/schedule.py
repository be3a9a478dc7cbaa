"""Learning-rate schedules: what a spec's top-level ``schedule:`` names.

A schedule is a pure function of a counter ``t`` = 0, 1, 2, ...: ``lr_at`` is
the closed form of the matching ``torch.optim.lr_scheduler`` class after ``t``
calls of ``scheduler.step()``, so no state is carried from step to step.
``per: epoch`` (the default, as PyTorch's schedulers are usually stepped)
advances ``t`` once per epoch, ``per: step`` once per optimizer step; for
full-batch ``gd`` the two are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..core.fields import (Param, Table, nonneg_float, nonneg_int, one_of, positive_float,
                           positive_int)


@dataclass(frozen=True)
class ScheduleDef:
    name: str
    doc: str
    lr_at: Callable  # (lr, fields, t, total) -> the learning rate after t scheduler steps
    params: tuple[Param, ...] = ()


SCHEDULES = Table("schedule")


def _cosine(lr, c, t, total):
    """Linear warmup lr (t + 1)/(w + 1) for t < w (torch's LinearLR, start_factor 1/(w + 1)), then
    min_lr + (lr - min_lr)(1 + cos(pi (t - w) / (total - w))) / 2 (CosineAnnealingLR,
    T_max = total - w), the two joined as torch's SequentialLR with milestone w."""
    w = c["warmup"]
    if t < w:
        return lr * (t + 1) / (w + 1)
    span = max(total - w, 1)
    return c["min_lr"] + (lr - c["min_lr"]) * (1 + math.cos(math.pi * (t - w) / span)) / 2


_PER = Param("per", one_of("epoch", "step"), "epoch", "advance the schedule once per epoch or once "
             "per optimizer step")

SCHEDULES.add(ScheduleDef(
    "constant",
    doc="the optimizer's lr throughout",
    lr_at=lambda lr, c, t, total: lr))
SCHEDULES.add(ScheduleDef(
    "step",
    doc="lr · gamma^floor(t / every), as torch's StepLR",
    lr_at=lambda lr, c, t, total: lr * c["gamma"] ** (t // c["every"]),
    params=(Param("every", positive_int, doc="epochs (or steps) between decays: StepLR's step_size"),
        Param("gamma", positive_float, 0.1, "factor per decay"),
        _PER)))
SCHEDULES.add(ScheduleDef(
    "exponential",
    doc="lr · gamma^t, as torch's ExponentialLR",
    lr_at=lambda lr, c, t, total: lr * c["gamma"] ** t,
    params=(Param("gamma", positive_float, doc="factor per epoch (or step)"),
        _PER)))
SCHEDULES.add(ScheduleDef(
    "cosine",
    doc="optional linear warmup from lr/(warmup + 1) up to lr, then half a cosine from lr "
        "down to min_lr, reached as the run ends (its length in epochs, or in steps with per: "
        "step, from training.epochs and max_iters), as torch's LinearLR then CosineAnnealingLR in "
        "SequentialLR",
    lr_at=_cosine,
    params=(Param("warmup", nonneg_int, 0, "epochs (or steps) of linear warmup, 0 for none"),
        Param("min_lr", nonneg_float, 0.0, "the lr at the end of the run: CosineAnnealingLR's eta_min"),
        _PER)))


class Schedule:
    """The lr for each optimizer step of a run with ``steps_per_epoch`` steps per epoch."""

    def __init__(self, cfg: dict, lr: float, epochs: int, steps_per_epoch: int,
                 max_iters: int | None = None):
        self.cfg, self.lr, self.spe = cfg, lr, steps_per_epoch
        self.per_step = cfg.get("per") == "step"
        steps = epochs * steps_per_epoch if not max_iters else min(epochs * steps_per_epoch, max_iters)
        # the run's length in the schedule's own units: what cosine anneals over
        self.total = steps if self.per_step else -(-steps // steps_per_epoch)
        self._def = SCHEDULES[cfg["name"]]

    def at(self, step: int) -> float:
        """The lr of optimizer step ``step`` (counted from 0 over the whole run)."""
        t = step if self.per_step else step // self.spe
        return self._def.lr_at(self.lr, self.cfg, t, self.total)

