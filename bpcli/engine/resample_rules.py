"""upsample: enlarging the last axes by integer factors, a fixed sparse matrix U applied axis by axis.

``upsample(x; scale, mode)`` enlarges the last ``len(scale)`` axes of x, axis i by ``scale[i]``,
as PyTorch's ``F.interpolate(x, scale_factor=scale, mode=...)`` (PyTorch docs, torch.nn.functional
.interpolate):

- ``nearest``: output i reads source floor(i / scale): each element copied scale times;
- ``linear`` (PyTorch's 'linear' / 'bilinear', align_corners=False): output i reads the source
  coordinate src = (i + 0.5) / scale - 0.5, clamped at 0 below, between its neighbours
  lo = floor(src) and hi = min(lo + 1, n - 1): (1 - λ) x[lo] + λ x[hi] with λ = src - lo.

Along one axis y = U x with U of shape (n·scale, n) (:func:`interpolation_matrix`); on several
axes U is their Kronecker product, applied one axis at a time. The map is linear: the VJP is Uᵀ g
(nearest: each block of copies summed), the JVP the forward on the tangent.
"""

from __future__ import annotations

import functools

import numpy as np

from . import backend
from .rules import Notation, defprim


@functools.lru_cache(maxsize=64)
def _taps(n: int, scale: int):
    """linear: each output's two sources (lo, hi) and the weight λ of hi, as PyTorch computes
    them (its scale is 1/scale_factor; src = scale·(i + 0.5) - 0.5, clamped at 0)."""
    src = np.maximum((1.0 / scale) * (np.arange(n * scale) + 0.5) - 0.5, 0.0)
    lo = np.floor(src).astype(np.int64)
    return lo, np.minimum(lo + 1, n - 1), src - lo


def interpolation_matrix(n: int, scale: int, mode: str) -> np.ndarray:
    """U (n·scale, n), float64, with y = U x along one axis: one 1 a row (nearest), or 1 - λ
    and λ at the two sources (linear; both on the last element at the end)."""
    rows = np.arange(n * scale)
    U = np.zeros((n * scale, n))
    if mode == "nearest":
        U[rows, rows // scale] = 1.0
    else:
        lo, hi, lam = _taps(n, scale)
        U[rows, lo] = 1.0 - lam
        U[rows, hi] += lam
    return U


def _along(axis):
    """The shape that lays a vector of weights along ``axis`` (negative) of an array."""
    return (-1,) + (1,) * (-axis - 1)


def _upsample(x, *, scale, mode):
    for axis, s in zip(range(-len(scale), 0), scale):
        if mode == "nearest":
            x = np.repeat(x, s, axis=axis)
            continue
        lo, hi, lam = _taps(x.shape[axis], s)
        w = backend.like(lam, x).astype(x.dtype).reshape(_along(axis))
        x = (1 - w) * np.take(x, backend.like(lo, x), axis=axis) \
            + w * np.take(x, backend.like(hi, x), axis=axis)
    return x


def _upsample_vjp(g, y, x, *, scale, mode):
    for axis, s, n in reversed(list(zip(range(-len(scale), 0), scale, x.shape[-len(scale):]))):
        if mode == "nearest":  # Uᵀ: each block of s copies summed
            g = g.reshape(g.shape[:axis] + (n, s) + g.shape[axis:][1:]).sum(axis=axis)
            continue
        U = backend.like(interpolation_matrix(n, s, mode), g).astype(g.dtype)
        g = np.moveaxis(np.moveaxis(g, axis, -1) @ U, -1, axis)
    return g


def _upsample_shape(s, *, scale, mode):
    nd = len(scale)
    if len(s) < nd:
        raise ValueError(f"upsample by {tuple(scale)} of shape {tuple(s)}: too few axes")
    return tuple(s[:-nd]) + tuple(n * k for n, k in zip(s[-nd:], scale))


def _flops(out, x, *, scale, mode):
    # nearest copies; linear takes two products and a sum per element, on each axis
    return 0 if mode == "nearest" else 3 * len(scale) * int(np.prod(out[1:], dtype=np.int64))


defprim("upsample", _upsample, _upsample_shape, vjp=[_upsample_vjp],
        notation=Notation("upsample {0}", ("Uᵀ {d}",)), flops=_flops, branch=None, linear=True)
