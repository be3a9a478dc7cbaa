"""Dropout and batchnorm: the two layers that compute differently while training.

Dropout against its definition y = x · mask / (1 - rate) with the mask the trainer draws, and
the identity in evaluation; batchnorm against torch.nn.BatchNorm1d/2d in float64: the training
forward, gradients wrt input, weight and bias, running statistics after steps, the evaluation
forward. Then what the rest of bpcli does with them: gradcheck (evaluation mode), model.npz,
the optimizer, and a whole training run against the same run in PyTorch.

Every comparison runs on every device (the ``device`` fixture): masks, weights and references
are made on the host; the model, its buffers and the training run live on the device.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_layers import assert_same, on_host

import bpcli
from bpcli.engine import backend, backward, evaluate
from bpcli.errors import InputError
from bpcli.explain.gradcheck import gradcheck
from bpcli.train.run import execute, prepare

H = 1e-6


def spec(input_shape, layers, loss="mse", **top):
    return {"name": "t", "input": list(input_shape), "dtype": "float64", "seed": 0,
            "layers": layers, "loss": loss, **top}


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.params.values():
        w[...] = rng.standard_normal(w.shape) * 0.7
    return rng


def central_differences(model, X, y, **mode):
    """dL/dW_j = (L(W + h e_j) - L(W - h e_j)) / 2h for every entry of every parameter, on the
    host; the pokes go into the model's own arrays, on its device."""
    numeric = {}
    for name, w in model.params.items():
        numeric[name] = np.zeros(w.shape)
        for j in np.ndindex(w.shape):
            keep = w[j]
            w[j] = keep + H
            up = model.loss(X, y, **mode)
            w[j] = keep - H
            down = model.loss(X, y, **mode)
            w[j] = keep
            numeric[name][j] = (up - down) / (2 * H)
    return numeric


# ---------------------------------------------------------------- dropout
DROPOUT_NET = [{"dense": {"units": 6}}, {"dropout": {"rate": 0.4}}, {"dense": {"units": 2}}]


def test_dropout_in_training_is_x_times_mask_over_keep_probability(device):
    # y = x · mask / (1 - rate), the mask a 0/1 array drawn by the model from the given generator
    model = bpcli.build(spec([5, 4], [{"dropout": {"rate": 0.3}}])).to(device)
    X = np.random.default_rng(0).standard_normal((50, 5, 4))
    masks = model.draw_masks(50, np.random.default_rng(1))
    assert list(masks) == ["layers.0.mask"]
    mask = masks["layers.0.mask"]
    assert mask.shape == X.shape and set(np.unique(mask)) == {0.0, 1.0}
    assert abs(1 - mask.mean() - 0.3) < 0.03                 # about rate of the entries dropped
    assert_same(device, model.forward(X, train=True, masks=masks), X * mask * (1 / 0.7))


def test_dropout_in_evaluation_is_the_identity(device):
    model = bpcli.build(spec([7], [{"dropout": {"rate": 0.5}}])).to(device)
    X = np.random.default_rng(0).standard_normal((4, 7))
    np.testing.assert_array_equal(model.forward(X), X)      # no arithmetic: the same bits anywhere
    assert not any(e.origin.layer() == 0 for e in model.program.eqns)


def test_dropout_masks_come_from_the_generator_and_only_from_it():
    model = bpcli.build(spec([5], DROPOUT_NET))
    a = model.draw_masks(8, np.random.default_rng(3))
    b = model.draw_masks(8, np.random.default_rng(3))
    c = model.draw_masks(8, np.random.default_rng(4))
    assert np.array_equal(a["layers.1.mask"], b["layers.1.mask"])
    assert not np.array_equal(a["layers.1.mask"], c["layers.1.mask"])


def test_training_mode_with_dropout_needs_its_masks():
    model = bpcli.build(spec([5], DROPOUT_NET))
    X, Y = np.ones((3, 5)), np.zeros((3, 2))
    with pytest.raises(ValueError, match="layers.1.mask"):
        model.loss(X, Y, train=True)


