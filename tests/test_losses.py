"""Every loss against PyTorch's definition in float64: the value and the gradient of every weight,
through a dense layer with copied weights; the kink conventions; the loss fields in a spec.

Each comparison runs bpcli on every device (the ``device`` fixture); torch stays on the host."""

from __future__ import annotations

import numpy as np
import pytest
from device_stand_in import numpy_arithmetic

import bpcli
from bpcli.engine import backend
from bpcli.errors import InputError
from bpcli.nn.losses import LOSSES


def build(loss, units, inputs=4):
    return bpcli.build({"name": "t", "input": [inputs], "dtype": "float64",
                        "layers": [{"dense": {"units": units}}], "loss": loss})


def torch_loss_and_grads(torch, model, X, f_to_loss):
    """The same dense layer in torch with copied weights: (loss, {name: gradient})."""
    W = torch.tensor(backend.to_host(model.params["layers.0.weight"]), requires_grad=True)
    b = torch.tensor(backend.to_host(model.params["layers.0.bias"]), requires_grad=True)
    loss = f_to_loss(torch.tensor(X) @ W.T + b)
    loss.backward()
    return loss.item(), {"layers.0.weight": W.grad.numpy(), "layers.0.bias": b.grad.numpy()}


def assert_matches_torch(torch, model, X, y, f_to_loss, device):
    """bpcli's loss and gradients with the model on ``device`` against torch's on the host; a real
    GPU, which sums in another order, to 1e-10."""
    L_ref, grads_ref = torch_loss_and_grads(torch, model, X, f_to_loss)
    L, grads = model.to(device).loss_and_grad(X, y)
    exact = numpy_arithmetic(device)
    assert L == pytest.approx(L_ref, rel=1e-12 if exact else 1e-10, abs=1e-14)
    for name, g in grads_ref.items():
        np.testing.assert_allclose(backend.to_host(grads[name]), g, rtol=1e-10, atol=1e-13)


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def test_every_loss_is_checked_against_torch_here():
    # the per-pixel losses' comparisons (label maps, masks, Dice) are in test_segmentation_losses.py
    assert set(LOSSES) == {"logistic", "hinge", "mse", "mae", "huber", "softmax_cross_entropy",
                           "sum_squares", "sigmoid_cross_entropy", "dice", "dice_cross_entropy"}


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_margin_losses_match_torch_with_pm1_and_01_labels(loss, rng, torch, device):
    F = torch.nn.functional
    model = build(loss, 1)
    X = rng.standard_normal((12, 4))
    y01 = rng.integers(0, 2, 12)
    y = torch.tensor(np.where(y01 > 0, 1.0, -1.0)).reshape(-1, 1)
    reference = {
        "logistic": lambda f: F.soft_margin_loss(f, y),      # mean ln(1 + exp(-y f))
        "hinge": lambda f: torch.clamp(1 - y * f, min=0).mean(),  # mean max(0, 1 - y f)
    }[loss]
    assert_matches_torch(torch, model, X, y01, reference, device)    # 0/1 labels, 0 read as -1
    assert_matches_torch(torch, model, X, y.numpy().ravel(), reference, device)


@pytest.mark.parametrize("loss, reference", [
    ("mse", lambda F, f, y: F.mse_loss(f, y)),               # mean (f - y)^2
    ("mae", lambda F, f, y: F.l1_loss(f, y)),                # mean |f - y|
    ({"name": "huber"}, lambda F, f, y: F.huber_loss(f, y, delta=1.0)),
    ({"name": "huber", "delta": 0.3}, lambda F, f, y: F.huber_loss(f, y, delta=0.3)),
    ({"name": "huber", "delta": 5.0}, lambda F, f, y: F.huber_loss(f, y, delta=5.0)),
], ids=["mse", "mae", "huber-default", "huber-0.3", "huber-5"])
def test_regression_losses_match_torch(loss, reference, rng, torch, device):
    model = build(loss, 3)
    X = rng.standard_normal((10, 4)) * 2  # residuals on both sides of every delta
    y = rng.standard_normal((10, 3))
    assert_matches_torch(torch, model, X, y,
                         lambda f: reference(torch.nn.functional, f, torch.tensor(y)), device)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 0.9])
def test_softmax_cross_entropy_matches_torch_with_label_smoothing(eps, rng, torch, device):
    F = torch.nn.functional
    model = build({"name": "softmax_cross_entropy", "label_smoothing": eps}, 5)
    X = rng.standard_normal((9, 4)) * 3
    y = rng.integers(0, 5, 9)
    # torch: (1 - eps) * nll + eps * mean over classes of -log softmax
    assert_matches_torch(torch, model, X, y, lambda f: F.cross_entropy(f, torch.tensor(y),
                                                                       label_smoothing=eps),
                         device)


def test_sum_squares_matches_torch(rng, torch, device):
    model = build("sum_squares", 2)
    assert_matches_torch(torch, model, rng.standard_normal((6, 4)), None, lambda f: (f ** 2).sum(),
                         device)


def test_mae_and_huber_gradient_at_a_zero_residual_is_zero_as_torch(torch, device):
    F = torch.nn.functional
    # X = 0 and bias = y: f - y is exactly 0, where torch's |.| has gradient sign(0) = 0
    X, y = np.zeros((3, 4)), np.array([[0.5], [0.5], [0.5]])
    for loss, reference in [("mae", F.l1_loss), ("huber", F.huber_loss)]:
        model = build(loss, 1)
        model.params["layers.0.bias"][...] = 0.5
        assert_matches_torch(torch, model, X, y, lambda f: reference(f, torch.tensor(y)), device)
        # exactly 0 on every device: sign(0) and 0 times anything are 0 in any rounding
        assert not backend.to_host(model.loss_and_grad(X, y)[1]["layers.0.bias"]).any()


def test_hinge_needs_one_output_and_pm1_labels():
    with pytest.raises(InputError, match="1 value per sample"):
        build("hinge", 2)
    with pytest.raises(InputError, match="-1/\\+1"):
        build("hinge", 1).loss(np.zeros((2, 4)), [2, 1])


def test_hinge_accuracy_reads_the_sign_of_f(device):
    model = build("hinge", 1)
    model.params["layers.0.weight"][...] = [[1.0, 0, 0, 0]]
    X = np.array([[2.0, 0, 0, 0], [-1.0, 0, 0, 0], [3.0, 0, 0, 0]])
    assert model.to(device).accuracy(X, [1, 0, 0]) == pytest.approx(2 / 3)


def test_loss_fields_resolve_with_their_defaults():
    assert bpcli.load_spec({"input": [2], "layers": ["relu"], "loss": "huber"}).data["loss"] == {
        "name": "huber", "delta": 1.0}
    spec = bpcli.load_spec({"input": [2], "layers": ["relu"], "loss": "softmax_cross_entropy"})
    assert spec.data["loss"] == {"name": "softmax_cross_entropy", "label_smoothing": 0.0}


@pytest.mark.parametrize("loss, words", [
    ({"name": "huber", "delta": 0}, ["loss.delta", "number > 0"]),
    ({"name": "softmax_cross_entropy", "label_smoothing": 1.5}, ["loss.label_smoothing", "[0, 1)"]),
    ({"name": "mae", "delta": 1}, ["loss.delta", "unknown key"]),
    ("hindge", ["unknown loss 'hindge'", "did you mean 'hinge'"]),
])
def test_bad_loss_fields_are_errors_naming_the_field(loss, words):
    with pytest.raises(InputError) as e:
        bpcli.load_spec({"input": [2], "layers": ["relu"], "loss": loss})
    for w in words:
        assert w in str(e.value)
