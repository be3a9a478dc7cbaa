"""Every layer through ``bpcli.build``: gradients against central differences, conv1d against
explicit loops, a hand-written Toeplitz matrix and PyTorch; conv2d, pooling, dense and the
activations against PyTorch's definitions in float64 with copied weights.

Every comparison runs on every device (the ``device`` fixture): the weights are set on the host,
then the model moves; the references (loops, matrices, PyTorch, differences of losses) stay on
the host."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from device_stand_in import numpy_arithmetic

import bpcli
from bpcli.engine import backend, backward, evaluate
from bpcli.errors import InputError
from bpcli.nn.layers import LAYERS
from bpcli.nn.losses import LOSSES

H = 1e-6


def spec(input_shape, layers, loss="mse", seed=0):
    return {"name": "t", "input": list(input_shape), "dtype": "float64", "seed": seed,
            "layers": layers, "loss": loss}


def assert_same(device, actual, expected):
    """The same bits where ``device`` computes with NumPy's arithmetic (cpu, the stand-in); the
    same to rounding on a real GPU, which sums in another order (rtol 1e-10 in float64, 1e-4 in
    float32)."""
    if numpy_arithmetic(device):
        np.testing.assert_array_equal(actual, expected)
    else:
        rtol = 1e-4 if np.asarray(actual).dtype == np.float32 else 1e-10
        np.testing.assert_allclose(actual, expected, rtol=rtol)


def on_host(arrays):
    """A dict of arrays (gradients, parameters) as NumPy arrays, copied back from a device."""
    return {k: backend.to_host(v) for k, v in arrays.items()}


# ---------------------------------------------------------------- gradients of every layer
# (case id, input shape, layers, loss): every layer name and every loss appears at least once
LAYER_CASES = [
    ("conv1d-valid-bias", [2, 9], [{"conv1d": {"channels": 3, "kernel": 3}}], "mse"),
    ("conv1d-same-even-kernel", [2, 8], [{"conv1d": {"channels": 2, "kernel": 4, "pad": "same"}}], "mse"),
    ("conv1d-stride-pad", [3, 10], [{"conv1d": {"channels": 2, "kernel": 3, "stride": 2, "pad": 1}}], "mse"),
    ("conv1d-dilation-same", [1, 9], [{"conv1d": {"channels": 2, "kernel": 3, "dilation": 2, "pad": "same"}}],
     "mse"),
    ("conv1d-stride-dilation-nobias", [2, 11],
     [{"conv1d": {"channels": 2, "kernel": 2, "stride": 3, "dilation": 2, "pad": "valid", "bias": False}}],
     "mse"),
    ("conv1d-1d-input", [7], [{"conv1d": {"channels": 2, "kernel": 3}}, {"dense": {"units": 1}}], "logistic"),
    ("dense", [5], [{"dense": {"units": 3}}], "mse"),
    ("dense-nobias-sumsq", [5], [{"dense": {"units": 3, "bias": False}}], "sum_squares"),
    ("dense-flattens-2d-input", [2, 3], [{"dense": {"units": 3}}], "softmax_cross_entropy"),
    ("flatten", [2, 3], ["flatten", {"dense": {"units": 3}}], "softmax_cross_entropy"),
    ("conv1d-toeplitz-stride-dilation-pad", [2, 11],
     [{"conv1d": {"channels": 2, "kernel": 3, "stride": 2, "dilation": 2, "pad": 2, "impl": "toeplitz"}}],
     "mse"),
    ("conv2d-valid-bias", [2, 5, 6], [{"conv2d": {"channels": 2, "kernel": 3}}], "mse"),
    ("conv2d-same-even-kernel", [1, 5, 5], [{"conv2d": {"channels": 2, "kernel": [2, 3], "pad": "same"}}],
     "mse"),
    ("conv2d-pairs-nobias", [2, 7, 8],
     [{"conv2d": {"channels": 2, "kernel": [2, 3], "stride": [2, 1], "pad": [1, 2], "dilation": [1, 2],
                  "bias": False}}], "mse"),
    ("conv2d-hw-input-toeplitz", [5, 6],
     [{"conv2d": {"channels": 2, "kernel": 3, "pad": 1, "impl": "toeplitz"}}, {"dense": {"units": 1}}],
     "logistic"),
    ("conv1d-depthwise", [3, 9], [{"conv1d": {"channels": 6, "kernel": 3, "groups": 3, "pad": 1}}], "mse"),
    ("conv1d_transpose-stride-pad-output_pad", [2, 5],
     [{"conv1d_transpose": {"channels": 3, "kernel": 3, "stride": 2, "pad": 1, "output_pad": 1}}], "mse"),
    ("conv2d_transpose-groups-toeplitz", [2, 3, 3],
     [{"conv2d_transpose": {"channels": 4, "kernel": 2, "stride": 2, "groups": 2, "impl": "toeplitz"}}], "mse"),
    # upsampling has no parameters: a convolution in front of it gets its gradient through it
    ("upsample1d-bilinear", [2, 5],
     [{"conv1d": {"channels": 2, "kernel": 2}}, {"upsample1d": {"scale": 3, "mode": "bilinear"}}], "mse"),
    ("upsample2d-nearest", [1, 3, 4],
     [{"conv2d": {"channels": 2, "kernel": 2}}, {"upsample2d": {"scale": [2, 3]}}, {"dense": {"units": 1}}],
     "logistic"),
    # pooling has no parameters: a convolution in front of it gets its gradient through the pool
    ("maxpool1d-stride-pad", [2, 9],
     [{"conv1d": {"channels": 2, "kernel": 2}}, {"maxpool1d": {"size": 3, "stride": 2, "pad": 1}},
      {"dense": {"units": 1}}], "logistic"),
    ("maxpool2d-pad", [1, 6, 7],
     [{"conv2d": {"channels": 2, "kernel": 2}}, {"maxpool2d": {"size": [2, 3], "pad": 1}},
      {"dense": {"units": 1}}], "logistic"),
    ("avgpool1d-pad", [8], [{"conv1d": {"channels": 2, "kernel": 3}}, {"avgpool1d": {"size": 2, "pad": 1}},
                            {"dense": {"units": 1}}], "mse"),
    ("avgpool2d-stride1", [2, 6, 6],
     [{"conv2d": {"channels": 2, "kernel": 3}}, {"avgpool2d": {"size": 2, "stride": 1}},
      {"dense": {"units": 2}}], "mse"),
    ("global_avgpool", [2, 5, 6], [{"conv2d": {"channels": 3, "kernel": 2}}, "global_avgpool"], "mse"),
    ("global_maxpool", [2, 7], [{"conv1d": {"channels": 3, "kernel": 2}}, "global_maxpool",
                                {"dense": {"units": 1}}], "logistic"),
    *[(act, [4], [{"dense": {"units": 5}}, act, {"dense": {"units": 1}}], "logistic")
      for act in ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus")],
    # the other losses, each behind a layer (random data: no output sits on a kink of |f - y|
    # or of max(0, 1 - y f), and huber's default delta 1 falls between small and large errors)
    ("dense-hinge", [4], [{"dense": {"units": 3}}, "tanh", {"dense": {"units": 1}}], "hinge"),
    ("conv2d-mae", [1, 5, 5], [{"conv2d": {"channels": 2, "kernel": 3}}], "mae"),
    ("conv1d-maxpool-huber", [2, 8], [{"conv1d": {"channels": 2, "kernel": 3}}, {"maxpool1d": {"size": 2}}],
     "huber"),
    # per-pixel losses on a same-resolution convolution: label maps, masks, multi-label targets
    ("conv2d-softmax-ce-label-maps", [1, 4, 5], [{"conv2d": {"channels": 3, "kernel": 3, "pad": 1}}],
     "softmax_cross_entropy"),
    ("conv2d-sigmoid-ce-mask", [1, 4, 5], [{"conv2d": {"channels": 1, "kernel": 3, "pad": 1}}],
     "sigmoid_cross_entropy"),
    ("dense-sigmoid-ce-multilabel", [4], [{"dense": {"units": 3}}], "sigmoid_cross_entropy"),
    ("conv2d-dice-label-maps", [1, 4, 5], [{"conv2d": {"channels": 3, "kernel": 3, "pad": 1}}], "dice"),
    ("conv1d-dice-mask", [2, 7], [{"conv1d": {"channels": 1, "kernel": 3, "pad": 1}}], "dice"),
    ("conv2d-dice-ce-label-maps", [2, 3, 4], [{"conv2d": {"channels": 2, "kernel": 3, "pad": 1}}],
     "dice_cross_entropy"),
    ("conv1d-dice-ce-mask", [2, 7], [{"conv1d": {"channels": 1, "kernel": 3, "pad": 1}}],
     "dice_cross_entropy"),
    ("leaky_relu-slope-elu-alpha", [4],
     [{"dense": {"units": 5}}, {"leaky_relu": {"slope": 0.3}}, {"dense": {"units": 4}},
      {"elu": {"alpha": 0.5}}, {"dense": {"units": 1}}], "logistic"),
    # evaluation mode (training mode: test_dropout_batchnorm.py): dropout is the identity,
    # batchnorm an affine map per channel with the running statistics
    ("dropout", [4], [{"dense": {"units": 5}}, {"dropout": {"rate": 0.5}}, {"dense": {"units": 1}}],
     "logistic"),
    ("conv2d-batchnorm", [2, 4, 5], [{"conv2d": {"channels": 3, "kernel": 3}}, "batchnorm",
                                     {"dense": {"units": 2}}], "mse"),
    ("conv-relu-conv-dense", [2, 12],
     [{"conv1d": {"channels": 3, "kernel": 3, "pad": "same"}}, "relu",
      {"conv1d": {"channels": 2, "kernel": 2, "stride": 2}}, "tanh", {"dense": {"units": 1}}], "logistic"),
    # graphs: a residual block (add, the input itself among the sources) and a joined branch
    ("add-residual", [2, 6],
     [{"conv1d": {"channels": 2, "kernel": 3, "pad": "same", "name": "a"}}, "tanh",
      {"conv1d": {"channels": 2, "kernel": 3, "pad": "same"}}, {"add": {"with": ["a", "input"]}},
      {"dense": {"units": 1}}], "logistic"),
    ("concat-branches", [2, 2, 3],
     [{"conv2d": {"channels": 2, "kernel": 1, "name": "left"}},
      {"conv2d": {"channels": 3, "kernel": 3, "pad": 1, "from": "input"}}, "tanh",
      {"concat": {"with": ["left", "input"]}}, {"dense": {"units": 2}}], "mse"),
]


def _layer_names(layers):
    return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in layers}


def test_every_layer_and_loss_has_a_gradient_case():
    layers = set().union(*(_layer_names(c[2]) for c in LAYER_CASES))
    losses = {c[3] for c in LAYER_CASES}
    assert set(LAYERS) - layers == set()
    assert set(LOSSES) - losses == set()


@pytest.mark.parametrize("input_shape,layers,loss", [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_loss_and_grad_matches_central_differences_on_every_parameter(input_shape, layers, loss,
                                                                      device):
    # dL/dW_j == (L(W + h e_j) - L(W - h e_j)) / 2h for every entry j of every parameter
    model = bpcli.build(spec(input_shape, layers, loss))
    rng = np.random.default_rng(7)
    for w in model.params.values():  # nonzero biases too, so nothing sits on a ReLU kink by accident
        w[...] = rng.standard_normal(w.shape) * 0.7
    model.to(device)
    X = rng.standard_normal((6, *input_shape))
    y = model.loss_def.example_labels(rng, 6, model.output_shape)
    L, grads = model.loss_and_grad(X, y)
    assert_same(device, L, model.loss(X, y))
    assert set(grads) == set(model.params)
    for name, w in model.params.items():  # w lives on the device: the pokes go where the model reads
        assert grads[name].shape == w.shape and grads[name].dtype == np.float64
        numeric = np.zeros(w.shape)
        for j in np.ndindex(w.shape):
            keep = w[j]
            w[j] = keep + H
            up = model.loss(X, y)
            w[j] = keep - H
            down = model.loss(X, y)
            w[j] = keep
            numeric[j] = (up - down) / (2 * H)
        np.testing.assert_allclose(backend.to_host(grads[name]), numeric, rtol=1e-6, atol=1e-8,
                                   err_msg=name)


# ---------------------------------------------------------------- conv1d, written out
def same_padding(kernel, dilation):
    """PyTorch's padding='same': d(k-1) zeros in all, the odd one out on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def conv1d_reference(x, w, b, stride=1, pad=(0, 0), dilation=1):
    """y[n, o, t] = b[o] + sum_c sum_k w[o, c, k] * xp[n, c, t*stride + k*dilation],
    xp = x with pad[0] zeros on the left and pad[1] on the right (cross-correlation, no kernel flip)."""
    N, C, L = x.shape
    O, _, K = w.shape
    lo, hi = pad
    xp = np.zeros((N, C, lo + L + hi))
    xp[:, :, lo:lo + L] = x
    L_out = (lo + L + hi - dilation * (K - 1) - 1) // stride + 1
    y = np.zeros((N, O, L_out))
    for n in range(N):
        for o in range(O):
            for t in range(L_out):
                acc = 0.0 if b is None else b[o]
                for c in range(C):
                    for k in range(K):
                        acc += w[o, c, k] * xp[n, c, t * stride + k * dilation]
                y[n, o, t] = acc
    return y


