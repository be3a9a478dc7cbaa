"""Where arrays live, ``cpu`` (NumPy) or ``gpu`` (CuPy), and the few operations NumPy's dispatch
cannot route.

The engine's rules are written once, against NumPy. A CuPy array implements NumPy's dispatch
protocols (``__array_ufunc__``, ``__array_function__``), so ``np.exp(x)``, ``np.sum(x)``,
``np.zeros_like(x)``, ``np.put_along_axis(x, ...)`` and the creation functions given ``like=x``
(NEP 35: ``np.zeros(shape, dtype=x.dtype, like=x)``) run on the GPU for a CuPy ``x`` and are
plain NumPy calls for a host ``x``. What does not dispatch comes here: a strided view, a host
scalar made an array, whether an array may be written, host index arrays moved next to the
data, moving whole arrays between host and device, and waiting for the device. Shape arithmetic
(``np.prod`` of shapes, ``np.ndindex``) stays NumPy: it never touches array data.

CuPy is optional (``pip install 'bpcli[gpu]'``) and imported only when an array or a model is
put on the GPU, so nothing changes for a host-only run.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided as _np_as_strided

from ..errors import InputError

DEVICES = ("cpu", "gpu")


@functools.cache
def _cupy():
    """The cupy module, or the ImportError met importing it."""
    try:
        import cupy
    except ImportError as e:
        return e
    return cupy


def check(device: str) -> None:
    """Raise InputError (no path: the caller sets it) when ``device`` cannot be used here:
    ``gpu`` without CuPy, or with CuPy but no CUDA GPU it can reach."""
    if device == "cpu":
        return
    if device not in DEVICES:
        raise InputError(f"must be one of {', '.join(DEVICES)}, got {device!r}")
    cp = _cupy()
    if isinstance(cp, ModuleNotFoundError) and cp.name == "cupy":
        raise InputError("gpu needs CuPy, which is not installed: pip install 'bpcli[gpu]' "
                         "(CuPy's CUDA 12 build, cupy-cuda12x)")
    if isinstance(cp, ImportError):  # installed, but a library it needs is missing or broken
        raise InputError(f"gpu needs CuPy, which is installed but does not import: "
                         f"{type(cp).__name__}: {cp} (reinstall it with its dependencies: "
                         f"pip install 'bpcli[gpu]')")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError, or a missing driver library: say what CUDA said
        count, why = 0, f"{type(e).__name__}: {e}"
    else:
        why = "the CUDA runtime counts 0 devices"
    if count < 1:
        raise InputError(f"CuPy is installed but finds no CUDA GPU: {why} (check nvidia-smi and "
                         f"CUDA_VISIBLE_DEVICES, or use --device cpu)")


def gpu_count() -> int:
    """How many CUDA GPUs CuPy sees (call after :func:`check`)."""
    return int(_cupy().cuda.runtime.getDeviceCount())


def on_device(x) -> bool:
    """True for a CuPy array; False for NumPy arrays (subclasses included) and host scalars."""
    return not isinstance(x, np.ndarray) and type(x).__module__.startswith("cupy")


def to_device(x, device: str):
    """``x`` (array or scalar) as an array on ``device``: a copy when it moves, else ``x``
    itself (a host array stays the very same object on ``cpu``). Raises InputError as
    :func:`check` for a device that is not there."""
    if device == "cpu":
        return to_host(x)
    if on_device(x):
        return x
    check(device)
    return _cupy().asarray(x)


def to_host(x) -> np.ndarray:
    """``x`` as a NumPy array: a device array is copied back (waiting for it), a host one is
    returned as it is (memory maps and subclasses included)."""
    if on_device(x):
        return x.get()
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def like(a, ref):
    """Host array ``a`` (indices, constants) as an array of ``ref``'s kind, on its device: NumPy's
    ``asarray(a, like=ref)`` (NEP 35), which is ``a`` itself for a NumPy ``ref`` or None."""
    return a if ref is None else np.asarray(a, like=ref)


def any_array(values):
    """One of ``values`` that is an array (host or device; None if none is): a ``ref`` for
    :func:`like`, which tells where the others live."""
    return next((v for v in values if isinstance(v, np.ndarray) or on_device(v)), None)


def as_array(x):
    """``x`` as an array where it lives: a host scalar (a rule's 0-d result) becomes a 0-d NumPy
    array; arrays, on the host or a device, are returned as they are."""
    return x if isinstance(x, np.ndarray) or on_device(x) else np.asarray(x)


def as_strided(x, shape, strides):
    """A read-only view of ``x`` with the given shape and byte strides, no copy; on the device
    through CuPy's own ``as_strided`` (a CuPy view is never write-protected: rules never write
    into one)."""
    if on_device(x):
        from cupy.lib.stride_tricks import as_strided as cp_as_strided

        return cp_as_strided(x, shape, strides)
    return _np_as_strided(x, shape, strides, subok=True, writeable=False)


# Work on a batch whose temporaries outgrow the cache goes in slices of about this many bytes,
# each finished while its temporaries are still in cache. Slicing costs something (the
# convolution makes its im2col columns again for the weight gradient instead of keeping them),
# so a batch needing up to twice this goes whole. Timed on this project's 2-core EPYC (1 MiB
# L2 a core, 32 MiB L3) over seven convolutions, forward and both gradients, in separate runs:
# 4 MiB came within 15% of the best of 2, 4, 8 and 16 MiB in each; the 1×64×64 conv of 16 -> 32
# channels at batch 100 took 90 ms whole and 70 ms in slices, a conv1d of 8 channels at batch
# 1024 50 and 19 ms. What it does to whole networks: benchmarks/README.md.
CACHE_BYTES = 4 << 20


def batch_slices(x, sample_bytes: int, size: int | None = None) -> list[slice]:
    """Slices of ``x``'s first axis (the batch) for work that makes ``sample_bytes`` of
    temporaries per sample: on the host, the whole batch when it needs at most twice ``size``
    bytes (:data:`CACHE_BYTES` unless given), else as many samples a slice as fit in ``size``
    (at least one); on a GPU always the whole batch (a kernel launch costs more than a cache
    miss). The bounds depend on the shapes alone, never on the thread count."""
    n, size = x.shape[0], size or CACHE_BYTES
    if on_device(x) or n * sample_bytes <= 2 * size:
        return [slice(0, n)]
    step = max(1, size // max(1, sample_bytes))
    return [slice(s, s + step) for s in range(0, n, step)]


def owned(x) -> bool:
    """Whether ``x`` is a plain array that may be handed out and written: C-contiguous and (on
    the host) writeable. A broadcast view is neither; CuPy keeps no writeable flag."""
    if on_device(x):
        return x.flags.c_contiguous
    return x.flags.c_contiguous and x.flags.writeable


def synchronize(x) -> None:
    """Wait until the device has finished computing ``x`` (nothing to wait for on the host):
    clocks around engine calls then measure the work, not its launch."""
    if on_device(x):
        _cupy().cuda.get_current_stream().synchronize()
