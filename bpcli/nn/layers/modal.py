"""Layers that compute differently while training: dropout and batchnorm."""

from __future__ import annotations

import numpy as np

from ...core.fields import (Invalid, Param, boolean, fraction, nonneg_float, number_json,
                            positive_float, quoted, with_json_schema)
from .table import layer


@layer("dropout",
       "Inverted dropout, as torch.nn.Dropout: while training, y = x · mask / (1 - rate) with a "
       "fresh 0/1 mask every step (each entry kept with probability 1 - rate), drawn from the "
       "run's seeded generator and fed to the graph as an input (layers.<i>.mask); in evaluation "
       "(validation, eval, gradcheck, forward) the identity.",
       "dropout: {rate: 0.5}",
       Param("rate", fraction, 0.5, "probability that an entry is zeroed while training, in "
             "[0, 1)"),
       modal=True, onnx=lambda g, x, cfg, params: x)  # evaluation: the identity, no node
def dropout(ctx, x, cfg):
    if not ctx.training or cfg["rate"] == 0:
        return x
    keep = 1.0 - cfg["rate"]
    mask = ctx.noise("mask", x.shape, lambda rng, shape: rng.random(shape) < keep)
    return x * mask * (1.0 / keep)


@with_json_schema(number_json(minimum=0, maximum=1))
def _unit(v):
    f = nonneg_float(v)
    if f > 1:
        raise Invalid(f"must be a number in [0, 1], got {quoted(v)}")
    return f


def _running_statistics(momentum, per_sample):
    """PyTorch's update after a training step on n samples, k = n · per_sample values per channel,
    from the batch's moments (2, C), mean over biased var:

        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var · k / (k - 1)   (unbiased)
    """
    def update(buffers, stats, n):
        k = n * per_sample
        if k < 2:
            raise ValueError(f"batchnorm needs more than 1 value per channel to train, got {k}")
        mean, var = buffers["running_mean"], buffers["running_var"]
        batch_mean, batch_var = stats["moments"][0], stats["moments"][1]
        mean[...] = (1 - momentum) * mean + momentum * batch_mean
        var[...] = (1 - momentum) * var + momentum * batch_var * (k / (k - 1))
    return update


def _batchnorm_onnx(g, x, cfg, params):
    """ONNX ``BatchNormalization`` in inference mode with the running statistics (scale 1 and bias
    0 without ``affine``), on (N, C) and (N, C, *positions) alike. Where ONNX's float32 epsilon
    attribute cannot hold eps exactly in the model's dtype (float64), the same affine map as the
    evaluation program instead: (x - running_mean) · scale + bias, scale = weight / sqrt(running_var
    + eps) per channel, as ``Sub``, ``Mul``, ``Add``."""
    mean, var = params["running_mean"], params["running_var"]
    weight, bias = ((params["weight"], params["bias"]) if cfg["affine"]
                    else (np.ones_like(var), np.zeros_like(var)))
    if g.exact(cfg["eps"]):
        return g.op("BatchNormalization", x, g.const(weight, "weight"), g.const(bias, "bias"),
                    g.const(mean, "running_mean"), g.const(var, "running_var"),
                    epsilon=float(cfg["eps"]))
    per_channel = (-1,) + (1,) * (len(x.shape) - 2)
    scale = ((var + var.dtype.type(cfg["eps"])) ** -0.5 * weight).reshape(per_channel)
    centred = g.op("Sub", x, g.const(mean.reshape(per_channel), "running_mean"))
    y = g.op("Mul", centred, g.const(scale, "scale"))
    return g.op("Add", y, g.const(bias.reshape(per_channel), "bias"))


@layer("batchnorm",
       "Batch normalization, as torch.nn.BatchNorm1d on (N, features) or (N, channels, length) "
       "and BatchNorm2d on (N, channels, height, width): per channel (axis 1), y = (x - mean) / "
       "sqrt(var + eps) · weight + bias. While training, mean and biased var are the batch's, "
       "and the running statistics layers.<i>.running_mean / running_var (start 0 and 1; saved "
       "with the weights, never trained) move toward them after each step, with the unbiased "
       "var; in evaluation the running statistics are used.",
       "batchnorm: {momentum: 0.1}",
       Param("momentum", _unit, 0.1, "weight of the batch in the running statistics, as torch's "
             "momentum: running = (1 - momentum) running + momentum batch"),
       Param("eps", positive_float, 1e-5, "added to the variance under the square root"),
       Param("affine", boolean, True, "learn a scale layers.<i>.weight (starts at 1) and a shift "
             "layers.<i>.bias (starts at 0) per channel"),
       modal=True, onnx=_batchnorm_onnx)
def batchnorm(ctx, x, cfg):
    channels = x.shape[1]
    per_channel = (channels,) + (1,) * (x.ndim - 2)    # broadcasts along axis 1
    running_mean = ctx.buffer("running_mean", (channels,), 0.0)
    running_var = ctx.buffer("running_var", (channels,), 1.0)
    if cfg["affine"]:
        weight = ctx.param("weight", (channels,), fan_in=None, start=1.0)
        bias = ctx.param("bias", (channels,), fan_in=None)
    if ctx.training:  # one primitive: the batch's moments, y and the closed-form backward
        y = (ctx.b.apply("batch_norm_affine", x, weight, bias, eps=cfg["eps"]) if cfg["affine"]
             else ctx.b.apply("batch_norm", x, eps=cfg["eps"]))
        per_sample = int(np.prod(x.shape[2:]))  # values of a channel in one sample
        ctx.after_step(_running_statistics(cfg["momentum"], per_sample),
                       min_batch=2 if per_sample == 1 else 1,   # an unbiased var needs 2 values
                       moments=ctx.b.saved(y))  # (2, C), saved by the primitive for its backward
        return y
    # evaluation: an affine map per channel, the scale and shift computed on C numbers first
    if cfg["affine"]:
        weight, bias = weight.reshape(per_channel), bias.reshape(per_channel)
    scale = ((running_var + cfg["eps"]) ** -0.5).reshape(per_channel)
    centred = x - running_mean.reshape(per_channel)
    if cfg["affine"]:
        scale = scale * weight
    y = centred * scale
    return y + bias if cfg["affine"] else y