CONV_CASES = [
    # (id, channels in, length, conv1d fields)
    ("valid-k3", 2, 9, {"channels": 3, "kernel": 3}),
    ("same-k4", 2, 8, {"channels": 2, "kernel": 4, "pad": "same"}),            # even kernel: pads (1, 2)
    ("same-k2", 1, 9, {"channels": 2, "kernel": 2, "pad": "same"}),            # pads (0, 1)
    ("same-k3-dilation3", 1, 10, {"channels": 2, "kernel": 3, "pad": "same", "dilation": 3}),
    ("pad1-stride2", 3, 10, {"channels": 2, "kernel": 3, "stride": 2, "pad": 1}),
    ("valid-stride3-dilation2-nobias", 2, 11,
     {"channels": 2, "kernel": 2, "stride": 3, "dilation": 2, "pad": "valid", "bias": False}),
    ("pad3-stride2-dilation2-k5", 2, 12, {"channels": 1, "kernel": 5, "stride": 2, "dilation": 2, "pad": 3}),
]
_conv_ids = [c[0] for c in CONV_CASES]
_conv_params = [c[1:] for c in CONV_CASES]


def _conv_model(c_in, length, cfg):
    return bpcli.build(spec([c_in, length], [{"conv1d": cfg}]))


def _conv_geometry(cfg):
    k, s, d = cfg["kernel"], cfg.get("stride", 1), cfg.get("dilation", 1)
    pad = cfg.get("pad", 0)
    if pad == "same":
        pad = same_padding(k, d)
    elif pad == "valid":
        pad = (0, 0)
    else:
        pad = (pad, pad)
    return s, pad, d


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.params.values():
        w[...] = rng.standard_normal(w.shape)


