"""Every optimizer against torch.optim in float64: the same weights and the same gradients in, the
same weights out, after one step and after several, with weight_decay and grad_clip.

bpcli's side runs on every device (the ``device`` fixture): weights, gradients and the optimizer's
state live there; torch stays on the host."""

from __future__ import annotations

import numpy as np
import pytest
from device_stand_in import numpy_arithmetic

import bpcli
from bpcli.engine import backend
from bpcli.errors import InputError
from bpcli.train.optim import OPTIMIZERS, clip_by_global_norm

SHAPES = {"layers.0.weight": (4, 3), "layers.0.bias": (4,), "layers.2.weight": (2, 4, 3)}


def resolved(cfg: dict) -> dict:
    """The optimizer entry as a spec resolves it, every default filled in."""
    return bpcli.load_spec({"input": [2], "layers": ["relu"], "loss": "sum_squares",
                            "optimizer": cfg}).data["optimizer"]


def torch_optimizer(torch, c, params):
    """The torch.optim call each bpcli optimizer claims to be, with its resolved fields."""
    name, lr, wd = c["name"], c["lr"], c.get("weight_decay", 0.0)
    if name in ("gd", "sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=c.get("momentum", 0.0),
                               nesterov=c.get("nesterov", name == "nesterov"), weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=c["eps"], weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=c["alpha"], eps=c["eps"], weight_decay=wd,
                                   momentum=c["momentum"], centered=c["centered"])
    betas = (c["beta1"], c["beta2"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=c["eps"], weight_decay=wd)
    assert name == "adamw"
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=c["eps"], weight_decay=wd)


def on(device, arrays: dict) -> dict:
    """Copies of ``arrays`` on ``device``."""
    return {k: backend.to_device(a.copy(), device) for k, a in arrays.items()}


def run_both(torch, cfg, steps, lrs=None, seed=0, device="cpu"):
    """``steps`` updates from the same start with the same gradient sequence: (bpcli's on
    ``device``, brought back to the host; torch's)."""
    c = resolved(cfg)
    rng = np.random.default_rng(seed)
    start = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    ours = on(device, start)
    theirs = {k: torch.tensor(w.copy(), requires_grad=True) for k, w in start.items()}
    opt, topt = OPTIMIZERS[c["name"]].make(c), torch_optimizer(torch, c, list(theirs.values()))
    for t in range(steps):
        grads = {k: rng.standard_normal(s) * 3 for k, s in SHAPES.items()}
        lr = c["lr"] if lrs is None else lrs[t]
        opt.step(ours, on(device, grads), lr)
        for group in topt.param_groups:  # what a torch lr_scheduler does between steps
            group["lr"] = lr
        for k, p in theirs.items():
            p.grad = torch.tensor(grads[k])
        if c.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(list(theirs.values()), c["grad_clip"])
        topt.step()
    return ({k: backend.to_host(w) for k, w in ours.items()},
            {k: p.detach().numpy() for k, p in theirs.items()})


def rtol_on(device, rtol):
    """``rtol`` where ``device`` computes with NumPy's arithmetic (cpu, the stand-in); a real GPU
    rounds its own way (its sqrt and division, the clip's norm summed in another order): 1e-10."""
    return rtol if numpy_arithmetic(device) else max(rtol, 1e-10)


CASES = {
    "gd": {"name": "gd", "lr": 0.1},
    "gd-weight-decay-clip": {"name": "gd", "lr": 0.1, "weight_decay": 0.1, "grad_clip": 1.0},
    "sgd": {"name": "sgd", "lr": 0.05},
    "sgd-momentum": {"name": "sgd", "lr": 0.05, "momentum": 0.8},
    "sgd-nesterov-wd": {"name": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True,
                        "weight_decay": 0.01},
    "momentum": {"name": "momentum"},
    "momentum-wd-clip": {"name": "momentum", "lr": 0.03, "weight_decay": 0.05, "grad_clip": 2.0},
    "nesterov": {"name": "nesterov"},
    "nesterov-wd-clip": {"name": "nesterov", "momentum": 0.5, "weight_decay": 0.05, "grad_clip": 0.5},
    "adagrad": {"name": "adagrad", "lr": 0.1},
    "adagrad-wd-clip": {"name": "adagrad", "lr": 0.1, "weight_decay": 0.2, "grad_clip": 1.5},
    "rmsprop": {"name": "rmsprop"},
    "rmsprop-momentum-wd": {"name": "rmsprop", "momentum": 0.7, "weight_decay": 0.02},
    "rmsprop-centered-momentum-clip": {"name": "rmsprop", "alpha": 0.9, "momentum": 0.5,
                                       "centered": True, "grad_clip": 1.0},
    "adam": {"name": "adam", "lr": 0.01},
    "adam-wd-clip": {"name": "adam", "lr": 0.01, "weight_decay": 0.1, "grad_clip": 3.0},
    "adamw": {"name": "adamw", "lr": 0.01},
    "adamw-wd-clip-betas": {"name": "adamw", "lr": 0.02, "weight_decay": 0.3, "beta1": 0.5,
                            "beta2": 0.9, "grad_clip": 0.7},
}


