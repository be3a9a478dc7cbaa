"""A CuPy array on the CPU: NumPy's arithmetic behind CuPy's refusals, so that a rule which would
fail on a GPU fails here too.

``DeviceArray`` is an ``np.ndarray`` subclass whose results stay of the subclass. It answers a
call the way CuPy 14 does (tests/cupy_api.py records what CuPy has):
- a NumPy function on it (NEP 18, and NEP 35's ``like=``) is taken only where CuPy has a function
  of that name whose signature binds the very arguments NumPy hands on; ``np.full(s, v,
  like=x)`` is refused, as CuPy's ``full`` has no ``device`` keyword;
- a ufunc takes only ``out``, ``dtype`` and ``casting`` (CuPy's ``ufunc.__call__``) and arrays
  or scalars, not lists;
- a method binds CuPy's signature (``x.max(initial=0)`` is refused), and NumPy's methods and
  attributes CuPy lacks are not there (``x.flags.writeable``, ``x.setflags``);
- a host array mixed into any of these, as an operand, an index or a value, is refused, as
  CuPy refuses an implicit host-to-device copy;
- once :func:`install` ed, ``np.asarray``/``np.array`` of a device array is refused, as CuPy's
  ``__array__`` refuses the implicit copy back.
"""

from __future__ import annotations

import sys
import types

import numpy as np
from cupy_api import load, signature

API = load()
ASARRAY, ARRAY = np.asarray, np.array  # NumPy's own, whatever install() puts in their place
CUPY = f"CuPy {API['cupy']}"
FUNCTIONS = {name: signature(p) for name, p in API["functions"].items()}
UFUNC_METHODS = {name: signature(p) for name, p in API["ufunc_methods"].items()}
METHODS = {name: signature(p) for name, p in API["methods"].items()}


class NotOnCuPy(TypeError):
    """A call CuPy would refuse."""


class HostArrayMixedIn(NotOnCuPy):
    """A plain host array met a device array, which CuPy refuses."""


class ImplicitCopyToHost(NotOnCuPy):
    """``np.asarray``/``np.array`` of a device array: CuPy refuses the implicit copy (its
    ``__array__`` raises TypeError; ``x.get()`` or ``backend.to_host`` is the explicit one)."""


def _host(a):
    return np.ndarray.view(a, np.ndarray)


def _bind(what, sig, args, kwargs):
    if sig is None:  # a signature CuPy does not show: take the call
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        raise NotOnCuPy(f"{what}: {CUPY} refuses these arguments ({e}); keywords given: "
                        f"{sorted(kwargs)}") from None


class DeviceArray(np.ndarray):
    """A device array on the CPU: results stay device arrays, what CuPy refuses raises."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        name = ufunc.__name__
        if name not in API["ufuncs"] and name not in FUNCTIONS:
            raise NotOnCuPy(f"np.{name} on a device array: {CUPY} has no cupy.{name}")
        if method == "__call__":
            unknown = sorted(set(kwargs) - set(API["ufunc_call_keywords"]))
            if unknown:
                raise NotOnCuPy(f"np.{name}(..., {', '.join(unknown)}=...): {CUPY}'s ufuncs take "
                                f"only {', '.join(API['ufunc_call_keywords'])}")
        elif method in UFUNC_METHODS:
            _bind(f"np.{name}.{method}", UFUNC_METHODS[method], inputs,
                  {**kwargs, **({} if out is None else {"out": out[0]})})
        else:
            raise NotOnCuPy(f"np.{name}.{method}: {CUPY}'s ufuncs have no {method}")
        if any(isinstance(x, (list, tuple)) for x in inputs):
            raise NotOnCuPy(f"np.{name} on a device array and a list: {CUPY} takes arrays and "
                            f"scalars only")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        return out[0] if out is not None and len(out) == 1 else _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        name = ".".join(func.__module__.split(".")[1:] + [func.__name__])
        if name not in FUNCTIONS:
            raise NotOnCuPy(f"np.{name} on a device array: {CUPY} has no cupy.{name}, so NumPy's "
                            f"dispatch finds no implementation")
        _bind(f"np.{name} -> cupy.{name}", FUNCTIONS[name], args, kwargs)
        if name in ("asarray", "array"):  # (a, like=device array): the one explicit move, as CuPy's
            return ARRAY(*args, **kwargs).view(DeviceArray)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __getitem__(self, key):
        return _wrap(np.ndarray.__getitem__(_host(self), _unwrap(key)))

    def __setitem__(self, key, value):
        np.ndarray.__setitem__(_host(self), _unwrap(key), _unwrap(value))

    @property
    def flags(self):
        """CuPy's flags: contiguity and ownership, no ``writeable``."""
        f = _host(self).flags
        return types.SimpleNamespace(c_contiguous=f.c_contiguous, f_contiguous=f.f_contiguous,
                                     owndata=f.owndata)

    def get(self):
        """A host copy, as CuPy's ``get``."""
        return _host(self).copy()