@pytest.mark.parametrize("c_in,length,cfg", _conv_params, ids=_conv_ids)
def test_conv1d_matches_cross_correlation_written_with_loops(c_in, length, cfg, device):
    model = _conv_model(c_in, length, cfg)
    _randomize(model, 1)
    X = np.random.default_rng(2).standard_normal((3, c_in, length))
    stride, pad, dilation = _conv_geometry(cfg)
    expected = conv1d_reference(X, model.params["layers.0.weight"], model.params.get("layers.0.bias"),
                                stride, pad, dilation)
    np.testing.assert_allclose(model.to(device).forward(X), expected, rtol=1e-13, atol=1e-13)


def test_conv1d_same_padding_puts_the_extra_zero_on_the_right(device):
    # kernel 2, pad same: one zero in all, on the right, so with w = [0, 1], y_t = x_{t+1} and y_4 = 0;
    # with w = [1, 0], y_t = x_t (no shift at all)
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    for w, expected in (([[[0.0, 1.0]]], [[[2.0, 3.0, 4.0, 5.0, 0.0]]]), ([[[1.0, 0.0]]], x)):
        model = _conv_model(1, 5, {"channels": 1, "kernel": 2, "pad": "same", "bias": False})
        model.params["layers.0.weight"][...] = w
        assert_same(device, model.to(device).forward(x), expected)


