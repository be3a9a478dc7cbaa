"""The benchmark network written out by hand, in NumPy and (if installed) in PyTorch.

The network is the lecture's shape at benchmark size: input length 256, two
``conv1d`` layers (8 channels, kernel 9, pad same, bias), ReLU after each, a
dense layer to one logit, the logistic loss. ``hand_step`` is what a careful
person writes with NumPy: im2col as a (N, C*K, L) stack, one batched product
per layer and pass, and the input gradient as a correlation with the flipped
kernel (faster than scattering columns back tap by tap), each on the whole
batch at once; bpcli's engine also walks a big batch in cache-sized slices
(``bpcli.engine.backend.batch_slices``), which this reference does not. Parameters use bpcli's names and PyTorch's layouts, so the three
implementations share one parameter dict.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LENGTH, CHANNELS, KERNEL = 256, 8, 9

SPEC = {
    "name": "bench-conv1d",
    "input": [LENGTH],
    "layers": [
        {"conv1d": {"channels": CHANNELS, "kernel": KERNEL, "pad": "same"}}, "relu",
        {"conv1d": {"channels": CHANNELS, "kernel": KERNEL, "pad": "same"}}, "relu",
        {"dense": {"units": 1}},
    ],
    "loss": "logistic",
    "optimizer": {"name": "sgd", "lr": 0.01},
}


def _conv_forward(x, w, b, pad=None):
    n, c, length = x.shape
    o, _, k = w.shape
    lo, hi = pad or ((k - 1) // 2, k - 1 - (k - 1) // 2)   # PyTorch's padding='same'
    xp = np.zeros((n, c, length + lo + hi), dtype=x.dtype)
    xp[:, :, lo:lo + length] = x
    cols = sliding_window_view(xp, k, axis=2).transpose(0, 1, 3, 2).reshape(n, c * k, -1)
    return (w.reshape(o, c * k) @ cols).reshape(n, o, -1) + b[:, None], cols


def _conv_backward(g, cols, w, x_shape, need_dx=True):
    o, c, k = w.shape
    dw = (g @ np.swapaxes(cols, 1, 2)).sum(0).reshape(w.shape)
    db = g.sum(axis=(0, 2))
    if not need_dx:
        return None, dw, db
    # the transposed Toeplitz matrix is Toeplitz again: correlate the upstream gradient, padded
    # by k - 1 on each side, with the flipped kernel (pad: same keeps the length)
    w_t = np.ascontiguousarray(w[:, :, ::-1].transpose(1, 0, 2))
    dx, _ = _conv_forward(g, w_t, np.zeros(c, dtype=g.dtype), pad=(k - 1 - (k - 1) // 2, (k - 1) // 2))
    return dx, dw, db


def hand_step(p, X, y):
    """Loss and gradients of the benchmark network; y is (N, 1) of -1/+1."""
    n = X.shape[0]
    x0 = X.reshape(n, 1, -1)
    z1, cols1 = _conv_forward(x0, p["layers.0.weight"], p["layers.0.bias"])
    h1 = np.maximum(z1, 0)
    z2, cols2 = _conv_forward(h1, p["layers.2.weight"], p["layers.2.bias"])
    h2 = np.maximum(z2, 0)
    flat = h2.reshape(n, -1)
    f = flat @ p["layers.4.weight"].T + p["layers.4.bias"]
    m = -y * f
    loss = np.logaddexp(0, m).mean()
    # backward: local derivative times upstream gradient, layer by layer
    dm = 0.5 * (1 + np.tanh(0.5 * m)) / n          # d mean(softplus(m)) / dm = sigmoid(m) / N
    df = -y * dm
    grads = {"layers.4.weight": df.T @ flat, "layers.4.bias": df.sum(0)}
    dh2 = (df @ p["layers.4.weight"]).reshape(h2.shape)
    dz2 = dh2 * (z2 > 0)
    dh1, grads["layers.2.weight"], grads["layers.2.bias"] = _conv_backward(
        dz2, cols2, p["layers.2.weight"], h1.shape)
    dz1 = dh1 * (z1 > 0)
    _, grads["layers.0.weight"], grads["layers.0.bias"] = _conv_backward(
        dz1, cols1, p["layers.0.weight"], x0.shape, need_dx=False)
    return float(loss), grads


def torch_step_factory(p, threads=2):
    """A closure computing loss and gradients with PyTorch eager (CPU), or None without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}

    def step(X, y):
        for t in tp.values():
            t.grad = None
        x = X.reshape(X.shape[0], 1, -1)
        h = F.relu(F.conv1d(x, tp["layers.0.weight"], tp["layers.0.bias"], padding="same"))
        h = F.relu(F.conv1d(h, tp["layers.2.weight"], tp["layers.2.bias"], padding="same"))
        f = F.linear(h.reshape(h.shape[0], -1), tp["layers.4.weight"], tp["layers.4.bias"])
        loss = F.softplus(-y * f).mean()
        loss.backward()
        return float(loss.detach()), {k: t.grad for k, t in tp.items()}
    return step


