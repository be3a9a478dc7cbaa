"""What CuPy offers to code written against NumPy, recorded from an installed CuPy so that the
device stand-in in test_devices.py can answer as CuPy would on a machine without one.

A rule reaches CuPy three ways: a NumPy function on a CuPy array (NEP 18: ``np.put_along_axis(x,
...)`` becomes ``cupy.put_along_axis(...)`` with the same arguments, or NotImplemented when CuPy
has no such name), a ufunc (``np.exp(x)``: CuPy's ufunc takes only ``out``, ``dtype`` and
``casting``), and an array method or attribute (``x.sum(axis=1)``, ``x.flags``). The record keeps,
for each, the names and parameters CuPy has, so a call CuPy would refuse (an unknown function,
a keyword CuPy's signature lacks, such as the ``device=None`` NumPy's ``full(..., like=x)`` hands
on) fails on the CPU too.

Make it anew from the CuPy a GPU machine has (CuPy imports without a GPU, so any machine will do)::

    pip install cupy-cuda12x && python tests/cupy_api.py --write

``test_devices.py`` checks the record against CuPy wherever CuPy is installed.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

RECORD = Path(__file__).with_name("data") / "cupy_api.json"

# the keywords CuPy's ufunc.__call__ takes (cupy/_core/_kernel.pyx, ufunc.__call__: it pops out,
# dtype and casting, then raises TypeError('Wrong arguments ...') on anything left)
UFUNC_CALL_KEYWORDS = ("out", "dtype", "casting")
UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "outer", "at")


def _params(sig: inspect.Signature) -> list[list]:
    """A signature as JSON: [name, kind, has default] per parameter, ``self`` left out."""
    return [[p.name, p.kind.name, p.default is not p.empty]
            for p in sig.parameters.values() if p.name != "self"]


_FIRST_LINE = re.compile(r"^[\w.]+\((?P<params>.*)\)(\s*->.*)?$")


def _from_docstring(obj) -> inspect.Signature | None:
    """The signature Cython writes as a docstring's first line (``_ndarray_base.sum(self,
    axis=None, dtype=None, out=None, keepdims=False) -> _ndarray_base``), C types dropped."""
    first = (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
    m = _FIRST_LINE.match(first)
    if m is None:
        return None
    params, kind = [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for part in (p.strip() for p in m["params"].split(",") if p.strip()):
        if part == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        name, _, default = part.partition("=")
        name = name.split()[-1]  # "Py_ssize_t axis1" -> "axis1"
        if name.startswith("**"):
            params.append(inspect.Parameter(name[2:], inspect.Parameter.VAR_KEYWORD))
        elif name.startswith("*"):
            params.append(inspect.Parameter(name[1:], inspect.Parameter.VAR_POSITIONAL))
            kind = inspect.Parameter.KEYWORD_ONLY
        else:
            params.append(inspect.Parameter(name, kind, default=None if default else
                                            inspect.Parameter.empty))
    return inspect.Signature(params)


def _signature(obj) -> list[list] | None:
    try:
        return _params(inspect.signature(obj))
    except (TypeError, ValueError):
        sig = _from_docstring(obj)
        return None if sig is None else _params(sig)


def record() -> dict:
    """The record, read from the installed CuPy."""
    import cupy
    import cupy.lib.stride_tricks

    functions, ufuncs = {}, {}
    for name in sorted(dir(cupy)):
        obj = getattr(cupy, name)
        if name.startswith("_") or inspect.isclass(obj) or inspect.ismodule(obj):
            continue
        if isinstance(obj, cupy.ufunc):
            ufuncs[name] = {"nin": obj.nin, "nout": obj.nout}
        elif callable(obj):
            functions[name] = _signature(obj)
    methods, attributes = {}, []
    for name in sorted(dir(cupy.ndarray)):
        if name.startswith("_") and name not in ("__getitem__", "__setitem__"):
            continue
        obj = getattr(cupy.ndarray, name)
        if callable(obj) and not isinstance(obj, property) and "getset" not in type(obj).__name__:
            methods[name] = _signature(obj)
        else:
            attributes.append(name)
    flags = sorted(n for n in dir(cupy._core.flags.Flags) if not n.startswith("_"))
    return {
        "cupy": cupy.__version__,
        "functions": functions,
        "ufuncs": ufuncs,
        "ufunc_call_keywords": list(UFUNC_CALL_KEYWORDS),
        "ufunc_methods": {m: _signature(getattr(cupy.add, m)) for m in UFUNC_METHODS},
        "methods": methods,
        "attributes": attributes,
        "flags": flags,
        "as_strided": _signature(cupy.lib.stride_tricks.as_strided),
    }


def load() -> dict:
    return json.loads(RECORD.read_text())


def signature(params: list[list] | None) -> inspect.Signature | None:
    """A recorded parameter list as an ``inspect.Signature`` to ``bind`` a call to (None where
    CuPy's signature could not be read: any call is taken)."""
    if params is None:
        return None
    return inspect.Signature([inspect.Parameter(name, getattr(inspect.Parameter, kind),
                                                default=None if has_default else
                                                inspect.Parameter.empty)
                              for name, kind, has_default in params])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/cupy_api.py --write   (needs CuPy installed)")
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps(record(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")