def test_conv1d_equals_multiplication_by_a_banded_toeplitz_matrix(device):
    # kernel [a, b, c], pad same (one zero each side), length 5: y = T x with T written out
    a, b, c = 0.5, -2.0, 3.0
    T = np.array([[b, c, 0, 0, 0],
                  [a, b, c, 0, 0],
                  [0, a, b, c, 0],
                  [0, 0, a, b, c],
                  [0, 0, 0, a, b]])
    model = bpcli.build(spec([5], [{"conv1d": {"channels": 1, "kernel": 3, "pad": "same", "bias": False}}]))
    model.params["layers.0.weight"][...] = [[[a, b, c]]]
    X = np.random.default_rng(3).standard_normal((4, 5))
    np.testing.assert_allclose(model.to(device).forward(X)[:, 0, :], X @ T.T, rtol=1e-14, atol=1e-14)


def test_strided_dilated_conv1d_equals_multiplication_by_a_banded_matrix(device):
    # kernel [a, b], stride 2, dilation 2, no padding, length 7: y_t = a x_{2t} + b x_{2t+2}, t = 0, 1, 2
    a, b = 1.5, -0.25
    M = np.array([[a, 0, b, 0, 0, 0, 0],
                  [0, 0, a, 0, b, 0, 0],
                  [0, 0, 0, 0, a, 0, b]])
    model = bpcli.build(spec([7], [{"conv1d": {"channels": 1, "kernel": 2, "stride": 2, "dilation": 2,
                                               "bias": False}}]))
    model.params["layers.0.weight"][...] = [[[a, b]]]
    X = np.random.default_rng(4).standard_normal((3, 7))
    np.testing.assert_allclose(model.to(device).forward(X)[:, 0, :], X @ M.T, rtol=1e-14, atol=1e-14)