def _method(name, sig):
    base = getattr(np.ndarray, name)

    def call(self, *args, **kwargs):
        _bind(f"ndarray.{name}", sig, args, kwargs)
        return _wrap(base(_host(self), *_unwrap(args), **_unwrap(kwargs)))

    call.__name__ = name
    return call


def _missing(name):
    def get(self):
        raise AttributeError(f"{CUPY}'s ndarray has no attribute {name!r}")
    return property(get)


# view stays NumPy's: the tests take their host values with x.view(np.ndarray)
for _name in dir(np.ndarray):
    if _name.startswith("_") or _name in ("view", "flags", "get"):
        continue
    if _name in METHODS:
        setattr(DeviceArray, _name, _method(_name, METHODS[_name]))
    elif _name not in API["attributes"]:
        setattr(DeviceArray, _name, _missing(_name))


def _unwrap(a):
    if isinstance(a, DeviceArray):
        return _host(a)
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
        return ASARRAY(r).view(DeviceArray)
    if isinstance(r, (tuple, list)):
        return type(r)(_wrap(v) for v in r)
    return r


def dev(a):
    """``a`` as a device array."""
    return ARRAY(a).view(DeviceArray)


def as_strided(x, shape, strides):
    """CuPy's ``cupy.lib.stride_tricks.as_strided`` on a device array."""
    return _wrap(np.lib.stride_tricks.as_strided(_host(x), shape, strides))


def install(monkeypatch) -> str:
    """Make ``gpu`` the stand-in for a test: CuPy's entry points the backend calls (``asarray``,
    ``as_strided``, the device count, the stream) answer with stand-ins, so every move between
    host and device runs as on a GPU and any host array mixed in on the way (model, optimizer,
    checkpoint, batches) raises. Returns the device name, ``gpu``."""
    from bpcli.engine import backend

    cupy = types.ModuleType("cupy")
    cupy.STAND_IN = True
    cupy.asarray = lambda a: ARRAY(a).view(DeviceArray)
    stream = types.SimpleNamespace(synchronize=lambda: None)
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                      get_current_stream=lambda: stream)
    lib, strided = types.ModuleType("cupy.lib"), types.ModuleType("cupy.lib.stride_tricks")
    strided.as_strided = as_strided
    for name, module in (("cupy", cupy), ("cupy.lib", lib), ("cupy.lib.stride_tricks", strided)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(backend, "_cupy", lambda: cupy)
    monkeypatch.setattr(backend, "on_device", lambda x: isinstance(x, DeviceArray))
    # an ndarray subclass has no hook for np.asarray(x); CuPy's __array__ refuses it, so here the
    # two NumPy entry points do, for the code under test (NumPy's own C calls are not affected)
    for name in ("asarray", "array", "asanyarray"):
        monkeypatch.setattr(np, name, _no_implicit_copy(getattr(np, name)))
    return "gpu"


def _no_implicit_copy(convert):
    def checked(a, *args, **kwargs):
        if isinstance(a, DeviceArray) and kwargs.get("like") is None:
            raise ImplicitCopyToHost(f"np.{convert.__name__} of a device array of shape {a.shape}: "
                                     f"CuPy refuses the implicit copy to the host (use "
                                     f"backend.to_host)")
        return convert(a, *args, **kwargs)
    checked.__name__ = convert.__name__
    return checked


def numpy_arithmetic(device: str) -> bool:
    """Whether ``device`` computes with NumPy's very arithmetic (the CPU, or the stand-in): its
    results then equal the CPU's bit for bit; a real GPU's agree to rounding."""
    return device == "cpu" or getattr(sys.modules.get("cupy"), "STAND_IN", False)
