"""The benchmark compares equal work: its hand-written NumPy network gives bpcli's numbers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import bpcli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reference import SPEC, hand_step, torch_step_factory  # noqa: E402


@pytest.mark.parametrize("batch", [1, 7])
def test_hand_written_numpy_backprop_matches_the_engine(batch):
    model = bpcli.build(SPEC, dtype="float64")
    rng = np.random.default_rng(batch)
    X, y = model.prepare(rng.standard_normal((batch, 256)), rng.choice([-1, 1], batch))
    s = model.step(X, y)
    loss, grads = s.loss, s.grads
    hand_loss, hand_grads = hand_step(model.params, X, y)
    assert hand_loss == pytest.approx(loss, rel=1e-13)
    for name in grads:
        np.testing.assert_allclose(hand_grads[name], grads[name], rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_torch_reference_matches_the_engine():
    pytest.importorskip("torch")
    import torch

    model = bpcli.build(SPEC, dtype="float64")
    rng = np.random.default_rng(3)
    X, y = model.prepare(rng.standard_normal((4, 256)), rng.choice([-1, 1], 4))
    s = model.step(X, y)
    loss, grads = s.loss, s.grads
    t_loss, t_grads = torch_step_factory(model.params)(torch.from_numpy(X), torch.from_numpy(y))
    assert t_loss == pytest.approx(loss, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(t_grads[name].numpy(), grads[name], rtol=1e-9, atol=1e-12)


def test_float32_stays_float32_through_every_value_and_gradient():
    from bpcli.engine import evaluate

    model = bpcli.build(SPEC)
    X, y = model.prepare(np.random.default_rng(0).standard_normal((3, 256)), [1, -1, 1])
    env = evaluate(model.program, model.inputs(X, y))
    for e in model.program.eqns:
        assert env[e.out.id].dtype == np.float32, (e.origin, e.prim.name, env[e.out.id].dtype)
    grads = model.step(X, y).grads
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}