def test_multichannel_conv1d_equals_block_toeplitz_matrix(device):
    # out channel o = sum over in channels c of T_oc x_c, T_oc[t, j] = w[o, c, j - t + lo] inside the band
    c_in, c_out, L, K = 2, 3, 6, 3
    model = _conv_model(c_in, L, {"channels": c_out, "kernel": K, "pad": "same", "bias": False})
    _randomize(model, 5)
    w = model.params["layers.0.weight"]
    lo, _ = same_padding(K, 1)
    big = np.zeros((c_out * L, c_in * L))
    for o in range(c_out):
        for c in range(c_in):
            for t in range(L):
                for j in range(L):
                    if 0 <= j - t + lo < K:
                        big[o * L + t, c * L + j] = w[o, c, j - t + lo]
    X = np.random.default_rng(6).standard_normal((4, c_in, L))
    expected = (X.reshape(4, c_in * L) @ big.T).reshape(4, c_out, L)
    np.testing.assert_allclose(model.to(device).forward(X), expected, rtol=1e-14, atol=1e-14)


# ---------------------------------------------------------------- against PyTorch
def _mse_grads_with_input(model, X, Y):
    """bpcli's loss, parameter gradients and dL/dX (X is an input of the program too), computed
    on the model's device and brought back to the host."""
    env = evaluate(model.program, model.inputs(X, Y))
    grads = backward(model.program, env, "loss", list(model.params) + ["X"])
    return float(env[model.program.outputs["loss"].id]), on_host(grads)