# ---------------------------------------------------------------- a 2-D network: 28×28 images
SPEC2D = {
    "name": "bench-conv2d",
    "input": [1, 28, 28],
    "layers": [
        {"conv2d": {"channels": 8, "kernel": 3, "pad": "same"}}, "relu", {"maxpool2d": {"size": 2}},
        {"conv2d": {"channels": 16, "kernel": 3, "pad": "same"}}, "relu", {"maxpool2d": {"size": 2}},
        {"dense": {"units": 10}},
    ],
    "loss": "softmax_cross_entropy",
    "optimizer": {"name": "sgd", "lr": 0.01},
}


def _conv2d_forward(x, w, b):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    p = (k - 1) // 2
    xp = np.zeros((n, c, h + k - 1, wd + k - 1), dtype=x.dtype)
    xp[:, :, p:p + h, p:p + wd] = x
    win = sliding_window_view(xp, (k, k), axis=(2, 3))           # (N, C, H, W, k, k)
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, h * wd)
    return (w.reshape(o, -1) @ cols).reshape(n, o, h, wd) + b[:, None, None], cols


def _conv2d_backward(g, cols, w, need_dx=True):
    n, o, h, wd = g.shape
    _, c, k, _ = w.shape
    g2 = g.reshape(n, o, h * wd)
    dw = (g2 @ np.swapaxes(cols, 1, 2)).sum(0).reshape(w.shape)
    db = g2.sum(axis=(0, 2))
    if not need_dx:
        return None, dw, db
    w_t = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dx, _ = _conv2d_forward(g, w_t, np.zeros(c, dtype=g.dtype))   # pad same, k odd: symmetric
    return dx, dw, db


def _maxpool2(x):
    n, c, h, wd = x.shape
    win = x.reshape(n, c, h // 2, 2, wd // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, wd // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def _maxpool2_backward(g, arg, shape):
    n, c, h, wd = shape
    gw = np.zeros(g.shape + (4,), dtype=g.dtype)
    np.put_along_axis(gw, arg[..., None], g[..., None], axis=-1)
    return gw.reshape(n, c, h // 2, wd // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def hand_step_2d(p, X, onehot):
    """Loss and gradients of SPEC2D; onehot is (N, 10)."""
    n = X.shape[0]
    z1, c1 = _conv2d_forward(X, p["layers.0.weight"], p["layers.0.bias"])
    h1 = np.maximum(z1, 0)
    q1, a1 = _maxpool2(h1)
    z2, c2 = _conv2d_forward(q1, p["layers.3.weight"], p["layers.3.bias"])
    h2 = np.maximum(z2, 0)
    q2, a2 = _maxpool2(h2)
    flat = q2.reshape(n, -1)
    f = flat @ p["layers.6.weight"].T + p["layers.6.bias"]
    z = f - f.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -(onehot * logp).sum(axis=1).mean()
    df = (np.exp(logp) - onehot) / n                               # softmax - onehot, over N
    grads = {"layers.6.weight": df.T @ flat, "layers.6.bias": df.sum(0)}
    dq2 = (df @ p["layers.6.weight"]).reshape(q2.shape)
    dz2 = _maxpool2_backward(dq2, a2, h2.shape) * (z2 > 0)
    dq1, grads["layers.3.weight"], grads["layers.3.bias"] = _conv2d_backward(dz2, c2, p["layers.3.weight"])
    dz1 = _maxpool2_backward(dq1, a1, h1.shape) * (z1 > 0)
    _, grads["layers.0.weight"], grads["layers.0.bias"] = _conv2d_backward(
        dz1, c1, p["layers.0.weight"], need_dx=False)
    return float(loss), grads


def torch_step_2d_factory(p, threads=2):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}

    def step(X, labels):
        for t in tp.values():
            t.grad = None
        h = F.max_pool2d(F.relu(F.conv2d(X, tp["layers.0.weight"], tp["layers.0.bias"], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, tp["layers.3.weight"], tp["layers.3.bias"], padding=1)), 2)
        f = F.linear(h.reshape(h.shape[0], -1), tp["layers.6.weight"], tp["layers.6.bias"])
        loss = F.cross_entropy(f, labels)
        loss.backward()
        return float(loss.detach()), {k: t.grad for k, t in tp.items()}
    return step