def test_dropout_gradients_with_a_fixed_mask_match_central_differences(device):
    model = bpcli.build(spec([5], DROPOUT_NET))
    rng = randomize(model, 0)
    model.to(device)
    X, Y = rng.standard_normal((6, 5)), rng.standard_normal((6, 2))
    masks = model.draw_masks(6, rng)
    L, grads = model.loss_and_grad(X, Y, train=True, masks=masks)
    assert L != model.loss(X, Y)                               # the mask changed the loss
    numeric = central_differences(model, X, Y, train=True, masks=masks)
    for name, g in on_host(grads).items():
        np.testing.assert_allclose(g, numeric[name], rtol=1e-6, atol=1e-8, err_msg=name)
    # with every unit dropped, the first layer no longer reaches the loss: no gradient for it
    none_kept = {"layers.1.mask": np.zeros_like(masks["layers.1.mask"])}
    grads = on_host(model.loss_and_grad(X, Y, train=True, masks=none_kept)[1])
    assert not grads["layers.0.weight"].any() and not grads["layers.0.bias"].any()
    assert grads["layers.2.bias"].any()


def test_rate_zero_compiles_no_mask():
    model = bpcli.build(spec([5], [{"dense": {"units": 3}}, {"dropout": {"rate": 0.0}}]))
    assert model.noise_info == [] and model.draw_masks(4, np.random.default_rng(0)) == {}


@pytest.mark.parametrize("rate", [1.0, -0.1, "half"])
def test_dropout_rate_must_be_in_zero_one(rate):
    with pytest.raises(InputError, match=r"layers\[0\].dropout.rate"):
        bpcli.build(spec([5], [{"dropout": {"rate": rate}}]))


# ---------------------------------------------------------------- batchnorm against PyTorch
BN_CASES = [
    # (id, sample shape, fields): (N, F) and (N, C, L) are BatchNorm1d, (N, C, H, W) BatchNorm2d
    ("1d-features", [5], {}),
    ("1d-channels-length", [3, 7], {"momentum": 0.3}),
    ("2d", [2, 4, 5], {"eps": 1e-3}),
    ("2d-no-affine", [3, 3, 2], {"affine": False, "momentum": 1.0}),
]


def torch_bn(torch, sample, cfg):
    cls = torch.nn.BatchNorm2d if len(sample) == 3 else torch.nn.BatchNorm1d
    return cls(sample[0], eps=cfg.get("eps", 1e-5), momentum=cfg.get("momentum", 0.1),
               affine=cfg.get("affine", True), dtype=torch.float64)


def bn_model(sample, cfg, seed=0):
    model = bpcli.build(spec(sample, [{"batchnorm": cfg}], loss="sum_squares"))
    randomize(model, seed)
    return model


def copy_affine(torch, model, bn):
    if bn.affine:
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(model.params["layers.0.weight"]))
            bn.bias.copy_(torch.tensor(model.params["layers.0.bias"]))