# PyTorch warns that an even kernel with padding='same' makes it copy the input: expected here
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("impl", ["fast", "toeplitz"])
@pytest.mark.parametrize("c_in,length,cfg", _conv_params, ids=_conv_ids)
def test_conv1d_matches_torch_forward_and_gradients(c_in, length, cfg, impl, device):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model = _conv_model(c_in, length, dict(cfg, impl=impl))
    _randomize(model, 8)
    rng = np.random.default_rng(9)
    X = rng.standard_normal((3, c_in, length))
    stride, pad, dilation = _conv_geometry(cfg)
    torch_padding = "same" if cfg.get("pad") == "same" else pad[0]

    w_t = torch.tensor(model.params["layers.0.weight"], requires_grad=True)
    b_t = (torch.tensor(model.params["layers.0.bias"], requires_grad=True)
           if "layers.0.bias" in model.params else None)
    x_t = torch.tensor(X, requires_grad=True)
    out_t = F.conv1d(x_t, w_t, b_t, stride=stride, padding=torch_padding, dilation=dilation)
    model.to(device)
    np.testing.assert_allclose(model.forward(X), out_t.detach().numpy(), rtol=1e-13, atol=1e-13)

    Y = rng.standard_normal(tuple(out_t.shape))
    loss_t = ((out_t - torch.tensor(Y)) ** 2).mean()          # mse: mean over all elements
    loss_t.backward()
    L, g = _mse_grads_with_input(model, X, Y)
    np.testing.assert_allclose(L, loss_t.item(), rtol=1e-13)
    np.testing.assert_allclose(g["layers.0.weight"], w_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    if b_t is not None:
        np.testing.assert_allclose(g["layers.0.bias"], b_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["X"], x_t.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("input_shape,bias", [([5], True), ([5], False), ([2, 3], True)])
def test_dense_matches_torch_linear_forward_and_gradients(input_shape, bias, device):
    # y = x W^T + b with W (units, in): torch.nn.functional.linear, after flattening x in C order
    torch = pytest.importorskip("torch")
    model = bpcli.build(spec(input_shape, [{"dense": {"units": 4, "bias": bias}}]))
    _randomize(model, 10)
    rng = np.random.default_rng(11)
    X = rng.standard_normal((6, *input_shape))
    w_t = torch.tensor(model.params["layers.0.weight"], requires_grad=True)
    b_t = torch.tensor(model.params["layers.0.bias"], requires_grad=True) if bias else None
    x_t = torch.tensor(X, requires_grad=True)
    out_t = torch.nn.functional.linear(x_t.reshape(6, -1), w_t, b_t)
    model.to(device)
    np.testing.assert_allclose(model.forward(X), out_t.detach().numpy(), rtol=1e-13, atol=1e-14)

    Y = rng.standard_normal((6, 4))
    loss_t = ((out_t - torch.tensor(Y)) ** 2).mean()
    loss_t.backward()
    L, g = _mse_grads_with_input(model, X, Y)
    np.testing.assert_allclose(L, loss_t.item(), rtol=1e-13)
    np.testing.assert_allclose(g["layers.0.weight"], w_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    if bias:
        np.testing.assert_allclose(g["layers.0.bias"], b_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["X"], x_t.grad.numpy(), rtol=1e-12, atol=1e-14)


def against_torch(model, device, X, torch_forward, seed=0):
    """bpcli on ``device`` against ``torch_forward(x, params)`` in float64 with the same weights
    (copied from the host model before it moves): the forward, then L = mean((f - Y)^2) and its
    gradients wrt every parameter and the input X."""
    torch = pytest.importorskip("torch")
    params_t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    x_t = torch.tensor(X, requires_grad=True)
    out_t = torch_forward(x_t, params_t)
    model.to(device)
    np.testing.assert_allclose(model.forward(X), out_t.detach().numpy(), rtol=1e-13, atol=1e-13)

    Y = np.random.default_rng(seed).standard_normal(tuple(out_t.shape))
    loss_t = ((out_t - torch.tensor(Y)) ** 2).mean()
    loss_t.backward()
    L, g = _mse_grads_with_input(model, X, Y)
    np.testing.assert_allclose(L, loss_t.item(), rtol=1e-13)
    for name, p_t in params_t.items():
        np.testing.assert_allclose(g[name], p_t.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(g["X"], x_t.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg="X")


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


# ---------------------------------------------------------------- conv2d against PyTorch
CONV2D_CASES = [
    # (id, sample shape, conv2d fields)
    ("valid-k3", [2, 6, 7], {"channels": 3, "kernel": 3}),
    ("same-k3", [2, 5, 6], {"channels": 2, "kernel": 3, "pad": "same"}),
    ("same-even-kernel", [1, 6, 5], {"channels": 2, "kernel": [2, 4], "pad": "same"}),  # odd zero: bottom, right
    ("same-dilation", [1, 7, 7], {"channels": 2, "kernel": 3, "dilation": [2, 1], "pad": "same"}),
    ("stride-pad-pairs", [3, 8, 9], {"channels": 2, "kernel": [3, 2], "stride": [2, 3], "pad": [1, 2]}),
    ("stride-dilation-nobias", [2, 9, 10],
     {"channels": 2, "kernel": 2, "stride": 2, "dilation": 3, "pad": "valid", "bias": False}),
    ("hw-input-one-channel", [6, 6], {"channels": 2, "kernel": 3, "pad": 1}),
]


# PyTorch warns that an even kernel with padding='same' makes it copy the input: expected here
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("impl", ["fast", "toeplitz"])
@pytest.mark.parametrize("sample,cfg", [c[1:] for c in CONV2D_CASES], ids=[c[0] for c in CONV2D_CASES])
def test_conv2d_matches_torch_forward_and_gradients(sample, cfg, impl, device):
    torch = pytest.importorskip("torch")
    model = bpcli.build(spec(sample, [{"conv2d": dict(cfg, impl=impl)}]))
    _randomize(model, 12)
    X = np.random.default_rng(13).standard_normal((3, *sample))
    pad = cfg.get("pad", 0)
    padding = "same" if pad == "same" else _pair(0 if pad == "valid" else pad)

    def conv2d(x, p):
        x = x if len(sample) == 3 else x.unsqueeze(1)      # an (H, W) sample is one channel
        return torch.nn.functional.conv2d(x, p["layers.0.weight"], p.get("layers.0.bias"),
                                          stride=_pair(cfg.get("stride", 1)), padding=padding,
                                          dilation=_pair(cfg.get("dilation", 1)))
    against_torch(model, device, X, conv2d)


# ---------------------------------------------------------------- pooling against PyTorch
POOL_CASES = [
    # (id, layer, sample shape, fields)
    ("max1d-default-stride", "maxpool1d", [3, 10], {"size": 3}),
    ("max1d-stride-pad", "maxpool1d", [2, 9], {"size": 3, "stride": 2, "pad": 1}),
    ("max1d-no-channel-axis", "maxpool1d", [10], {"size": 2}),
    ("max2d-default-stride", "maxpool2d", [2, 6, 7], {"size": 2}),
    ("max2d-pairs-pad", "maxpool2d", [1, 7, 8], {"size": [3, 2], "stride": [2, 1], "pad": [1, 1]}),
    ("max2d-overlap-pad", "maxpool2d", [6, 6], {"size": 3, "stride": 1, "pad": 1}),
    ("avg1d-default-stride", "avgpool1d", [3, 10], {"size": 3}),
    ("avg1d-stride-pad", "avgpool1d", [2, 9], {"size": 3, "stride": 2, "pad": 1}),
    ("avg2d-default-stride", "avgpool2d", [2, 6, 7], {"size": 2}),
    ("avg2d-pairs-pad", "avgpool2d", [1, 7, 8], {"size": [3, 2], "stride": [2, 1], "pad": [1, 1]}),
    ("avg2d-overlap-pad", "avgpool2d", [6, 6], {"size": 3, "stride": 1, "pad": 1}),
]


def torch_pool(torch, layer, cfg):
    """The PyTorch function a pooling layer stands for, with its fields as PyTorch's arguments."""
    F = torch.nn.functional
    fn = {"maxpool1d": F.max_pool1d, "maxpool2d": F.max_pool2d,
          "avgpool1d": F.avg_pool1d, "avgpool2d": F.avg_pool2d}[layer]
    size = cfg["size"] if layer.endswith("1d") else _pair(cfg["size"])
    stride = cfg.get("stride") or size
    stride = stride if layer.endswith("1d") else _pair(stride)
    pad = cfg.get("pad", 0)
    pad = pad if layer.endswith("1d") else _pair(pad)
    extra = {"count_include_pad": True} if layer.startswith("avg") else {}
    return lambda x, p: fn(x, size, stride, pad, **extra)


@pytest.mark.parametrize("layer,sample,cfg", [c[1:] for c in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_pooling_matches_torch_forward_and_input_gradient(layer, sample, cfg, device):
    torch = pytest.importorskip("torch")
    model = bpcli.build(spec(sample, [{layer: cfg}]))
    X = np.random.default_rng(14).standard_normal((3, *sample))
    against_torch(model, device, X, torch_pool(torch, layer, cfg))


@pytest.mark.parametrize("layer,sample,cfg", [c[1:] for c in POOL_CASES if c[1].startswith("max")],
                         ids=[c[0] for c in POOL_CASES if c[1].startswith("max")])
def test_max_pooling_breaks_ties_as_torch_does(layer, sample, cfg, device):
    # inputs drawn from {0, 1, 2}: most windows hold several maxima; PyTorch gives each window's
    # gradient to its first maximum in window order, and overlapping windows add up
    torch = pytest.importorskip("torch")
    model = bpcli.build(spec(sample, [{layer: cfg}])).to(device)
    X = np.random.default_rng(15).integers(0, 3, (4, *sample)).astype(np.float64)
    x_t = torch.tensor(X, requires_grad=True)
    out_t = torch_pool(torch, layer, cfg)(x_t, {})
    G = np.random.default_rng(16).integers(1, 10, tuple(out_t.shape)).astype(np.float64)  # exact sums
    out_t.backward(torch.tensor(G))
    env = evaluate(model.program, model.inputs(X), until="output")
    grads = backward(model.program, env, "output", ["X"], seed=backend.to_device(G, device))
    assert_same(device, backend.to_host(grads["X"]), x_t.grad.numpy())


def test_max_pooling_padding_never_wins(device):
    # all-negative input: the -inf padding is never a window's maximum (zero padding would be)
    model = bpcli.build(spec([4], [{"maxpool1d": {"size": 2, "stride": 1, "pad": 1}}])).to(device)
    X = np.array([[-3.0, -1.0, -2.0, -4.0]])
    assert_same(device, model.forward(X), [[-3.0, -1.0, -1.0, -2.0, -4.0]])


def test_average_pooling_counts_padding_zeros_in_the_mean(device):
    model = bpcli.build(spec([4], [{"avgpool1d": {"size": 2, "pad": 1}}])).to(device)
    X = np.array([[2.0, 4.0, 6.0, 8.0]])
    assert_same(device, model.forward(X), [[1.0, 5.0, 4.0]])    # (0+2)/2, (4+6)/2, (8+0)/2


# ---------------------------------------------------------------- activations against PyTorch
@pytest.mark.parametrize("layer,torch_name,fields,torch_args", [
    ("leaky_relu", "leaky_relu", {}, {"negative_slope": 0.01}),
    ("leaky_relu", "leaky_relu", {"slope": 0.3}, {"negative_slope": 0.3}),
    ("elu", "elu", {}, {"alpha": 1.0}),
    ("elu", "elu", {"alpha": 1.7}, {"alpha": 1.7}),
    ("relu", "relu", {}, {}),
    ("sigmoid", "sigmoid", {}, {}),
    ("tanh", "tanh", {}, {}),
    ("softplus", "softplus", {}, {}),
], ids=lambda v: v if isinstance(v, str) else None)
def test_activation_matches_torch_including_at_zero(layer, torch_name, fields, torch_args, device):
    # exact zeros in X: the derivative at the kink follows PyTorch's convention
    torch = pytest.importorskip("torch")
    model = bpcli.build(spec([3, 4], [{layer: fields} if fields else layer]))
    X = np.random.default_rng(17).standard_normal((5, 3, 4)) * 3
    X[:, 0, :2] = 0.0
    fn = getattr(torch.nn.functional, torch_name)
    against_torch(model, device, X, lambda x, p: fn(x, **torch_args))


# ---------------------------------------------------------------- shape errors name the field
@pytest.mark.parametrize("entries,key,line,words", [
    (["{conv2d: {channels: 2, kernel: [3, 9]}}"], "layers[1].conv2d.kernel", 4,
     "kernel width 9 (dilation 1) is longer than its padded input width (6 + 0 padding = 6)"),
    (["{conv2d: {channels: 2, kernel: 3, dilation: [4, 1], pad: 1}}"], "layers[1].conv2d.kernel", 4,
     "kernel height 3 (dilation 4) is longer than its padded input height (5 + 2 padding = 7)"),
    (["{conv2d: {channels: 2, kernel: 3, stride: 2, pad: same}}"], "layers[1].conv2d.pad", 4,
     "pad: same needs stride 1"),
    (["{conv1d: {channels: 2, kernel: 3}}"], "layers[1]", 4,
     "needs input of shape (channels, length), got (2, 5, 6)"),
    (["{maxpool2d: {size: [2, 3], pad: [1, 2]}}"], "layers[1].maxpool2d.pad", 4,
     "pad width 2 is more than half the window width 3"),
    (["{avgpool2d: {size: 7}}"], "layers[1].avgpool2d.size", 4,
     "window height 7 is longer than its padded input height (5 + 0 padding = 5)"),
    (["flatten", "{maxpool2d: {size: 2}}"], "layers[2]", 5, "needs input with at least 2 axes"),
])
def test_shape_errors_point_at_the_field_and_its_line(tmp_path, entries, key, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text("input: [2, 5, 6]\nlayers:\n  - relu\n" + "".join(f"  - {e}\n" for e in entries)
                    + "loss: mse\n")
    with pytest.raises(InputError) as err:
        bpcli.build(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:") and f": {key}: " in message, message
    assert words in message, message


# ---------------------------------------------------------------- dtype
def test_float32_spec_gives_float32_parameters_and_gradients(device):
    # the lecture spec trains in float32 by default: nothing on the way silently promotes to float64;
    # the float64 reference is the same model on the host
    lecture = Path(__file__).resolve().parent.parent / "specs" / "lecture_cnn.yaml"
    model = bpcli.build(lecture).to(device)
    rng = np.random.default_rng(16)
    X, y = rng.standard_normal((8, 64)), np.arange(8) % 2
    L, grads = model.loss_and_grad(X, y)
    assert all(w.dtype == np.float32 for w in model.params.values())
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.forward(X).dtype == np.float32
    # and float32 agrees with the same model in float64 to float32 accuracy
    model64 = bpcli.build(lecture, dtype="float64")
    L64, grads64 = model64.loss_and_grad(X, y)
    np.testing.assert_allclose(L, L64, rtol=1e-5)
    for k, g in on_host(grads).items():
        np.testing.assert_allclose(g, grads64[k], rtol=1e-3, atol=1e-5 * np.abs(grads64[k]).max())


def test_float32_image_layers_stay_float32(device):
    # the new primitives too: -inf padding, argmax routing, the Toeplitz matrix's gather; on the
    # device in float32, against the host in float64
    model = bpcli.build(spec([2, 8, 8], [
        {"conv2d": {"channels": 3, "kernel": 3, "pad": "same"}}, {"leaky_relu": {"slope": 0.1}},
        {"maxpool2d": {"size": 3, "stride": 2, "pad": 1}},
        {"conv2d": {"channels": 2, "kernel": 2, "impl": "toeplitz"}}, "elu",
        {"avgpool2d": {"size": 2, "pad": 1}}, {"dense": {"units": 1}}], loss="logistic"))
    model32 = bpcli.build(model.spec, dtype="float32").to(device)
    X = np.random.default_rng(18).standard_normal((4, 2, 8, 8))
    y = np.arange(4) % 2
    L, grads = model32.loss_and_grad(X, y)
    assert model32.forward(X).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    L64, grads64 = model.loss_and_grad(X, y)
    np.testing.assert_allclose(L, L64, rtol=1e-5)
    for k, g in on_host(grads).items():
        np.testing.assert_allclose(g, grads64[k], rtol=1e-3, atol=1e-5 * np.abs(grads64[k]).max())
