"""regularization: {l2, l1} against the hand formulas: the loss gains l2 Σ w² + l1 Σ |w| over the
weights (not the biases), the gradient gains 2 l2 w + l1 sign(w), and metrics.csv shows the parts.

The models compute on every device (the ``device`` fixture); the hand formulas stay on the host."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from device_stand_in import numpy_arithmetic

import bpcli
from bpcli.engine import backend
from bpcli.train.loop import train
from bpcli.train.run_folder import RunFolder

LAYERS = [{"conv1d": {"channels": 2, "kernel": 3}}, "relu", {"dense": {"units": 1}}]
WEIGHTS = ("layers.0.weight", "layers.2.weight")


def build(reg=None, layers=LAYERS, **extra):
    spec = {"name": "r", "input": [6], "dtype": "float64", "layers": layers, "loss": "mse", **extra}
    if reg is not None:
        spec["regularization"] = reg
    return bpcli.build(spec)


@pytest.fixture
def batch():
    rng = np.random.default_rng(5)
    return rng.standard_normal((7, 6)), rng.standard_normal(7)


def same_weights(model, other):
    for k, w in other.params.items():
        w[...] = model.params[k]


def host(arrays: dict) -> dict:
    """Host copies of a model's arrays (parameters, gradients) wherever they live."""
    return {k: backend.to_host(a).copy() for k, a in arrays.items()}


def rtol_on(device, rtol):
    """``rtol`` where ``device`` computes with NumPy's arithmetic (cpu, the stand-in); a real GPU
    rounds its own way (sums in another order): 1e-10 in float64."""
    return rtol if numpy_arithmetic(device) else max(rtol, 1e-10)


@pytest.mark.parametrize("l2, l1", [(0.1, 0.0), (0.0, 0.05), (0.3, 0.02)])
def test_penalty_and_its_gradient_are_the_hand_formulas(l2, l1, batch, device):
    plain, reg = build(), build({"l2": l2, "l1": l1})
    for w in plain.params.values():  # biases nonzero: they must stay out of the penalty
        w[...] = np.random.default_rng(1).standard_normal(w.shape)
    same_weights(plain, reg)
    params = host(plain.params)
    L0, g0 = plain.to(device).loss_and_grad(*batch)
    L, g = reg.to(device).loss_and_grad(*batch)
    g0, g = host(g0), host(g)
    W = [params[k] for k in WEIGHTS]
    # L = data loss + l2 Σ w² + l1 Σ |w|, over weights only
    assert L == pytest.approx(L0 + l2 * sum((w ** 2).sum() for w in W)
                              + l1 * sum(np.abs(w).sum() for w in W), rel=rtol_on(device, 1e-13))
    for k, w in params.items():
        # dL/dw = data gradient + 2 l2 w + l1 sign(w); biases: the data gradient alone
        expected = g0[k] + (2 * l2 * w + l1 * np.sign(w) if k in WEIGHTS else 0.0)
        np.testing.assert_allclose(g[k], expected, rtol=rtol_on(device, 1e-12), atol=1e-14,
                                   err_msg=k)


def test_l1_subgradient_at_zero_weights_is_zero(batch, device):
    plain, reg = build(), build({"l1": 0.5})
    for m in (plain, reg):
        m.params["layers.2.weight"][0, :3] = 0.0
    same_weights(plain, reg)
    g0, g = (host(m.to(device).loss_and_grad(*batch)[1]) for m in (plain, reg))
    np.testing.assert_allclose(g["layers.2.weight"][0, :3], g0["layers.2.weight"][0, :3],
                               rtol=rtol_on(device, 1e-14))


def test_no_regularization_adds_nothing_to_the_graph():
    assert len(build().program.eqns) == len(build({"l2": 0.0, "l1": 0.0}).program.eqns)
    assert "reg_loss" not in build().program.outputs
    assert bpcli.load_spec({"input": [2], "layers": ["relu"], "loss": "sum_squares"}).data[
        "regularization"] == {"l2": 0.0, "l1": 0.0}


def test_metrics_report_data_and_reg_loss_beside_their_total(tmp_path, batch, device):
    # trained on the device; the hand formulas, and bpcli's own loss for the data part, on the host
    reg = {"l2": 0.05, "l1": 0.01}
    model = build(reg, optimizer={"name": "gd", "lr": 0.05}, training={"epochs": 4})
    start = {k: w.copy() for k, w in model.params.items()}
    data = model.prepare(*batch)
    train(model, data, data, RunFolder(tmp_path), device=device)
    with open(tmp_path / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:6] == ["epoch", "step", "train_loss", "data_loss", "reg_loss",
                                     "val_loss"]
    for r in rows:
        assert float(r["train_loss"]) == pytest.approx(float(r["data_loss"]) + float(r["reg_loss"]))
    # gd's first row is the first step, taken at the initial weights: its parts by hand
    W = [start[k] for k in WEIGHTS]
    rel = rtol_on(device, 1e-12)
    assert float(rows[0]["reg_loss"]) == pytest.approx(
        0.05 * sum((w ** 2).sum() for w in W) + 0.01 * sum(np.abs(w).sum() for w in W), rel=rel)
    plain = build()
    for k, w in plain.params.items():
        w[...] = start[k]
    assert float(rows[0]["data_loss"]) == pytest.approx(plain.loss(*batch), rel=rel)
    # val_loss is the same objective as train_loss: data loss + penalty at the row's end weights
    final = build(reg)
    final.load_params(tmp_path / "model.npz")
    assert float(rows[-1]["val_loss"]) == pytest.approx(final.loss(*batch), rel=rel)


@pytest.mark.parametrize("reg, words", [
    ({"l2": -1}, ["regularization.l2", ">= 0"]),
    ({"l3": 1}, ["regularization.l3", "unknown key"]),
    (0.1, ["regularization", "must be a mapping"]),
])
def test_bad_regularization_is_an_error_naming_the_field(reg, words):
    with pytest.raises(bpcli.InputError) as e:
        build(reg)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_l2_takes_the_same_steps_as_torch_style_weight_decay_2_lambda(optimizer, batch, device):
    # d/dW (λ Σ w²) = 2λ W: the gradient torch's coupled weight_decay = 2λ adds inside the optimizer
    # (which decays biases too: without biases the two are the same)
    from bpcli.train.optim import OPTIMIZERS
    layers = [{"conv1d": {"channels": 2, "kernel": 3, "bias": False}}, "relu",
              {"dense": {"units": 1, "bias": False}}]
    penalized = build({"l2": 0.1}, layers, optimizer={"name": optimizer, "lr": 0.05})
    decayed = build(None, layers, optimizer={"name": optimizer, "lr": 0.05, "weight_decay": 0.2})
    for model in (penalized, decayed):
        model.to(device)
        opt = OPTIMIZERS[optimizer].make(model.spec.data["optimizer"])
        for _ in range(3):
            opt.step(model.params, model.loss_and_grad(*batch)[1], 0.05)
    ours, theirs = host(penalized.params), host(decayed.params)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=rtol_on(device, 1e-12), atol=1e-15)