@pytest.mark.parametrize("sample,cfg", [c[1:] for c in BN_CASES], ids=[c[0] for c in BN_CASES])
def test_batchnorm_training_forward_and_gradients_match_torch(sample, cfg, device):
    torch = pytest.importorskip("torch")
    model = bn_model(sample, cfg)
    bn = torch_bn(torch, sample, cfg)
    copy_affine(torch, model, bn)
    model.to(device)
    X = np.random.default_rng(1).standard_normal((6, *sample)) * 3 + 2
    x_t = torch.tensor(X, requires_grad=True)
    out_t = bn(x_t)
    np.testing.assert_allclose(model.forward(X, train=True), out_t.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    # L = sum of squares of the output: gradients wrt input, weight and bias
    (out_t ** 2).sum().backward()
    prog = model.train_program
    env = evaluate(prog, model.inputs(X, None))
    wrt = ["X", *model.params]
    grads = on_host(backward(prog, env, "loss", wrt))
    np.testing.assert_allclose(grads["X"], x_t.grad.numpy(), rtol=1e-10, atol=1e-10)
    if bn.affine:
        np.testing.assert_allclose(grads["layers.0.weight"], bn.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(grads["layers.0.bias"], bn.bias.grad.numpy(), rtol=1e-10)
    else:
        assert model.params == {}


@pytest.mark.parametrize("sample,cfg", [c[1:] for c in BN_CASES], ids=[c[0] for c in BN_CASES])
def test_batchnorm_running_statistics_and_evaluation_match_torch(sample, cfg, device):
    # three training steps on different batches (the last one smaller), then evaluation
    torch = pytest.importorskip("torch")
    model = bn_model(sample, cfg)
    bn = torch_bn(torch, sample, cfg)
    copy_affine(torch, model, bn)
    model.to(device)
    rng = np.random.default_rng(2)
    for n in (6, 6, 3):
        X = rng.standard_normal((n, *sample)) * 2 - 1
        bn(torch.tensor(X))
        stats = model.step(X, None, train=True, masks={}).batch_stats
        model.update_buffers(stats, n)
        buffers = on_host(model.buffers)
        np.testing.assert_allclose(buffers["layers.0.running_mean"], bn.running_mean.numpy(),
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(buffers["layers.0.running_var"], bn.running_var.numpy(),
                                   rtol=1e-12)
    bn.eval()
    X = rng.standard_normal((4, *sample))
    np.testing.assert_allclose(model.forward(X), bn(torch.tensor(X)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)


def test_batchnorm_starts_as_torch_does_and_evaluates_with_running_statistics(device):
    # weight 1, bias 0, running mean 0 and var 1: evaluation at the start is x / sqrt(1 + eps)
    model = bpcli.build(spec([3, 4], [{"batchnorm": {}}], loss="sum_squares")).to(device)
    arrays = model.arrays(host=True)
    assert np.array_equal(arrays["layers.0.weight"], np.ones(3))
    assert np.array_equal(arrays["layers.0.bias"], np.zeros(3))
    assert np.array_equal(arrays["layers.0.running_mean"], np.zeros(3))
    assert np.array_equal(arrays["layers.0.running_var"], np.ones(3))
    X = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(model.forward(X), X / np.sqrt(1 + 1e-5), rtol=1e-14)
    # written into the live buffers, moved as load_params moves a file's
    model.buffers["layers.0.running_mean"][...] = backend.to_device(np.array([1.0, 2.0, 3.0]), device)
    model.buffers["layers.0.running_var"][...] = backend.to_device(np.array([4.0, 9.0, 16.0]), device)
    mean, var = np.array([1.0, 2.0, 3.0])[:, None], np.array([4.0, 9.0, 16.0])[:, None]
    expect = (X - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(model.forward(X), expect, rtol=1e-13)


def test_running_statistics_are_state_not_parameters(device):
    # not in params, so not in the gradients, the optimizer, gradcheck, regularization or init
    model = bpcli.build(spec([2, 6, 6], [{"conv2d": {"channels": 3, "kernel": 3}}, "batchnorm",
                                         "relu", {"dense": {"units": 1}}], loss="logistic",
                            regularization={"l2": 0.1})).to(device)
    assert set(model.buffers) == {"layers.1.running_mean", "layers.1.running_var"}
    assert not set(model.buffers) & set(model.params)
    X = np.random.default_rng(0).standard_normal((4, 2, 6, 6))
    _, grads = model.loss_and_grad(X, np.arange(4) % 2)
    assert set(grads) == set(model.params)
    # the l2 penalty sees conv and dense weights only, not batchnorm's scale
    params = on_host(model.params)
    penalty = 0.1 * sum(float((params[k] ** 2).sum()) for k in ("layers.0.weight", "layers.3.weight"))
    losses = model.step(*model.prepare(X, np.arange(4) % 2), grad=False)
    assert losses.reg_loss == pytest.approx(penalty, rel=1e-12)
    with pytest.raises(InputError, match="no weights to initialize"):
        bpcli.build(spec([2, 6, 6], ["batchnorm"], loss="sum_squares",
                         init={"layers": {0: "xavier"}}))


def test_batchnorm_on_features_refuses_batches_of_one_sample():
    # the unbiased variance of one value has no meaning (PyTorch raises too)
    s = spec([4], [{"dense": {"units": 3}}, "batchnorm", {"dense": {"units": 1}}],
             data={"builtin": "linear", "n": 41, "val_split": 0.0},
             optimizer="sgd", training={"batch_size": 8})
    with pytest.raises(InputError, match="batch_size"):
        prepare(bpcli.load_spec(s))  # 41 = 5 · 8 + 1: the last batch holds 1 sample
    s["training"]["batch_size"] = 10  # 41 = 4 · 10 + 1 as well
    with pytest.raises(InputError, match="2 samples or more"):
        prepare(bpcli.load_spec(s))
    s["training"]["batch_size"] = 7   # 41 = 5 · 7 + 6
    prepare(bpcli.load_spec(s))
    # with positions along a channel, one sample has several values: fine
    s = spec([2, 4], ["batchnorm", {"dense": {"units": 1}}],
             data={"builtin": "linear", "n": 41, "val_split": 0.0},
             optimizer="sgd", training={"batch_size": 8})
    prepare(bpcli.load_spec(s))


@pytest.mark.parametrize("field,value", [("momentum", 1.5), ("eps", 0), ("affine", "yes")])
def test_batchnorm_fields_are_checked(field, value):
    with pytest.raises(InputError, match=rf"layers\[0\].batchnorm.{field}"):
        bpcli.build(spec([3], [{"batchnorm": {field: value}}]))


# ---------------------------------------------------------------- with the rest of bpcli
MODAL_NET = [{"conv2d": {"channels": 3, "kernel": 3, "pad": "same"}}, "batchnorm", "relu",
             {"maxpool2d": {"size": 2}}, {"dropout": {"rate": 0.3}}, {"dense": {"units": 3}}]


def test_gradcheck_passes_unchanged_in_evaluation_mode(device):
    report = gradcheck(bpcli.load_spec(spec([2, 6, 6], MODAL_NET, loss="softmax_cross_entropy")),
                       with_cost=False, device=device)
    assert report["passed"]
    checked = {r["layer"] for r in report["layers"]}
    assert "layers[1] (batchnorm)" in checked


def test_model_npz_holds_the_running_statistics_and_eval_uses_them(tmp_path, device):
    s = spec([1, 8, 8], MODAL_NET, loss="softmax_cross_entropy",
             data={"builtin": "shapes", "n": 120}, optimizer={"name": "adam", "lr": 0.01},
             training={"epochs": 2, "batch_size": 16})
    p = prepare(bpcli.load_spec(s))
    summary = execute(p, tmp_path / "run", device=device)
    assert summary["device"] == device
    with np.load(tmp_path / "run" / "model.npz", allow_pickle=False) as f:
        saved = {k: f[k] for k in f.files}
    assert set(saved) == set(p.model.params) | set(p.model.buffers)
    assert not np.array_equal(saved["layers.1.running_mean"], np.zeros(3))  # they moved
    again = bpcli.build(bpcli.load_spec(s)).to(device)
    again.load_params(tmp_path / "run" / "model.npz")
    for k, v in again.arrays(host=True).items():
        np.testing.assert_array_equal(v, saved[k])          # copied, not computed: the same bits
    # validation ran in evaluation mode with the running statistics
    X, y = p.val                                 # prepared: y one-hot
    assert again.step(X, y, grad=False).loss == pytest.approx(summary["final"]["val_loss"], rel=1e-12)
    row = json.loads((tmp_path / "run" / "summary.json").read_text())["final"]
    assert row["val_accuracy"] == pytest.approx(again.loss_def.accuracy(again.forward(X), y))


@pytest.mark.slow
def test_training_with_batchnorm_and_dropout_matches_the_same_run_in_torch(tmp_path, device):
    # plain sgd, no shuffling: bpcli's trainer and a torch loop take the same steps on the same
    # batches with the same masks; weights and running statistics agree after every step
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    s = spec([2, 6, 6], MODAL_NET, loss="softmax_cross_entropy",
             data={"builtin": "shapes", "n": 40, "val_split": 0.0},
             optimizer={"name": "sgd", "lr": 0.1}, training={"epochs": 2, "batch_size": 16,
                                                               "shuffle": False})
    p = prepare(bpcli.load_spec(s))
    model = p.model
    start = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    running = {k: torch.tensor(v) for k, v in model.buffers.items()}
    mask_rng = np.random.default_rng(0 + 3)      # the trainer's noise generator for seed 0
    execute(p, tmp_path / "run", device=device)

    opt = torch.optim.SGD(list(start.values()), lr=0.1)
    X, y = (torch.tensor(a) for a in p.train)
    for _epoch in range(2):
        for i in range(0, 40, 16):   # batches of 16, 16 and 8: no validation split
            xb, yb = X[i:i + 16], y[i:i + 16].argmax(1)          # prepared labels are one-hot
            mask = torch.tensor(model.draw_masks(len(xb), mask_rng)["layers.4.mask"])
            h = F.conv2d(xb, start["layers.0.weight"], start["layers.0.bias"], padding="same")
            h = F.batch_norm(h, running["layers.1.running_mean"], running["layers.1.running_var"],
                             start["layers.1.weight"], start["layers.1.bias"], training=True,
                             momentum=0.1, eps=1e-5)
            h = F.max_pool2d(F.relu(h), 2) * mask / 0.7
            out = F.linear(h.reshape(len(xb), -1), start["layers.5.weight"], start["layers.5.bias"])
            opt.zero_grad()
            F.cross_entropy(out, yb).backward()
            opt.step()
    for k, v in on_host(model.params).items():
        np.testing.assert_allclose(v, start[k].detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    for k, v in on_host(model.buffers).items():
        np.testing.assert_allclose(v, running[k].numpy(), rtol=1e-10, atol=1e-13, err_msg=k)