def test_every_optimizer_has_a_torch_case():
    assert {c["name"] for c in CASES.values()} == set(OPTIMIZERS)


@pytest.mark.parametrize("steps", [1, 6])
@pytest.mark.parametrize("cfg", CASES.values(), ids=CASES.keys())
def test_steps_match_torch_optim(cfg, steps, torch, device):
    ours, theirs = run_both(torch, cfg, steps, device=device)
    for k in SHAPES:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=rtol_on(device, 1e-12), atol=1e-14,
                                   err_msg=k)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam", "adamw"])
def test_a_changing_lr_matches_torch_with_the_scheduler_setting_the_group_lr(name, torch, device):
    ours, theirs = run_both(torch, {"name": name, "weight_decay": 0.1}, 4,
                            lrs=[0.1, 0.05, 0.2, 0.01], device=device)
    for k in SHAPES:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=rtol_on(device, 1e-12), atol=1e-14,
                                   err_msg=k)


def test_gd_is_the_lecture_step_and_returns_the_largest_change(device):
    # W <- W - gamma dL/dW;  previous_step_size = max |W_new - W_old|
    W, g = np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([[0.2, -4.0], [1.0, 0.0]])
    params = on(device, {"w": W})
    size = OPTIMIZERS["gd"].make(resolved({"name": "gd", "lr": 0.1})).step(
        params, on(device, {"w": g}), 0.1)
    if numpy_arithmetic(device):  # the very bits of the formula
        np.testing.assert_array_equal(backend.to_host(params["w"]), W - 0.1 * g)
    else:
        np.testing.assert_allclose(backend.to_host(params["w"]), W - 0.1 * g, rtol=1e-10)
    assert size == pytest.approx(0.4)


def test_clip_by_global_norm_is_torchs_clip_grad_norm(torch, device):
    # g <- g min(1, max_norm / (||g|| + 1e-6)), ||g|| over all tensors together
    rng = np.random.default_rng(1)
    grads = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    ours = on(device, grads)
    norm = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
    for max_norm in (0.5 * norm, 2 * norm):
        tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES.values()]
        for p, g in zip(tensors, grads.values()):
            p.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tensors, max_norm)
        clipped = clip_by_global_norm(ours, max_norm)
        for c, p in zip(clipped.values(), tensors):
            np.testing.assert_allclose(backend.to_host(c), p.grad.numpy(),
                                       rtol=rtol_on(device, 1e-14))
    assert clip_by_global_norm(ours, None) is ours and clip_by_global_norm(ours, 0.0) is ours


def test_momentum_and_nesterov_default_to_mu_09_and_adamw_to_decay_001():
    assert resolved("momentum")["momentum"] == 0.9
    assert resolved("nesterov")["momentum"] == 0.9
    assert resolved("adamw")["weight_decay"] == 0.01
    assert resolved("adam") == {"name": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                "eps": 1e-8, "weight_decay": 0.0, "grad_clip": None}


@pytest.mark.parametrize("cfg, words", [
    ({"name": "sgd", "nesterov": True}, ["optimizer.momentum", "needs momentum > 0"]),
    ({"name": "nesterov", "momentum": 0}, ["optimizer.momentum", "needs momentum > 0"]),
    ({"name": "adam", "grad_clip": -1}, ["optimizer.grad_clip", ">= 0"]),
    ({"name": "rmsprop", "weight_decay": "lots"}, ["optimizer.weight_decay", ">= 0"]),
    ({"name": "adamw", "nesterov": True}, ["optimizer.nesterov", "unknown key"]),
])
def test_bad_optimizer_fields_are_errors_naming_the_field(cfg, words):
    with pytest.raises(InputError) as e:
        resolved(cfg)
    for w in words:
        assert w in str(e.value)
