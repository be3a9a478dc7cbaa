"""The engine on another device: the discipline that keeps rules device-neutral, checked on the
CPU; the same training on every device; checkpoints that cross devices; what --device says
when the GPU is not there.

A rule that builds a host array behind the engine's back (``np.zeros(shape)`` without
``like=``, ``np.asarray(x)``, ``np.array(...)``) works with NumPy and breaks on a GPU. The
stand-in below is a device array on the CPU: an ``np.ndarray`` subclass whose results stay of
the subclass, and which, as CuPy does, refuses plain host arrays mixed into its operations. A
rule passes when it hands back stand-ins computed from stand-ins, with NumPy's values.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from helpers import run_arrays
from test_primitives import CASES, In, Traced

from bpcli.cli import main
from bpcli.engine import PRIMITIVES, backend, backward, evaluate, forward_tangent


class HostArrayMixedIn(TypeError):
    """A plain host array met a device array, which CuPy refuses."""


class DeviceArray(np.ndarray):
    """A device array on the CPU: results stay device arrays, host arrays are refused."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        return out[0] if out is not None and len(out) == 1 else _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        if func is np.asarray:  # asarray(a, like=device array): the one explicit move, as CuPy's
            return np.asarray(*args, **kwargs).view(DeviceArray)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __getitem__(self, key):
        return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), _unwrap(key)))

    def __setitem__(self, key, value):
        np.ndarray.__setitem__(self.view(np.ndarray), _unwrap(key), _unwrap(value))


def _unwrap(a):
    if isinstance(a, DeviceArray):
        return a.view(np.ndarray)
    if isinstance(a, np.ndarray):
        raise HostArrayMixedIn(f"a host array of shape {a.shape} met a device array")
    if isinstance(a, (tuple, list)):
        return type(a)(_unwrap(v) for v in a)
    if isinstance(a, dict):
        return {k: _unwrap(v) for k, v in a.items()}
    return a


def _wrap(r):
    if isinstance(r, np.ndarray):
        return r.view(DeviceArray)
    if isinstance(r, np.generic):  # a full reduction: CuPy gives a 0-d array, not a scalar
        return np.asarray(r).view(DeviceArray)
    if isinstance(r, (tuple, list)):
        return type(r)(_wrap(v) for v in r)
    return r


def dev(a):
    return np.array(a).view(DeviceArray)


def test_the_stand_in_catches_host_arrays():
    x = dev([1.0, -2.0])
    assert type(np.maximum(x, 0)) is DeviceArray
    assert type(np.zeros(3, like=x)) is DeviceArray
    assert type(x.sum()) is DeviceArray and x.sum().ndim == 0
    assert type(np.zeros(3)) is np.ndarray       # made behind the engine's back: caught below
    assert type(np.asarray(x)) is np.ndarray
    with pytest.raises(HostArrayMixedIn):
        x + np.ones(2)
    with pytest.raises(HostArrayMixedIn):
        x[np.array([0])]
    with pytest.raises(HostArrayMixedIn):
        x[...] = np.ones(2)


def _device_args(case):
    """The case's inputs as device arrays; constants as the engine has them there (arrays moved,
    numbers kept)."""
    return [dev(a.value) if isinstance(a, In) else dev(a) if isinstance(a, np.ndarray) else a
            for a in case.args]


def _call(case, rule, fn, *args, **kw):
    """``fn(*args, **kw)``, failing with the primitive and the rule when it makes a host array."""
    try:
        r = fn(*args, **kw)
    except HostArrayMixedIn as e:
        pytest.fail(f"primitive {case.prim!r}, {rule}: {e} (case {case.id})")
    for part in (r if isinstance(r, tuple) else (r,)):
        assert type(part) is DeviceArray, (f"primitive {case.prim!r}, {rule}: returned a "
                                           f"{type(part).__name__}, not a device array "
                                           f"(case {case.id})")
    return r


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_rule_keeps_its_arrays_on_the_device(case):
    prim = PRIMITIVES[case.prim]
    host = [a.value if isinstance(a, In) else a for a in case.args]
    args = _device_args(case)
    y = _call(case, "forward", prim.impl, *args, **case.params)
    y_host = prim.impl(*host, **case.params)
    saved = {}
    if prim.saves:
        (y, saved["saved"]), y_host = y, y_host[0]
    np.testing.assert_array_equal(y.view(np.ndarray), y_host)
    rng = np.random.default_rng(0)
    for i, a in enumerate(case.args):
        if not isinstance(a, In):
            continue
        g = dev(rng.standard_normal(np.shape(y)))
        t = dev(rng.standard_normal(a.value.shape))
        _call(case, f"vjp[{i}]", prim.vjp[i], g, y, *args, **case.params, **saved)
        _call(case, f"jvp[{i}]", prim.jvp[i], t, y, *args, **case.params)
    if prim.branch is not None:
        _call(case, "branch", prim.branch, *args, **case.params)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_engine_runs_every_primitive_on_the_device(case):
    t = Traced(case.prim, case.args, case.params)  # array constants move with the values
    values = {k: dev(v) for k, v in t.values.items()}
    env = evaluate(t.prog, values)
    assert type(env[t.prog.outputs["s"].id]) is DeviceArray
    grads = backward(t.prog, env, "s", t.names)
    assert all(type(g) is DeviceArray for g in grads.values()), case.id
    value, tangent = forward_tangent(t.prog, values, {n: dev(np.ones_like(values[n]))
                                                      for n in t.names}, "y")
    assert type(value) is DeviceArray and type(tangent) is DeviceArray, case.id
