"""Every schedule against torch.optim.lr_scheduler in float64: the lr used at every epoch (or step)
of a run, and the lr column a training run writes."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

import bpcli
from bpcli.errors import InputError
from bpcli.train.schedule import SCHEDULES, Schedule
from bpcli.train.loop import train
from bpcli.train.run_folder import RunFolder

LR, T = 0.1, 25


def resolved(cfg) -> dict:
    return bpcli.load_spec({"input": [2], "layers": ["relu"], "loss": "sum_squares",
                            "schedule": cfg}).data["schedule"]


def torch_lrs(torch, make, total=T):
    """The lr the optimizer holds at each of ``total`` epochs, scheduler.step() after each;
    ``make(sched, opt)`` builds the scheduler from torch.optim.lr_scheduler."""
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=LR)
    scheduler = make(torch.optim.lr_scheduler, opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on chaining; the values are what count
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return out


def warmup_cosine(w, min_lr, total=T):
    # LinearLR from start_factor 1/(w + 1) for w epochs, then CosineAnnealingLR over the rest
    return lambda sched, opt: sched.SequentialLR(opt, [
        sched.LinearLR(opt, start_factor=1 / (w + 1), total_iters=w),
        sched.CosineAnnealingLR(opt, T_max=total - w, eta_min=min_lr)], milestones=[w])


CASES = {
    "constant": ("constant", lambda sched, opt: sched.ConstantLR(opt, factor=1.0)),
    "step": ({"name": "step", "every": 4}, lambda sched, opt: sched.StepLR(opt, step_size=4)),
    "step-gamma": ({"name": "step", "every": 3, "gamma": 0.5},
                   lambda sched, opt: sched.StepLR(opt, step_size=3, gamma=0.5)),
    "exponential": ({"name": "exponential", "gamma": 0.9},
                    lambda sched, opt: sched.ExponentialLR(opt, gamma=0.9)),
    "cosine": ("cosine", lambda sched, opt: sched.CosineAnnealingLR(opt, T_max=T)),
    "cosine-min-lr": ({"name": "cosine", "min_lr": 0.01},
                      lambda sched, opt: sched.CosineAnnealingLR(opt, T_max=T, eta_min=0.01)),
    "cosine-warmup": ({"name": "cosine", "warmup": 5, "min_lr": 0.001}, warmup_cosine(5, 0.001)),
    "cosine-warmup-1": ({"name": "cosine", "warmup": 1}, warmup_cosine(1, 0.0)),
}


def test_every_schedule_has_a_torch_case():
    assert {resolved(c[0])["name"] for c in CASES.values()} == set(SCHEDULES)


@pytest.mark.parametrize("cfg, make", CASES.values(), ids=CASES.keys())
def test_per_epoch_lr_matches_torch_scheduler(cfg, make, torch):
    # 3 steps per epoch: each epoch's steps use the lr torch holds during that epoch
    s = Schedule(resolved(cfg), LR, epochs=T, steps_per_epoch=3)
    ours = [s.at(step) for step in range(3 * T)]
    np.testing.assert_allclose(ours, np.repeat(torch_lrs(torch, make), 3),
                               rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("name", ["cosine-warmup", "exponential", "step"])
def test_per_step_lr_matches_torch_scheduler_stepped_every_step(name, torch):
    cfg, _ = CASES[name]
    cfg = dict(cfg, per="step")
    # 5 epochs of 5 steps: T = 25 scheduler steps, as the torch case has
    s = Schedule(resolved(cfg), LR, epochs=5, steps_per_epoch=5)
    np.testing.assert_allclose([s.at(step) for step in range(T)],
                               torch_lrs(torch, CASES[name][1]),
                               rtol=1e-12, atol=1e-16)


def test_cosine_length_is_the_runs_length_in_its_units():
    c = resolved({"name": "cosine", "per": "step"})
    assert Schedule(c, LR, epochs=10, steps_per_epoch=7).total == 70
    assert Schedule(c, LR, epochs=10, steps_per_epoch=7, max_iters=30).total == 30
    c = resolved("cosine")
    assert Schedule(c, LR, epochs=10, steps_per_epoch=7, max_iters=30).total == 5  # ceil(30/7)


def test_metrics_lr_column_is_the_lr_each_row_used(tmp_path):
    # gd: one row per iteration, lr_t = 0.1 * 0.5^floor(t / 2)
    spec = {"name": "s", "input": [3], "dtype": "float64", "layers": [{"dense": {"units": 1}}],
            "loss": "mse", "optimizer": {"name": "gd", "lr": 0.1},
            "schedule": {"name": "step", "every": 2, "gamma": 0.5}, "training": {"epochs": 6}}
    model = bpcli.build(spec)
    rng = np.random.default_rng(0)
    data = model.prepare(rng.standard_normal((20, 3)), rng.standard_normal(20))
    train(model, data, None, RunFolder(tmp_path))
    with open(tmp_path / "metrics.csv", newline="") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


@pytest.mark.parametrize("cfg, words", [
    ("step", ["schedule", "missing required key 'every'"]),
    ({"name": "exponential"}, ["missing required key 'gamma'"]),
    ({"name": "cosine", "per": "batch"}, ["schedule.per", "epoch, step"]),
    ({"name": "cosine", "warmup": -1}, ["schedule.warmup", ">= 0"]),
    ("cosin", ["unknown schedule 'cosin'", "did you mean 'cosine'"]),
])
def test_bad_schedules_are_errors_naming_the_field(cfg, words):
    with pytest.raises(InputError) as e:
        resolved(cfg)
    for w in words:
        assert w in str(e.value)
